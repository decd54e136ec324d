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
    .if_size = -1, .owner_cstack = -1, .if_is_entry = -1,                   \
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
 * _Py_DebugOffsets of 3.13 as an array of uint64 slots: slot 0 is the
 * cookie, then the version, free_threaded and the per-structure groups, each
 * starting with the structure's size.
 */
enum {
    D_VERSION = 1, D_FREE_THREADED = 2,
    D_RT_SIZE = 3, D_RT_INTERPRETERS_HEAD = 5,
    D_IS_SIZE = 6, D_IS_NEXT = 8, D_IS_THREADS_HEAD = 9, D_IS_MODULES = 11,
    D_IS_CEVAL_GIL = 14, D_IS_GIL_STATE = 15, D_IS_GIL_LOCKED = 17, D_IS_GIL_HOLDER = 18,
    D_TS_SIZE = 19, D_TS_NEXT = 21, D_TS_INTERP = 22, D_TS_CURRENT_FRAME = 23,
    D_TS_THREAD_ID = 24, D_TS_NATIVE_THREAD_ID = 25, D_TS_DATASTACK_CHUNK = 26,
    D_IF_SIZE = 28, D_IF_PREVIOUS = 29, D_IF_EXECUTABLE = 30, D_IF_INSTR_PTR = 31,
    D_IF_LOCALSPLUS = 32, D_IF_OWNER = 33,
    D_CO_SIZE = 34, D_CO_FILENAME = 35, D_CO_NAME = 36, D_CO_QUALNAME = 37,
    D_CO_LINETABLE = 38, D_CO_FIRSTLINENO = 39, D_CO_ARGCOUNT = 40,
    D_CO_LOCALSPLUSNAMES = 41, D_CO_LOCALSPLUSKINDS = 42, D_CO_CODE_ADAPTIVE = 43,
    D_OB_SIZE = 44, D_OB_TYPE = 45,
    D_TP_SIZE = 46, D_TP_NAME = 47, D_TP_FLAGS = 49,
    D_TUPLE_SIZE = 50, D_TUPLE_ITEM = 51, D_LIST_SIZE = 53, D_LIST_ITEM = 54,
    D_DICT_SIZE = 56, D_DICT_KEYS = 57, D_DICT_VALUES = 58,
    D_FLOAT_SIZE = 59, D_FLOAT_FVAL = 60, D_LONG_SIZE = 61, D_LONG_TAG = 62, D_LONG_DIGIT = 63,
    D_BYTES_SIZE = 64, D_BYTES_OB_SIZE = 65, D_BYTES_SVAL = 66,
    D_UNI_SIZE = 67, D_UNI_STATE = 68, D_UNI_LENGTH = 69, D_UNI_ASCII_SIZE = 70,
    D_SLOTS = 73,
};

/* Checks that field (of width bytes) lies within a structure of size bytes. */
static int field_ok(uint64_t field, uint64_t size, uint64_t width)
{
    return size > 0 && size < (1u << 24) && field < size && width <= size - field;
}

/* Every field the debug offsets give lies within its structure's size, and they agree. */
static int check_debug_offsets(const uint64_t *d, struct pserr *err)
{
    struct {
        int size_slot, field_slot, width;
    } checks[] = {
        {D_RT_SIZE, D_RT_INTERPRETERS_HEAD, 8},
        {D_IS_SIZE, D_IS_NEXT, 8}, {D_IS_SIZE, D_IS_THREADS_HEAD, 8},
        {D_IS_SIZE, D_IS_MODULES, 8}, {D_IS_SIZE, D_IS_CEVAL_GIL, 8},
        {D_IS_SIZE, D_IS_GIL_STATE, 8}, {D_IS_SIZE, D_IS_GIL_LOCKED, 4},
        {D_IS_SIZE, D_IS_GIL_HOLDER, 8},
        {D_TS_SIZE, D_TS_NEXT, 8}, {D_TS_SIZE, D_TS_INTERP, 8},
        {D_TS_SIZE, D_TS_CURRENT_FRAME, 8}, {D_TS_SIZE, D_TS_THREAD_ID, 8},
        {D_TS_SIZE, D_TS_NATIVE_THREAD_ID, 8}, {D_TS_SIZE, D_TS_DATASTACK_CHUNK, 16},
        {D_IF_SIZE, D_IF_PREVIOUS, 8}, {D_IF_SIZE, D_IF_EXECUTABLE, 8},
        {D_IF_SIZE, D_IF_INSTR_PTR, 8}, {D_IF_SIZE, D_IF_OWNER, 1},
        {D_CO_SIZE, D_CO_FILENAME, 8}, {D_CO_SIZE, D_CO_NAME, 8},
        {D_CO_SIZE, D_CO_QUALNAME, 8}, {D_CO_SIZE, D_CO_LINETABLE, 8},
        {D_CO_SIZE, D_CO_FIRSTLINENO, 4}, {D_CO_SIZE, D_CO_ARGCOUNT, 4},
        {D_CO_SIZE, D_CO_LOCALSPLUSNAMES, 8}, {D_CO_SIZE, D_CO_LOCALSPLUSKINDS, 8},
        {D_TUPLE_SIZE, D_TUPLE_ITEM, 8}, {D_LIST_SIZE, D_LIST_ITEM, 8},
        {D_FLOAT_SIZE, D_FLOAT_FVAL, 8}, {D_LONG_SIZE, D_LONG_TAG, 8}, {D_LONG_SIZE, D_LONG_DIGIT, 4},
        {D_OB_SIZE, D_OB_TYPE, 8}, {D_TP_SIZE, D_TP_NAME, 8}, {D_TP_SIZE, D_TP_FLAGS, 8},
        {D_DICT_SIZE, D_DICT_KEYS, 8}, {D_DICT_SIZE, D_DICT_VALUES, 8},
        {D_BYTES_SIZE, D_BYTES_OB_SIZE, 8}, {D_BYTES_SIZE, D_BYTES_SVAL, 1},
        {D_UNI_SIZE, D_UNI_STATE, 4}, {D_UNI_SIZE, D_UNI_LENGTH, 8},
    };
    for (size_t i = 0; i < ARRAY_SIZE(checks); i++)
        if (!field_ok(d[checks[i].field_slot], d[checks[i].size_slot], (uint64_t)checks[i].width))
            return pserr_set(err, EINVAL, "_Py_DebugOffsets: field %d out of range",
                             checks[i].field_slot);
    /* co_code_adaptive is the start of the bytecode, at or past the end of the header. */
    if (d[D_CO_CODE_ADAPTIVE] > d[D_CO_SIZE] || d[D_UNI_ASCII_SIZE] > d[D_UNI_SIZE] ||
        d[D_UNI_STATE] + 4 > d[D_UNI_ASCII_SIZE] || d[D_UNI_LENGTH] + 8 > d[D_UNI_ASCII_SIZE] ||
        d[D_IS_GIL_LOCKED] < d[D_IS_GIL_STATE] || d[D_IS_GIL_HOLDER] < d[D_IS_GIL_STATE] ||
        d[D_IS_GIL_LOCKED] - d[D_IS_GIL_STATE] > 64 || d[D_IS_GIL_HOLDER] - d[D_IS_GIL_STATE] > 64)
        return pserr_set(err, EINVAL, "_Py_DebugOffsets: inconsistent offsets");
    /* localsplus is a flexible array at the frame's end: it may equal the size. */
    if (d[D_IF_LOCALSPLUS] > d[D_IF_SIZE])
        return pserr_set(err, EINVAL, "_Py_DebugOffsets: inconsistent offsets");
    return 0;
}

/* Takes the debug offsets d into l (a copy of the version's table). */
static void apply_debug_offsets(struct pylayout *l, const uint64_t *d)
{
    l->rt_interpreters_head = (int)d[D_RT_INTERPRETERS_HEAD];
    l->is_next = (int)d[D_IS_NEXT];
    l->is_tstate_head = (int)d[D_IS_THREADS_HEAD];
    l->is_modules = (int)d[D_IS_MODULES];
    l->is_ceval_gil = (int)d[D_IS_CEVAL_GIL];
    l->gil_locked = (int)(d[D_IS_GIL_LOCKED] - d[D_IS_GIL_STATE]);
    l->gil_last_holder = (int)(d[D_IS_GIL_HOLDER] - d[D_IS_GIL_STATE]);
    l->ts_next = (int)d[D_TS_NEXT];
    l->ts_interp = (int)d[D_TS_INTERP];
    l->ts_current_frame = (int)d[D_TS_CURRENT_FRAME];
    l->ts_thread_id = (int)d[D_TS_THREAD_ID];
    l->ts_native_thread_id = (int)d[D_TS_NATIVE_THREAD_ID];
    l->ts_datastack_chunk = (int)d[D_TS_DATASTACK_CHUNK];
    /* datastack_top follows datastack_chunk; the table does not list it. */
    l->ts_datastack_top = l->ts_datastack_chunk + 8;
    int ts_end = 0;
    const int ts_fields[] = {l->ts_next, l->ts_interp, l->ts_current_frame, l->ts_thread_id,
                             l->ts_native_thread_id, l->ts_datastack_top};
    for (size_t i = 0; i < ARRAY_SIZE(ts_fields); i++)
        ts_end = MAX(ts_end, ts_fields[i] + 8);
    l->ts_size = ts_end;
    l->if_size = (int)d[D_IF_SIZE];
    l->if_previous = (int)d[D_IF_PREVIOUS];
    l->if_code = (int)d[D_IF_EXECUTABLE];
    l->if_instr = (int)d[D_IF_INSTR_PTR];
    l->if_owner = (int)d[D_IF_OWNER];
    l->co_filename = (int)d[D_CO_FILENAME];
    l->co_name = (int)d[D_CO_NAME];
    l->co_qualname = (int)d[D_CO_QUALNAME];
    l->co_linetable = (int)d[D_CO_LINETABLE];
    l->co_firstlineno = (int)d[D_CO_FIRSTLINENO];
    l->co_code_adaptive = (int)d[D_CO_CODE_ADAPTIVE];
    /* localsplus is a flexible array at the frame's end (checked: at most the size). */
    l->if_localsplus = (int)d[D_IF_LOCALSPLUS];
    l->co_argcount = (int)d[D_CO_ARGCOUNT];
    l->co_localsplusnames = (int)d[D_CO_LOCALSPLUSNAMES];
    l->co_localspluskinds = (int)d[D_CO_LOCALSPLUSKINDS];
    l->tuple_item = (int)d[D_TUPLE_ITEM];
    l->list_item = (int)d[D_LIST_ITEM];
    l->float_fval = (int)d[D_FLOAT_FVAL];
    l->long_size = (int)d[D_LONG_TAG];
    l->long_digit = (int)d[D_LONG_DIGIT];
    l->ob_type = (int)d[D_OB_TYPE];
    l->tp_name = (int)d[D_TP_NAME];
    l->tp_flags = (int)d[D_TP_FLAGS];
    l->ma_keys = (int)d[D_DICT_KEYS];
    l->ma_values = (int)d[D_DICT_VALUES];
    l->bytes_size = (int)d[D_BYTES_OB_SIZE];
    l->bytes_sval = (int)d[D_BYTES_SVAL];
    l->uni_state = (int)d[D_UNI_STATE];
    l->uni_length = (int)d[D_UNI_LENGTH];
    l->uni_ascii_size = (int)d[D_UNI_ASCII_SIZE];
}

int layout_from_debug_offsets(struct pylayout *out, const void *buf, size_t len,
                              struct pserr *err)
{
    uint64_t d[D_SLOTS];
    if (len < sizeof(d) || memcmp(buf, DEBUG_OFFSETS_COOKIE, 8) != 0)
        return pserr_set(err, EINVAL, "_Py_DebugOffsets: no \"xdebugpy\" cookie");
    memcpy(d, buf, sizeof(d));
    uint64_t v = d[D_VERSION];
    int major = (int)((v >> 24) & 0xff), minor = (int)((v >> 16) & 0xff);
    const struct pylayout *base = layout_for(major, minor);
    if (!base || !base->debug_offsets)
        return pserr_set(err, ENOTSUP, "Python %d.%d is not supported (pystrobe knows %s)",
                         major, minor, layout_supported());
    if (d[D_FREE_THREADED])
        return pserr_set(err, ENOTSUP,
                         "Python %d.%d free-threaded builds are not supported", major, minor);

    int ret = check_debug_offsets(d, err);
    if (ret < 0)
        return ret;
    struct pylayout l = *base;
    apply_debug_offsets(&l, d);
    *out = l;
    return 0;
}
