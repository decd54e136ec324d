#include "profiler/cpython/layout.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "profiler/cpython/opcodes.h"
#include "symbolizer/codefacts.h"
#include "symbolizer/pystr.h"

/*
 * Offsets measured with offsetof() against each version's own headers
 * (tools/probe-offsets.sh), x86_64, release builds.  Fields a version does not
 * have are -1.
 */

/* COMMON sets every field to its usual value or -1, and each table then
 * overrides what its version has: designated initializers, set twice on purpose. */
#pragma GCC diagnostic ignored "-Woverride-init"

/* The symbol of each known object in 3.x, and in 2.7 (NULL: none). */
static const char *const known3[PYK_COUNT] = {
    [PYK_NONE] = "_Py_NoneStruct", [PYK_TRUE] = "_Py_TrueStruct",
    [PYK_FALSE] = "_Py_FalseStruct", [PYK_INT] = "PyLong_Type", [PYK_BOOL] = "PyBool_Type",
    [PYK_FLOAT] = "PyFloat_Type", [PYK_STR] = "PyUnicode_Type", [PYK_BYTES] = "PyBytes_Type",
    [PYK_TUPLE] = "PyTuple_Type", [PYK_LIST] = "PyList_Type", [PYK_DICT] = "PyDict_Type",
    [PYK_SET] = "PySet_Type", [PYK_FROZENSET] = "PyFrozenSet_Type", [PYK_CELL] = "PyCell_Type",
    [PYK_SET_DUMMY] = "_PySet_Dummy",
};

static const char *const known27[PYK_COUNT] = {
    [PYK_NONE] = "_Py_NoneStruct", [PYK_TRUE] = "_Py_TrueStruct",
    [PYK_FALSE] = "_Py_ZeroStruct", [PYK_INT] = "PyInt_Type", [PYK_LONG27] = "PyLong_Type",
    [PYK_BOOL] = "PyBool_Type", [PYK_FLOAT] = "PyFloat_Type", [PYK_STR] = "PyString_Type",
    [PYK_UNICODE27] = "PyUnicode_Type", [PYK_TUPLE] = "PyTuple_Type",
    [PYK_LIST] = "PyList_Type", [PYK_DICT] = "PyDict_Type", [PYK_SET] = "PySet_Type",
    [PYK_FROZENSET] = "PyFrozenSet_Type", [PYK_CELL] = "PyCell_Type",
};

/* co_flags bits (Include/code.h): CO_GENERATOR since 2.2, the others since 3.5/3.6. */
#define CO_GENERATOR 0x20
#define CO_COROUTINE 0x80
#define CO_ASYNC_GENERATOR 0x200

/* Fields that are the same in every version, or absent unless set. */
#define COMMON                                                              \
    .runtime_symbol = "_PyRuntime", .debug_offsets = 0,                     \
    .tstate_current_symbol = NULL, .gil_lock_symbol = NULL,                 \
    .narrow_unicode_symbol = NULL, .eval_function = "_PyEval_EvalFrameDefault", \
    .known_symbols = known3,                                                \
    .co_generator_flags = CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR, \
    .set_dummy = SET_DUMMY_HASH, .set_repr_call = 0,                        \
    .thread_name_attr = "_name", .thread_native_id_attr = "_native_id",     \
    .rt_interpreters_head = -1, .rt_gil_locked = -1, .rt_gil_last_holder = -1, \
    .is_ceval_gil = -1, .gil_locked = -1, .gil_last_holder = -1,            \
    .gil_state_size = -1, .var_ob_size = 16,                                \
    .ts_frame = -1, .ts_cframe = -1, .cf_current_frame = -1,                \
    .ts_current_frame = -1, .ts_native_thread_id = -1,                      \
    .ts_datastack_chunk = -1, .ts_datastack_top = -1,                       \
    .fo_back = -1, .fo_code = -1, .fo_lasti = -1,                           \
    .if_previous = -1, .if_code = -1, .if_instr = -1, .if_owner = -1,       \
    .if_size = -1, .owner_cstack = -1, .owner_cstack2 = -1, .owner_max = -1, \
    .if_is_entry = -1, .code_tagged = 0, .untested = 0, .gc_state_generations = -1, \
    .gc_state_generation0 = -1,                                             \
    .chunk_previous = -1, .chunk_size = -1, .chunk_top = -1, .chunk_data = -1, \
    .co_qualname = -1, .co_code_adaptive = -1,                              \
    .is_gc_generations = -1, .is_gc_collecting = -1, .gc_head_size = -1,    \
    .gc_generation_size = 24, .rt_gc_generations = -1, .rt_gc_collecting = -1, \
    .ob_type = 8, .tp_name = 24, .tp_basicsize = 32, .tp_flags = 168,       \
    .tp_base = 256, .tp_dictoffset = 288, .ht_cached_keys = -1, .md_dict = 16, \
    .uni_length = 16, .uni_hash = -1, .uni_state = -1, .uni_ascii_size = -1, \
    .uni_compact_size = -1, .uni_data_any = -1, .uni27_str = -1,            \
    .ma_used = -1, .ma_keys = -1, .ma_values = -1, .ma_mask = -1, .ma_table = -1, \
    .dk_size = -1, .dk_log2_size = -1, .dk_log2_index_bytes = -1,           \
    .dk_kind = -1, .dk_nentries = -1, .dk_indices = -1, .dv_values = -1,    \
    .managed = MANAGED_NONE,                                                \
    .fo_localsplus = -1, .if_localsplus = -1, .co_kwonlyargcount = -1,      \
    .co_nlocals = -1, .co_varnames = -1, .co_cellvars = -1, .co_freevars = -1, \
    .co_nlocalsplus = -1, .co_localsplusnames = -1, .co_localspluskinds = -1, \
    .co_stacksize = -1,                                                     \
    .tuple_item = 24, .list_item = 24, .float_fval = 16, .cell_ref = 16,    \
    .long_size = 16, .long_digit = 24, .long_tagged = 0, .int27_ival = -1,  \
    .set_used = 24, .set_mask = 32, .set_table = 40,                        \
    .setentry_key = 0, .setentry_hash = 8, .setentry_size = 16

/* 3.x strings: PEP 393 unicode, bytes. */
#define UNICODE3(ascii, compact)                                            \
    .strings = STR_UNICODE3, .bytes_size = 16, .bytes_sval = 32,            \
    .uni_hash = 24, .uni_state = 32, .uni_ascii_size = (ascii),             \
    .uni_compact_size = (compact), .uni_data_any = (compact)

#define FRAMEOBJ(lasti)                                                     \
    .frames = FRAME_OBJECTS, .fo_back = 24, .fo_code = 32, .fo_lasti = (lasti)

/* <= 3.10 locals: f_localsplus, then the code object's counts and name tuples. */
#define LOCALS_OLD(localsplus, argcount, kwonly, flags, nlocals, varnames, freevars, cellvars) \
    .fo_localsplus = (localsplus), .co_argcount = (argcount), .co_kwonlyargcount = (kwonly), \
    .co_argflags = (flags), .co_nlocals = (nlocals), .co_varnames = (varnames),            \
    .co_freevars = (freevars), .co_cellvars = (cellvars)

/* 3.11+ locals: the frame's localsplus, named and typed by two arrays of the code. */
#define LOCALS_NEW(argcount, kwonly, flags, nlocalsplus)                                   \
    .if_localsplus = 72, .co_argcount = (argcount), .co_kwonlyargcount = (kwonly),         \
    .co_argflags = (flags), .co_nlocalsplus = (nlocalsplus), .co_localsplusnames = 96,    \
    .co_localspluskinds = 104

#define DICT36(cached)                                                      \
    .dicts = DICT_36, .ma_used = 16, .ma_keys = 32, .ma_values = 40,        \
    .dk_size = 8, .dk_nentries = 32, .dk_indices = 40, .dv_values = 0,      \
    .ht_cached_keys = (cached)

#define DICT311(cached, values)                                             \
    .dicts = DICT_311, .ma_used = 16, .ma_keys = 32, .ma_values = 40,       \
    .dk_log2_size = 8, .dk_log2_index_bytes = 9, .dk_kind = 10,             \
    .dk_nentries = 24, .dk_indices = 32, .dv_values = (values),             \
    .ht_cached_keys = (cached)

#define IFRAME(previous, code, owner, cstack)                               \
    .frames = FRAME_INTERPRETER, .if_previous = (previous), .if_code = (code), \
    .if_instr = 56, .if_owner = (owner), .if_size = 80, .owner_cstack = (cstack), \
    .owner_max = (cstack) >= 0 ? (cstack) : 2,                              \
    .chunk_previous = 0, .chunk_size = 8, .chunk_top = 16, .chunk_data = 24

static const struct pylayout layouts[] = {
    {
        COMMON, .major = 2, .minor = 7, .gil = GIL_TSTATE_CURRENT,
        .runtime_symbol = "interp_head", .tstate_current_symbol = "_PyThreadState_Current",
        .gil_lock_symbol = "interpreter_lock",
        .narrow_unicode_symbol = "PyUnicodeUCS2_FromString",
        .eval_function = "PyEval_EvalFrameEx", .known_symbols = known27,
        .co_generator_flags = CO_GENERATOR, /* no coroutines; other meanings for those bits */
        .set_dummy = SET_DUMMY_STR27, .set_repr_call = 1,
        .thread_name_attr = "_Thread__name", .thread_native_id_attr = NULL,
        .gc_head_size = 32, .gc_generation_size = 40,
        .is_next = 0, .is_tstate_head = 8, .is_modules = 16,
        .ts_next = 0, .ts_interp = 8, .ts_frame = 16, .ts_thread_id = 144, .ts_size = 152,
        FRAMEOBJ(120),
        .co_filename = 80, .co_name = 88, .co_firstlineno = 96, .co_linetable = 104,
        .linetable = LINES_LNOTAB_27, .co_code = 32, .co_flags = 28,
        LOCALS_OLD(376, 16, -1, 28, 20, 56, 64, 72), .int27_ival = 16,
        .setentry_key = 8, .setentry_hash = 0,
        .strings = STR_BYTES27, .bytes_size = 16, .bytes_sval = 36, .uni27_str = 24,
        .dicts = DICT_27, .ma_used = 24, .ma_mask = 32, .ma_table = 40,
    },
    {
        COMMON, .major = 3, .minor = 6, .gil = GIL_TSTATE_CURRENT,
        .runtime_symbol = "interp_head", .tstate_current_symbol = "_PyThreadState_Current",
        .gil_static_symbols = {"gil_cond", "gil_mutex", "switch_cond", "switch_mutex"},
        .thread_native_id_attr = NULL,
        .gc_head_size = 32, .gc_generation_size = 48,
        .is_next = 0, .is_tstate_head = 8, .is_modules = 16,
        .ts_next = 8, .ts_interp = 16, .ts_frame = 24, .ts_thread_id = 152, .ts_size = 160,
        FRAMEOBJ(120),
        .co_filename = 96, .co_name = 104, .co_firstlineno = 36, .co_linetable = 112,
        .linetable = LINES_LNOTAB_36, .co_code = 40, .co_flags = 32, UNICODE3(48, 72), DICT36(856),
        LOCALS_OLD(376, 16, 20, 32, 24, 64, 72, 80),
    },
    {
        COMMON, .major = 3, .minor = 7, .gil = GIL_RUNTIME, .thread_native_id_attr = NULL,
        .rt_gc_generations = 352, .rt_gc_collecting = 632, .gc_head_size = 32,
        .gc_generation_size = 48,
        .rt_interpreters_head = 24, .rt_gil_locked = 1280, .rt_gil_last_holder = 1272,
        .gil_last_holder = 8, .gil_locked = 16, .gil_state_size = 208,
        .is_next = 0, .is_tstate_head = 8, .is_modules = 40,
        .ts_next = 8, .ts_interp = 16, .ts_frame = 24, .ts_thread_id = 176, .ts_size = 184,
        FRAMEOBJ(104),
        .co_filename = 96, .co_name = 104, .co_firstlineno = 36, .co_linetable = 112,
        .linetable = LINES_LNOTAB_36, .co_code = 40, .co_flags = 32, UNICODE3(48, 72), DICT36(856),
        LOCALS_OLD(360, 16, 20, 32, 24, 64, 72, 80),
    },
    {
        COMMON, .major = 3, .minor = 8, .gil = GIL_RUNTIME,
        .rt_gc_generations = 368, .rt_gc_collecting = 544, .gc_head_size = 16,
        .rt_interpreters_head = 32, .rt_gil_locked = 1168, .rt_gil_last_holder = 1160,
        .gil_last_holder = 8, .gil_locked = 16, .gil_state_size = 208,
        .is_next = 0, .is_tstate_head = 8, .is_modules = 56,
        .ts_next = 8, .ts_interp = 16, .ts_frame = 24, .ts_thread_id = 176, .ts_size = 184,
        FRAMEOBJ(104),
        .co_filename = 104, .co_name = 112, .co_firstlineno = 40, .co_linetable = 120,
        .linetable = LINES_LNOTAB_36, .co_code = 48, .co_flags = 36, UNICODE3(48, 72), DICT36(872),
        LOCALS_OLD(360, 16, 24, 36, 28, 72, 80, 88),
    },
    {
        COMMON, .major = 3, .minor = 9, .gil = GIL_RUNTIME,
        .is_gc_generations = 640, .is_gc_collecting = 816, .gc_head_size = 16,
        .rt_interpreters_head = 32, .rt_gil_locked = 368, .rt_gil_last_holder = 360,
        .gil_last_holder = 8, .gil_locked = 16, .gil_state_size = 208,
        .is_next = 0, .is_tstate_head = 8, .is_modules = 856,
        .ts_next = 8, .ts_interp = 16, .ts_frame = 24, .ts_thread_id = 176, .ts_size = 184,
        FRAMEOBJ(104),
        .co_filename = 104, .co_name = 112, .co_firstlineno = 40, .co_linetable = 120,
        .linetable = LINES_LNOTAB_36, .co_code = 48, .co_flags = 36, UNICODE3(48, 72), DICT36(864),
        LOCALS_OLD(360, 16, 24, 36, 28, 72, 80, 88),
    },
    {
        COMMON, .major = 3, .minor = 10, .gil = GIL_RUNTIME,
        .is_gc_generations = 640, .is_gc_collecting = 816, .gc_head_size = 16,
        .rt_interpreters_head = 32, .rt_gil_locked = 368, .rt_gil_last_holder = 360,
        .gil_last_holder = 8, .gil_locked = 16, .gil_state_size = 208,
        .is_next = 0, .is_tstate_head = 8, .is_modules = 856,
        .ts_next = 8, .ts_interp = 16, .ts_frame = 24, .ts_thread_id = 176, .ts_size = 184,
        FRAMEOBJ(96), .lasti_units = 1,
        .co_filename = 104, .co_name = 112, .co_firstlineno = 40, .co_linetable = 120,
        .linetable = LINES_LINETABLE_310, .co_code = 48, .co_flags = 36, UNICODE3(48, 72),
        DICT36(872),
        LOCALS_OLD(352, 16, 24, 36, 28, 72, 80, 88),
    },
    {
        COMMON, .major = 3, .minor = 11, .gil = GIL_RUNTIME,
        .is_gc_generations = 672, .is_gc_collecting = 848, .gc_head_size = 16,
        .rt_interpreters_head = 40, .rt_gil_locked = 376, .rt_gil_last_holder = 368,
        .gil_last_holder = 8, .gil_locked = 16, .gil_state_size = 208,
        .is_next = 0, .is_tstate_head = 16, .is_modules = 888,
        .ts_next = 8, .ts_interp = 16, .ts_cframe = 56, .cf_current_frame = 8,
        .ts_thread_id = 152, .ts_native_thread_id = 160,
        .ts_datastack_chunk = 296, .ts_datastack_top = 304, .ts_size = 312,
        IFRAME(48, 32, 69, -1), .if_is_entry = 68,
        .co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 72,
        .co_linetable = 136, .co_code_adaptive = 184, .linetable = LINES_LOCATIONS_311,
        UNICODE3(48, 72), DICT311(872, 0), .managed = MANAGED_311,
        LOCALS_NEW(56, 64, 48, 76), .co_stacksize = 68,
    },
    {
        COMMON, .major = 3, .minor = 12, .gil = GIL_INTERP,
        .is_gc_generations = 136, .is_gc_collecting = 312, .gc_head_size = 16,
        .rt_interpreters_head = 40, .is_ceval_gil = 384, .gil_last_holder = 8, .gil_locked = 16,
        .gil_state_size = 208,
        .is_next = 0, .is_tstate_head = 72, .is_modules = 944,
        .ts_next = 8, .ts_interp = 16, .ts_cframe = 56, .cf_current_frame = 0,
        .ts_thread_id = 136, .ts_native_thread_id = 144,
        .ts_datastack_chunk = 232, .ts_datastack_top = 240, .ts_size = 248,
        IFRAME(8, 0, 70, 3),
        .co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 68,
        .co_linetable = 136, .co_code_adaptive = 192, .linetable = LINES_LOCATIONS_311,
        UNICODE3(40, 56), DICT311(880, 0), .managed = MANAGED_312,
        LOCALS_NEW(52, 60, 48, 72), .co_stacksize = 64, .long_tagged = 1,
    },
    {
        COMMON, .major = 3, .minor = 13, .gil = GIL_INTERP, .debug_offsets = 1,
        .is_gc_generations = 7424, .is_gc_collecting = 7600, .gc_head_size = 16,
        .gc_state_generations = 24, .gc_state_generation0 = 96,
        .rt_interpreters_head = 632, .is_ceval_gil = 16, .gil_last_holder = 8, .gil_locked = 16,
        .gil_state_size = 208,
        .is_next = 7264, .is_tstate_head = 7344, .is_modules = 7656,
        .ts_next = 8, .ts_interp = 16, .ts_current_frame = 72,
        .ts_thread_id = 152, .ts_native_thread_id = 160,
        .ts_datastack_chunk = 232, .ts_datastack_top = 240, .ts_size = 248,
        IFRAME(8, 0, 70, 3),
        .co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 68,
        .co_linetable = 136, .co_code_adaptive = 200, .linetable = LINES_LOCATIONS_311,
        UNICODE3(40, 56), DICT311(880, 8), .managed = MANAGED_313,
        LOCALS_NEW(52, 60, 48, 72), .co_stacksize = 64, .long_tagged = 1,
    },
    /* 3.14: f_executable is a tagged stack reference; the eval loop's entry
     * frame is owned by the interpreter (3), a frame on the C stack by 4. */
    {
        COMMON, .major = 3, .minor = 14, .gil = GIL_INTERP, .debug_offsets = 1,
        .is_gc_generations = 7432, .is_gc_collecting = 7600, .gc_head_size = 16,
        .gc_state_generations = 24,
        .rt_interpreters_head = 808, .is_ceval_gil = 16, .gil_last_holder = 8, .gil_locked = 16,
        .gil_state_size = 208,
        .is_next = 7272, .is_tstate_head = 7344, .is_modules = 7688,
        .ts_next = 8, .ts_interp = 16, .ts_current_frame = 72,
        .ts_thread_id = 152, .ts_native_thread_id = 160,
        .ts_datastack_chunk = 232, .ts_datastack_top = 240, .ts_size = 248,
        IFRAME(8, 0, 74, 3), .if_size = 88, .owner_cstack2 = 4, .owner_max = 4,
        .code_tagged = 1,
        .co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 68,
        .co_linetable = 136, .co_code_adaptive = 208, .linetable = LINES_LOCATIONS_311,
        UNICODE3(40, 56), DICT311(880, 8), .managed = MANAGED_313,
        LOCALS_NEW(52, 60, 48, 72), .if_localsplus = 80, .co_stacksize = 64, .long_tagged = 1,
        .tuple_item = 32,
    },
    /* 3.15: the C-stack owner is gone; the thread ids moved. */
    {
        COMMON, .major = 3, .minor = 15, .gil = GIL_INTERP, .debug_offsets = 1,
        .is_gc_generations = 7408, .is_gc_collecting = 7512, .gc_head_size = 16,
        .gc_state_generations = 8,
        .rt_interpreters_head = 936, .is_ceval_gil = 16, .gil_last_holder = 8, .gil_locked = 16,
        .gil_state_size = 208,
        .is_next = 7264, .is_tstate_head = 7336, .is_modules = 7592,
        .ts_next = 8, .ts_interp = 16, .ts_current_frame = 72,
        .ts_thread_id = 176, .ts_native_thread_id = 184,
        .ts_datastack_chunk = 256, .ts_datastack_top = 264, .ts_size = 272,
        IFRAME(8, 0, 74, 3), .if_size = 88, .code_tagged = 1,
        .co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 68,
        .co_linetable = 136, .co_code_adaptive = 208, .linetable = LINES_LOCATIONS_311,
        UNICODE3(40, 56), DICT311(888, 8), .managed = MANAGED_313,
        LOCALS_NEW(52, 60, 48, 72), .if_localsplus = 80, .co_stacksize = 64, .long_tagged = 1,
        .tuple_item = 32,
    },
};

const struct pylayout *layout_for(int major, int minor)
{
    for (size_t i = 0; i < ARRAY_SIZE(layouts); i++)
        if (layouts[i].major == major && layouts[i].minor == minor)
            return &layouts[i];
    return NULL;
}

const char *layout_supported(void)
{
    /* The table's versions, consecutive minors as a range: "2.7, 3.6-3.13". */
    static char buf[128];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(layouts); i++) {
        size_t j = i;
        while (j + 1 < ARRAY_SIZE(layouts) && layouts[j + 1].major == layouts[i].major &&
               layouts[j + 1].minor == layouts[j].minor + 1)
            j++;
        int n = j > i ? snprintf(buf + len, sizeof(buf) - len, "%s%d.%d-%d.%d", i ? ", " : "",
                                 layouts[i].major, layouts[i].minor, layouts[j].major,
                                 layouts[j].minor)
                      : snprintf(buf + len, sizeof(buf) - len, "%s%d.%d", i ? ", " : "",
                                 layouts[i].major, layouts[i].minor);
        if (n < 0 || (size_t)n >= sizeof(buf) - len)
            break;
        len += (size_t)n;
        i = j;
    }
    return buf;
}

void layout_str_facts(const struct pylayout *l, struct pystr_layout *out)
{
    *out = (struct pystr_layout){
        .bytes27 = l->strings == STR_BYTES27,
        .bytes_size = l->bytes_size,
        .bytes_sval = l->bytes_sval,
        .uni_length = l->uni_length,
        .uni_state = l->uni_state,
        .uni_ascii_size = l->uni_ascii_size,
        .uni_compact_size = l->uni_compact_size,
        .uni_data_any = l->uni_data_any,
        .uni27_str = l->uni27_str,
    };
}

static enum lt_format lines_format(enum lines_kind k)
{
    switch (k) {
    case LINES_LNOTAB_27:
        return LT_LNOTAB_27;
    case LINES_LNOTAB_36:
        return LT_LNOTAB_36;
    case LINES_LINETABLE_310:
        return LT_LINETABLE_310;
    case LINES_LOCATIONS_311:
        break;
    }
    return LT_LOCATIONS_311;
}

void layout_code_facts(const struct pylayout *l, struct code_facts *out)
{
    *out = (struct code_facts){
        .ob_type = l->ob_type,
        .tp_name = l->tp_name,
        .co_filename = l->co_filename,
        .co_name = l->co_name,
        .co_qualname = l->co_qualname,
        .co_firstlineno = l->co_firstlineno,
        .co_linetable = l->co_linetable,
        .co_code_adaptive = l->co_code_adaptive,
        .ob_size = l->var_ob_size,
        .co_code = l->co_code,
        .co_flags = l->co_flags,
        .co_stacksize = l->co_stacksize,
        .co_nlocalsplus = l->co_nlocalsplus,
        .frame_size = l->if_size,
        .generator_flags = l->co_generator_flags,
        .linetable = lines_format(l->linetable),
        /* Named code objects of the interpreter's own: the trampoline the
         * C-stack entry frames run (3.12+), __init__'s cleanup (3.13+; looked
         * for wherever those frames are). */
        .trampoline = l->owner_cstack >= 0,
        .init_shim = l->co_code_adaptive > 0 && l->owner_cstack >= 0,
        .ops = opcodes_for(l->major, l->minor),
    };
    layout_str_facts(l, &out->str);
}

/*
 * _Py_DebugOffsets as an array of uint64 slots: slot 0 is the cookie, then
 * the version, free_threaded and the per-structure groups, each starting
 * with the structure's size.  Each version inserts fields in the middle of
 * groups, so each has its own slot numbers (offsetof / 8 against its
 * headers: tools/probe-offsets.c's _Py_DebugOffsets part).
 */
enum dfield {
    DF_VERSION, DF_FREE_THREADED,
    DF_RT_SIZE, DF_RT_INTERPRETERS_HEAD,
    DF_IS_SIZE, DF_IS_NEXT, DF_IS_THREADS_HEAD, DF_IS_GC, DF_IS_MODULES, DF_IS_CEVAL_GIL,
    DF_IS_GIL_STATE, DF_IS_GIL_LOCKED, DF_IS_GIL_HOLDER,
    DF_TS_SIZE, DF_TS_NEXT, DF_TS_INTERP, DF_TS_CURRENT_FRAME, DF_TS_THREAD_ID,
    DF_TS_NATIVE_THREAD_ID, DF_TS_DATASTACK_CHUNK,
    DF_IF_SIZE, DF_IF_PREVIOUS, DF_IF_EXECUTABLE, DF_IF_INSTR_PTR, DF_IF_LOCALSPLUS, DF_IF_OWNER,
    DF_CO_SIZE, DF_CO_FILENAME, DF_CO_NAME, DF_CO_QUALNAME, DF_CO_LINETABLE, DF_CO_FIRSTLINENO,
    DF_CO_ARGCOUNT, DF_CO_LOCALSPLUSNAMES, DF_CO_LOCALSPLUSKINDS, DF_CO_CODE_ADAPTIVE,
    DF_OB_SIZE, DF_OB_TYPE, DF_TP_SIZE, DF_TP_NAME, DF_TP_FLAGS,
    DF_TUPLE_SIZE, DF_TUPLE_ITEM, DF_LIST_SIZE, DF_LIST_ITEM,
    DF_DICT_SIZE, DF_DICT_KEYS, DF_DICT_VALUES, DF_FLOAT_SIZE, DF_FLOAT_FVAL,
    DF_LONG_SIZE, DF_LONG_TAG, DF_LONG_DIGIT, DF_BYTES_SIZE, DF_BYTES_OB_SIZE, DF_BYTES_SVAL,
    DF_UNI_SIZE, DF_UNI_STATE, DF_UNI_LENGTH, DF_UNI_ASCII_SIZE,
    DF_GC_SIZE, DF_GC_COLLECTING,
    DF_COUNT
};

/* CPython's names of the fields, for messages and layout_debug_slot. */
static const char *const dfield_names[DF_COUNT] = {
    [DF_VERSION] = "version", [DF_FREE_THREADED] = "free_threaded",
    [DF_RT_SIZE] = "runtime_state.size",
    [DF_RT_INTERPRETERS_HEAD] = "runtime_state.interpreters_head",
    [DF_IS_SIZE] = "interpreter_state.size", [DF_IS_NEXT] = "interpreter_state.next",
    [DF_IS_THREADS_HEAD] = "interpreter_state.threads_head",
    [DF_IS_GC] = "interpreter_state.gc",
    [DF_IS_MODULES] = "interpreter_state.imports_modules",
    [DF_IS_CEVAL_GIL] = "interpreter_state.ceval_gil",
    [DF_IS_GIL_STATE] = "interpreter_state.gil_runtime_state",
    [DF_IS_GIL_LOCKED] = "interpreter_state.gil_runtime_state_locked",
    [DF_IS_GIL_HOLDER] = "interpreter_state.gil_runtime_state_holder",
    [DF_TS_SIZE] = "thread_state.size", [DF_TS_NEXT] = "thread_state.next",
    [DF_TS_INTERP] = "thread_state.interp", [DF_TS_CURRENT_FRAME] = "thread_state.current_frame",
    [DF_TS_THREAD_ID] = "thread_state.thread_id",
    [DF_TS_NATIVE_THREAD_ID] = "thread_state.native_thread_id",
    [DF_TS_DATASTACK_CHUNK] = "thread_state.datastack_chunk",
    [DF_IF_SIZE] = "interpreter_frame.size", [DF_IF_PREVIOUS] = "interpreter_frame.previous",
    [DF_IF_EXECUTABLE] = "interpreter_frame.executable",
    [DF_IF_INSTR_PTR] = "interpreter_frame.instr_ptr",
    [DF_IF_LOCALSPLUS] = "interpreter_frame.localsplus",
    [DF_IF_OWNER] = "interpreter_frame.owner",
    [DF_CO_SIZE] = "code_object.size", [DF_CO_FILENAME] = "code_object.filename",
    [DF_CO_NAME] = "code_object.name", [DF_CO_QUALNAME] = "code_object.qualname",
    [DF_CO_LINETABLE] = "code_object.linetable", [DF_CO_FIRSTLINENO] = "code_object.firstlineno",
    [DF_CO_ARGCOUNT] = "code_object.argcount",
    [DF_CO_LOCALSPLUSNAMES] = "code_object.localsplusnames",
    [DF_CO_LOCALSPLUSKINDS] = "code_object.localspluskinds",
    [DF_CO_CODE_ADAPTIVE] = "code_object.co_code_adaptive",
    [DF_OB_SIZE] = "pyobject.size", [DF_OB_TYPE] = "pyobject.ob_type",
    [DF_TP_SIZE] = "type_object.size", [DF_TP_NAME] = "type_object.tp_name",
    [DF_TP_FLAGS] = "type_object.tp_flags",
    [DF_TUPLE_SIZE] = "tuple_object.size", [DF_TUPLE_ITEM] = "tuple_object.ob_item",
    [DF_LIST_SIZE] = "list_object.size", [DF_LIST_ITEM] = "list_object.ob_item",
    [DF_DICT_SIZE] = "dict_object.size", [DF_DICT_KEYS] = "dict_object.ma_keys",
    [DF_DICT_VALUES] = "dict_object.ma_values",
    [DF_FLOAT_SIZE] = "float_object.size", [DF_FLOAT_FVAL] = "float_object.ob_fval",
    [DF_LONG_SIZE] = "long_object.size", [DF_LONG_TAG] = "long_object.lv_tag",
    [DF_LONG_DIGIT] = "long_object.ob_digit",
    [DF_BYTES_SIZE] = "bytes_object.size", [DF_BYTES_OB_SIZE] = "bytes_object.ob_size",
    [DF_BYTES_SVAL] = "bytes_object.ob_sval",
    [DF_UNI_SIZE] = "unicode_object.size", [DF_UNI_STATE] = "unicode_object.state",
    [DF_UNI_LENGTH] = "unicode_object.length",
    [DF_UNI_ASCII_SIZE] = "unicode_object.asciiobject_size",
    [DF_GC_SIZE] = "gc.size", [DF_GC_COLLECTING] = "gc.collecting",
};

struct debug_map {
    int minor;
    int nslots;                 /* sizeof(_Py_DebugOffsets) / 8 */
    unsigned char slot[DF_COUNT];
};

/* The slots of 3.13.0-3.13.18, 3.14.10 and 3.15.2 (each measured). */
static const struct debug_map debug_maps[] = {
    {13, 73, {
        [DF_VERSION] = 1, [DF_FREE_THREADED] = 2, [DF_RT_SIZE] = 3, [DF_RT_INTERPRETERS_HEAD] = 5,
        [DF_IS_SIZE] = 6, [DF_IS_NEXT] = 8, [DF_IS_THREADS_HEAD] = 9, [DF_IS_GC] = 10,
        [DF_IS_MODULES] = 11, [DF_IS_CEVAL_GIL] = 14, [DF_IS_GIL_STATE] = 15,
        [DF_IS_GIL_LOCKED] = 17, [DF_IS_GIL_HOLDER] = 18,
        [DF_TS_SIZE] = 19, [DF_TS_NEXT] = 21, [DF_TS_INTERP] = 22, [DF_TS_CURRENT_FRAME] = 23,
        [DF_TS_THREAD_ID] = 24, [DF_TS_NATIVE_THREAD_ID] = 25, [DF_TS_DATASTACK_CHUNK] = 26,
        [DF_IF_SIZE] = 28, [DF_IF_PREVIOUS] = 29, [DF_IF_EXECUTABLE] = 30, [DF_IF_INSTR_PTR] = 31,
        [DF_IF_LOCALSPLUS] = 32, [DF_IF_OWNER] = 33,
        [DF_CO_SIZE] = 34, [DF_CO_FILENAME] = 35, [DF_CO_NAME] = 36, [DF_CO_QUALNAME] = 37,
        [DF_CO_LINETABLE] = 38, [DF_CO_FIRSTLINENO] = 39, [DF_CO_ARGCOUNT] = 40,
        [DF_CO_LOCALSPLUSNAMES] = 41, [DF_CO_LOCALSPLUSKINDS] = 42, [DF_CO_CODE_ADAPTIVE] = 43,
        [DF_OB_SIZE] = 44, [DF_OB_TYPE] = 45, [DF_TP_SIZE] = 46, [DF_TP_NAME] = 47,
        [DF_TP_FLAGS] = 49, [DF_TUPLE_SIZE] = 50, [DF_TUPLE_ITEM] = 51, [DF_LIST_SIZE] = 53,
        [DF_LIST_ITEM] = 54, [DF_DICT_SIZE] = 56, [DF_DICT_KEYS] = 57, [DF_DICT_VALUES] = 58,
        [DF_FLOAT_SIZE] = 59, [DF_FLOAT_FVAL] = 60, [DF_LONG_SIZE] = 61, [DF_LONG_TAG] = 62,
        [DF_LONG_DIGIT] = 63, [DF_BYTES_SIZE] = 64, [DF_BYTES_OB_SIZE] = 65, [DF_BYTES_SVAL] = 66,
        [DF_UNI_SIZE] = 67, [DF_UNI_STATE] = 68, [DF_UNI_LENGTH] = 69, [DF_UNI_ASCII_SIZE] = 70,
        [DF_GC_SIZE] = 71, [DF_GC_COLLECTING] = 72,
    }},
    /* 3.14 adds interpreter_state.{id...}.code_object_generation and
     * tlbc_generation, thread_state.prev/status moved, frame stackpointer and
     * tlbc_index, co_tlbc, tp_repr, set_object, gen_object, llist_node,
     * debugger_support. */
    {14, 95, {
        [DF_VERSION] = 1, [DF_FREE_THREADED] = 2, [DF_RT_SIZE] = 3, [DF_RT_INTERPRETERS_HEAD] = 5,
        [DF_IS_SIZE] = 6, [DF_IS_NEXT] = 8, [DF_IS_THREADS_HEAD] = 9, [DF_IS_GC] = 11,
        [DF_IS_MODULES] = 12, [DF_IS_CEVAL_GIL] = 15, [DF_IS_GIL_STATE] = 16,
        [DF_IS_GIL_LOCKED] = 18, [DF_IS_GIL_HOLDER] = 19,
        [DF_TS_SIZE] = 22, [DF_TS_NEXT] = 24, [DF_TS_INTERP] = 25, [DF_TS_CURRENT_FRAME] = 26,
        [DF_TS_THREAD_ID] = 27, [DF_TS_NATIVE_THREAD_ID] = 28, [DF_TS_DATASTACK_CHUNK] = 29,
        [DF_IF_SIZE] = 31, [DF_IF_PREVIOUS] = 32, [DF_IF_EXECUTABLE] = 33, [DF_IF_INSTR_PTR] = 34,
        [DF_IF_LOCALSPLUS] = 35, [DF_IF_OWNER] = 36,
        [DF_CO_SIZE] = 39, [DF_CO_FILENAME] = 40, [DF_CO_NAME] = 41, [DF_CO_QUALNAME] = 42,
        [DF_CO_LINETABLE] = 43, [DF_CO_FIRSTLINENO] = 44, [DF_CO_ARGCOUNT] = 45,
        [DF_CO_LOCALSPLUSNAMES] = 46, [DF_CO_LOCALSPLUSKINDS] = 47, [DF_CO_CODE_ADAPTIVE] = 48,
        [DF_OB_SIZE] = 50, [DF_OB_TYPE] = 51, [DF_TP_SIZE] = 52, [DF_TP_NAME] = 53,
        [DF_TP_FLAGS] = 55, [DF_TUPLE_SIZE] = 56, [DF_TUPLE_ITEM] = 57, [DF_LIST_SIZE] = 59,
        [DF_LIST_ITEM] = 60, [DF_DICT_SIZE] = 66, [DF_DICT_KEYS] = 67, [DF_DICT_VALUES] = 68,
        [DF_FLOAT_SIZE] = 69, [DF_FLOAT_FVAL] = 70, [DF_LONG_SIZE] = 71, [DF_LONG_TAG] = 72,
        [DF_LONG_DIGIT] = 73, [DF_BYTES_SIZE] = 74, [DF_BYTES_OB_SIZE] = 75, [DF_BYTES_SVAL] = 76,
        [DF_UNI_SIZE] = 77, [DF_UNI_STATE] = 78, [DF_UNI_LENGTH] = 79, [DF_UNI_ASCII_SIZE] = 80,
        [DF_GC_SIZE] = 81, [DF_GC_COLLECTING] = 82,
    }},
    /* 3.15 adds thread_state.{base_frame, last_profiled_frame...}, holds_gil,
     * gil_requested, exception state, tp_basicsize and tp_dictoffset, the
     * heap type, compactunicodeobject_size, gc.frame and generation stats. */
    {15, 111, {
        [DF_VERSION] = 1, [DF_FREE_THREADED] = 2, [DF_RT_SIZE] = 3, [DF_RT_INTERPRETERS_HEAD] = 5,
        [DF_IS_SIZE] = 6, [DF_IS_NEXT] = 8, [DF_IS_THREADS_HEAD] = 9, [DF_IS_GC] = 11,
        [DF_IS_MODULES] = 12, [DF_IS_CEVAL_GIL] = 15, [DF_IS_GIL_STATE] = 16,
        [DF_IS_GIL_LOCKED] = 18, [DF_IS_GIL_HOLDER] = 19,
        [DF_TS_SIZE] = 22, [DF_TS_NEXT] = 24, [DF_TS_INTERP] = 25, [DF_TS_CURRENT_FRAME] = 26,
        [DF_TS_THREAD_ID] = 30, [DF_TS_NATIVE_THREAD_ID] = 31, [DF_TS_DATASTACK_CHUNK] = 32,
        [DF_IF_SIZE] = 39, [DF_IF_PREVIOUS] = 40, [DF_IF_EXECUTABLE] = 41, [DF_IF_INSTR_PTR] = 42,
        [DF_IF_LOCALSPLUS] = 43, [DF_IF_OWNER] = 44,
        [DF_CO_SIZE] = 47, [DF_CO_FILENAME] = 48, [DF_CO_NAME] = 49, [DF_CO_QUALNAME] = 50,
        [DF_CO_LINETABLE] = 51, [DF_CO_FIRSTLINENO] = 52, [DF_CO_ARGCOUNT] = 53,
        [DF_CO_LOCALSPLUSNAMES] = 54, [DF_CO_LOCALSPLUSKINDS] = 55, [DF_CO_CODE_ADAPTIVE] = 56,
        [DF_OB_SIZE] = 58, [DF_OB_TYPE] = 59, [DF_TP_SIZE] = 60, [DF_TP_NAME] = 61,
        [DF_TP_FLAGS] = 63, [DF_TUPLE_SIZE] = 68, [DF_TUPLE_ITEM] = 69, [DF_LIST_SIZE] = 71,
        [DF_LIST_ITEM] = 72, [DF_DICT_SIZE] = 78, [DF_DICT_KEYS] = 79, [DF_DICT_VALUES] = 80,
        [DF_FLOAT_SIZE] = 81, [DF_FLOAT_FVAL] = 82, [DF_LONG_SIZE] = 83, [DF_LONG_TAG] = 84,
        [DF_LONG_DIGIT] = 85, [DF_BYTES_SIZE] = 86, [DF_BYTES_OB_SIZE] = 87, [DF_BYTES_SVAL] = 88,
        [DF_UNI_SIZE] = 89, [DF_UNI_STATE] = 90, [DF_UNI_LENGTH] = 91, [DF_UNI_ASCII_SIZE] = 92,
        [DF_GC_SIZE] = 94, [DF_GC_COLLECTING] = 95,
    }},
};
_Static_assert(DEBUG_OFFSETS_SIZE >= 111 * 8, "DEBUG_OFFSETS_SIZE covers every known version");

static const struct debug_map *debug_map_for(int minor)
{
    for (size_t i = 0; i < ARRAY_SIZE(debug_maps); i++)
        if (debug_maps[i].minor == minor)
            return &debug_maps[i];
    return NULL;
}

int layout_newest_minor(void)
{
    int newest = 0;
    for (size_t i = 0; i < ARRAY_SIZE(layouts); i++)
        if (layouts[i].major == 3 && layouts[i].minor > newest)
            newest = layouts[i].minor;
    return newest;
}

int layout_debug_slot(int minor, const char *field)
{
    const struct debug_map *m = debug_map_for(minor);
    for (int f = 0; m && f < DF_COUNT; f++)
        if (strcmp(dfield_names[f], field) == 0)
            return m->slot[f];
    return -1;
}

/* The target's debug offsets by field. */
struct dvals {
    uint64_t v[DF_COUNT];
    int major, minor;
};

/* Checks that field (of width bytes) lies within a structure of size bytes. */
static int field_ok(uint64_t field, uint64_t size, uint64_t width)
{
    return size > 0 && size < (1u << 24) && field < size && width <= size - field;
}

static int bad_field(const struct dvals *d, int f, int size_f, struct pserr *err)
{
    return pserr_set(err, EINVAL,
                     "_Py_DebugOffsets of Python %d.%d: %s (%llu) is not within its "
                     "structure (%s %llu): pystrobe cannot read this build",
                     d->major, d->minor, dfield_names[f], (unsigned long long)d->v[f],
                     dfield_names[size_f], (unsigned long long)d->v[size_f]);
}

static int inconsistent(const struct dvals *d, int f, struct pserr *err)
{
    return pserr_set(err, EINVAL,
                     "_Py_DebugOffsets of Python %d.%d: %s (%llu) is inconsistent with the "
                     "other offsets: pystrobe cannot read this build",
                     d->major, d->minor, dfield_names[f], (unsigned long long)d->v[f]);
}

/* Every field the debug offsets give lies within its structure's size, and they agree. */
static int check_debug_offsets(const struct dvals *dv, struct pserr *err)
{
    const uint64_t *d = dv->v;
    static const struct {
        unsigned char size_f, field_f, width;
    } checks[] = {
        {DF_RT_SIZE, DF_RT_INTERPRETERS_HEAD, 8},
        {DF_IS_SIZE, DF_IS_NEXT, 8}, {DF_IS_SIZE, DF_IS_THREADS_HEAD, 8},
        {DF_IS_SIZE, DF_IS_MODULES, 8}, {DF_IS_SIZE, DF_IS_CEVAL_GIL, 8},
        {DF_IS_SIZE, DF_IS_GIL_STATE, 8}, {DF_IS_SIZE, DF_IS_GIL_LOCKED, 4},
        {DF_IS_SIZE, DF_IS_GIL_HOLDER, 8}, {DF_IS_SIZE, DF_IS_GC, 8},
        {DF_TS_SIZE, DF_TS_NEXT, 8}, {DF_TS_SIZE, DF_TS_INTERP, 8},
        {DF_TS_SIZE, DF_TS_CURRENT_FRAME, 8}, {DF_TS_SIZE, DF_TS_THREAD_ID, 8},
        {DF_TS_SIZE, DF_TS_NATIVE_THREAD_ID, 8}, {DF_TS_SIZE, DF_TS_DATASTACK_CHUNK, 16},
        {DF_IF_SIZE, DF_IF_PREVIOUS, 8}, {DF_IF_SIZE, DF_IF_EXECUTABLE, 8},
        {DF_IF_SIZE, DF_IF_INSTR_PTR, 8}, {DF_IF_SIZE, DF_IF_OWNER, 1},
        {DF_CO_SIZE, DF_CO_FILENAME, 8}, {DF_CO_SIZE, DF_CO_NAME, 8},
        {DF_CO_SIZE, DF_CO_QUALNAME, 8}, {DF_CO_SIZE, DF_CO_LINETABLE, 8},
        {DF_CO_SIZE, DF_CO_FIRSTLINENO, 4}, {DF_CO_SIZE, DF_CO_ARGCOUNT, 4},
        {DF_CO_SIZE, DF_CO_LOCALSPLUSNAMES, 8}, {DF_CO_SIZE, DF_CO_LOCALSPLUSKINDS, 8},
        {DF_TUPLE_SIZE, DF_TUPLE_ITEM, 8}, {DF_LIST_SIZE, DF_LIST_ITEM, 8},
        {DF_FLOAT_SIZE, DF_FLOAT_FVAL, 8}, {DF_LONG_SIZE, DF_LONG_TAG, 8},
        {DF_LONG_SIZE, DF_LONG_DIGIT, 4},
        {DF_OB_SIZE, DF_OB_TYPE, 8}, {DF_TP_SIZE, DF_TP_NAME, 8}, {DF_TP_SIZE, DF_TP_FLAGS, 8},
        {DF_DICT_SIZE, DF_DICT_KEYS, 8}, {DF_DICT_SIZE, DF_DICT_VALUES, 8},
        {DF_BYTES_SIZE, DF_BYTES_OB_SIZE, 8}, {DF_BYTES_SIZE, DF_BYTES_SVAL, 1},
        {DF_UNI_SIZE, DF_UNI_STATE, 4}, {DF_UNI_SIZE, DF_UNI_LENGTH, 8},
        {DF_GC_SIZE, DF_GC_COLLECTING, 4},
    };
    for (size_t i = 0; i < ARRAY_SIZE(checks); i++)
        if (!field_ok(d[checks[i].field_f], d[checks[i].size_f], (uint64_t)checks[i].width))
            return bad_field(dv, checks[i].field_f, checks[i].size_f, err);
    /* The gc state lies within the interpreter state. */
    if (!field_ok(d[DF_IS_GC], d[DF_IS_SIZE], d[DF_GC_SIZE]))
        return bad_field(dv, DF_IS_GC, DF_IS_SIZE, err);
    /* co_code_adaptive is the start of the bytecode, at or past the end of the header. */
    if (d[DF_CO_CODE_ADAPTIVE] > d[DF_CO_SIZE])
        return bad_field(dv, DF_CO_CODE_ADAPTIVE, DF_CO_SIZE, err);
    if (d[DF_UNI_ASCII_SIZE] > d[DF_UNI_SIZE])
        return bad_field(dv, DF_UNI_ASCII_SIZE, DF_UNI_SIZE, err);
    if (d[DF_UNI_STATE] + 4 > d[DF_UNI_ASCII_SIZE])
        return inconsistent(dv, DF_UNI_STATE, err);
    if (d[DF_UNI_LENGTH] + 8 > d[DF_UNI_ASCII_SIZE])
        return inconsistent(dv, DF_UNI_LENGTH, err);
    if (d[DF_IS_GIL_LOCKED] < d[DF_IS_GIL_STATE] || d[DF_IS_GIL_LOCKED] - d[DF_IS_GIL_STATE] > 64)
        return inconsistent(dv, DF_IS_GIL_LOCKED, err);
    if (d[DF_IS_GIL_HOLDER] < d[DF_IS_GIL_STATE] || d[DF_IS_GIL_HOLDER] - d[DF_IS_GIL_STATE] > 64)
        return inconsistent(dv, DF_IS_GIL_HOLDER, err);
    /* localsplus is a flexible array at the frame's end: it may equal the size. */
    if (d[DF_IF_LOCALSPLUS] > d[DF_IF_SIZE])
        return bad_field(dv, DF_IF_LOCALSPLUS, DF_IF_SIZE, err);
    return 0;
}

/* Takes the debug offsets d into l (a copy of the version's table). */
static void apply_debug_offsets(struct pylayout *l, const uint64_t *d)
{
    l->rt_interpreters_head = (int)d[DF_RT_INTERPRETERS_HEAD];
    l->is_next = (int)d[DF_IS_NEXT];
    l->is_tstate_head = (int)d[DF_IS_THREADS_HEAD];
    l->is_modules = (int)d[DF_IS_MODULES];
    l->is_ceval_gil = (int)d[DF_IS_CEVAL_GIL];
    l->gil_locked = (int)(d[DF_IS_GIL_LOCKED] - d[DF_IS_GIL_STATE]);
    l->gil_last_holder = (int)(d[DF_IS_GIL_HOLDER] - d[DF_IS_GIL_STATE]);
    /* The generations' place in the gc state is the table's; where that
     * state is, and its collecting flag, the target's. */
    if (l->gc_state_generations >= 0 &&
        (uint64_t)l->gc_state_generations + 3 * (uint64_t)l->gc_generation_size <= d[DF_GC_SIZE])
        l->is_gc_generations = (int)d[DF_IS_GC] + l->gc_state_generations;
    else
        l->is_gc_generations = -1;
    l->is_gc_collecting = (int)(d[DF_IS_GC] + d[DF_GC_COLLECTING]);
    l->ts_next = (int)d[DF_TS_NEXT];
    l->ts_interp = (int)d[DF_TS_INTERP];
    l->ts_current_frame = (int)d[DF_TS_CURRENT_FRAME];
    l->ts_thread_id = (int)d[DF_TS_THREAD_ID];
    l->ts_native_thread_id = (int)d[DF_TS_NATIVE_THREAD_ID];
    l->ts_datastack_chunk = (int)d[DF_TS_DATASTACK_CHUNK];
    /* datastack_top follows datastack_chunk; the table does not list it. */
    l->ts_datastack_top = l->ts_datastack_chunk + 8;
    int ts_end = 0;
    const int ts_fields[] = {l->ts_next, l->ts_interp, l->ts_current_frame, l->ts_thread_id,
                             l->ts_native_thread_id, l->ts_datastack_top};
    for (size_t i = 0; i < ARRAY_SIZE(ts_fields); i++)
        ts_end = MAX(ts_end, ts_fields[i] + 8);
    l->ts_size = ts_end;
    l->if_size = (int)d[DF_IF_SIZE];
    l->if_previous = (int)d[DF_IF_PREVIOUS];
    l->if_code = (int)d[DF_IF_EXECUTABLE];
    l->if_instr = (int)d[DF_IF_INSTR_PTR];
    l->if_owner = (int)d[DF_IF_OWNER];
    l->co_filename = (int)d[DF_CO_FILENAME];
    l->co_name = (int)d[DF_CO_NAME];
    l->co_qualname = (int)d[DF_CO_QUALNAME];
    l->co_linetable = (int)d[DF_CO_LINETABLE];
    l->co_firstlineno = (int)d[DF_CO_FIRSTLINENO];
    l->co_code_adaptive = (int)d[DF_CO_CODE_ADAPTIVE];
    /* localsplus is a flexible array at the frame's end (checked: at most the size). */
    l->if_localsplus = (int)d[DF_IF_LOCALSPLUS];
    l->co_argcount = (int)d[DF_CO_ARGCOUNT];
    l->co_localsplusnames = (int)d[DF_CO_LOCALSPLUSNAMES];
    l->co_localspluskinds = (int)d[DF_CO_LOCALSPLUSKINDS];
    l->tuple_item = (int)d[DF_TUPLE_ITEM];
    l->list_item = (int)d[DF_LIST_ITEM];
    l->float_fval = (int)d[DF_FLOAT_FVAL];
    l->long_size = (int)d[DF_LONG_TAG];
    l->long_digit = (int)d[DF_LONG_DIGIT];
    l->ob_type = (int)d[DF_OB_TYPE];
    l->tp_name = (int)d[DF_TP_NAME];
    l->tp_flags = (int)d[DF_TP_FLAGS];
    l->ma_keys = (int)d[DF_DICT_KEYS];
    l->ma_values = (int)d[DF_DICT_VALUES];
    l->bytes_size = (int)d[DF_BYTES_OB_SIZE];
    l->bytes_sval = (int)d[DF_BYTES_SVAL];
    l->uni_state = (int)d[DF_UNI_STATE];
    l->uni_length = (int)d[DF_UNI_LENGTH];
    l->uni_ascii_size = (int)d[DF_UNI_ASCII_SIZE];
}

int layout_from_debug_offsets(struct pylayout *out, const void *buf, size_t len,
                              struct pserr *err)
{
    uint64_t head[3];
    if (len < sizeof(head) || memcmp(buf, DEBUG_OFFSETS_COOKIE, 8) != 0)
        return pserr_set(err, EINVAL, "_Py_DebugOffsets: no \"xdebugpy\" cookie");
    memcpy(head, buf, sizeof(head));
    uint64_t v = head[1];
    int major = (int)((v >> 24) & 0xff), minor = (int)((v >> 16) & 0xff);
    const struct pylayout *base = layout_for(major, minor);
    int untested = 0;
    /* A newer 3.x than pystrobe knows is read as the newest it knows: its
     * debug offsets say where the fields are, and the checks below hold
     * them to their structures. */
    if (!base && major == 3 && minor > layout_newest_minor() && minor < 100) {
        base = layout_for(3, layout_newest_minor());
        untested = 1;
    }
    if (!base || !base->debug_offsets)
        return pserr_set(err, ENOTSUP, "Python %d.%d is not supported (pystrobe knows %s)",
                         major, minor, layout_supported());
    const struct debug_map *m = debug_map_for(base->minor);
    if (!m)
        return pserr_set(err, ENOTSUP, "Python %d.%d: pystrobe has no _Py_DebugOffsets map",
                         major, minor);
    if (len < (size_t)m->nslots * 8)
        return pserr_set(err, EINVAL, "_Py_DebugOffsets: %zu bytes, Python %d.%d's are %d",
                         len, major, minor, m->nslots * 8);
    if (head[2])
        return pserr_set(err, ENOTSUP,
                         "Python %d.%d free-threaded builds are not supported", major, minor);

    struct dvals d = {.major = major, .minor = minor};
    for (int f = 0; f < DF_COUNT; f++)
        memcpy(&d.v[f], (const char *)buf + 8 * (size_t)m->slot[f], 8);
    int ret = check_debug_offsets(&d, err);
    if (ret < 0)
        return ret;
    struct pylayout l = *base;
    apply_debug_offsets(&l, d.v);
    if (untested) {
        l.minor = minor;
        l.untested = 1;
    }
    *out = l;
    return 0;
}
