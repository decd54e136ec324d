/*
 * Offset tables: every supported version has one, unknown ones have none,
 * and a 3.13 _Py_DebugOffsets (synthetic, and a live interpreter's when pyenv
 * has 3.13) reproduces the built-in 3.13 table.
 */
#include "profiler/cpython/layout.h"

#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <sys/prctl.h>

#include "test.h"

#include "common/util.h"
#include "profiler/target/mem.h"
#include "profiler/cpython/pyrt.h"
#include "symbolizer/codefacts.h"

static const int supported[][2] = {
    {2, 7}, {3, 6}, {3, 7}, {3, 8}, {3, 9}, {3, 10}, {3, 11}, {3, 12}, {3, 13}, {3, 14}, {3, 15},
};

TEST(every_supported_version_has_a_table)
{
    for (size_t i = 0; i < ARRAY_SIZE(supported); i++) {
        const struct pylayout *l = layout_for(supported[i][0], supported[i][1]);
        if (!l) {
            TEST_FAILF("no table for %d.%d", supported[i][0], supported[i][1]);
            continue;
        }
        CHECK_INT(l->major, supported[i][0]);
        CHECK_INT(l->minor, supported[i][1]);
        /* Fields every version must have for a walk. */
        CHECK(l->is_tstate_head >= 0 && l->ts_next >= 0 && l->ts_interp >= 0);
        CHECK(l->ts_thread_id >= 0 && l->ts_size > l->ts_thread_id);
        CHECK(l->co_filename >= 0 && l->co_name >= 0 && l->co_linetable >= 0);
        CHECK(l->ob_type == 8 && l->tp_name == 24);
        int old = supported[i][0] == 2 || supported[i][1] <= 10;
        CHECK_INT(l->frames, old ? FRAME_OBJECTS : FRAME_INTERPRETER);
        if (old) {
            CHECK(l->ts_frame >= 0 && l->fo_back >= 0 && l->fo_code >= 0 && l->fo_lasti >= 0);
        } else {
            CHECK(l->if_previous >= 0 && l->if_code >= 0 && l->if_instr >= 0);
            CHECK(l->co_code_adaptive > 0 && l->co_qualname >= 0);
            CHECK(l->ts_datastack_chunk >= 0 && l->ts_datastack_top >= 0);
            CHECK_INT(l->if_size, supported[i][1] >= 14 ? 88 : 80);
            CHECK_INT(l->code_tagged, supported[i][1] >= 14);
        }
        CHECK_INT(l->lasti_units, supported[i][0] == 3 && supported[i][1] == 10);
        CHECK_INT(l->var_ob_size, 16);
        if (l->gil == GIL_RUNTIME || l->gil == GIL_INTERP) {
            /* struct _gil_runtime_state: last_holder, then locked, in 208 bytes. */
            CHECK_INT(l->gil_state_size, 208);
            CHECK_INT(l->gil_last_holder, 8);
            CHECK_INT(l->gil_locked, l->gil_last_holder + 8);
        }
        if (l->gil == GIL_RUNTIME)
            CHECK_INT(l->rt_gil_locked - l->rt_gil_last_holder, l->gil_locked - l->gil_last_holder);
        CHECK_INT(l->owner_cstack, supported[i][0] == 3 && supported[i][1] >= 12 ? 3 : -1);
        /* 3.14 alone has a fifth owner (FRAME_OWNED_BY_CSTACK, 4). */
        CHECK_INT(l->owner_cstack2, supported[i][0] == 3 && supported[i][1] == 14 ? 4 : -1);
        if (!old)
            CHECK_INT(l->owner_max, supported[i][1] == 11 ? 2 : supported[i][1] == 14 ? 4 : 3);
    }
}

TEST(table_spot_checks)
{
    /* A few values straight from the measured table (docs §8). */
    const struct pylayout *l = layout_for(2, 7);
    REQUIRE(l);
    CHECK_INT(l->fo_lasti, 120);
    CHECK_INT(l->co_firstlineno, 96);
    CHECK_INT(l->bytes_sval, 36);
    CHECK_INT(l->strings, STR_BYTES27);
    CHECK_INT(l->dicts, DICT_27);
    l = layout_for(3, 10);
    REQUIRE(l);
    CHECK_INT(l->fo_lasti, 96);
    CHECK_INT(l->linetable, LINES_LINETABLE_310);
    l = layout_for(3, 11);
    REQUIRE(l);
    CHECK_INT(l->if_code, 32);
    CHECK_INT(l->if_previous, 48);
    CHECK_INT(l->if_owner, 69);
    CHECK_INT(l->co_code_adaptive, 184);
    CHECK_INT(l->ts_datastack_chunk, 296);
    CHECK_INT(l->managed, MANAGED_311);
    l = layout_for(3, 12);
    REQUIRE(l);
    CHECK_INT(l->uni_ascii_size, 40);
    CHECK_INT(l->co_code_adaptive, 192);
    CHECK_INT(l->is_tstate_head, 72);
    l = layout_for(3, 13);
    REQUIRE(l);
    CHECK_INT(l->rt_interpreters_head, 632);
    CHECK_INT(l->ts_current_frame, 72);
    CHECK_INT(l->co_code_adaptive, 200);
    CHECK_INT(l->dv_values, 8);
    CHECK_INT(l->gc_state_generation0, 96);
    /* 3.14 and 3.15 (tools/probe-offsets.c against python3.14-dev 3.14.10
     * and python3.15-dev 3.15.2). */
    l = layout_for(3, 14);
    REQUIRE(l);
    CHECK_INT(l->rt_interpreters_head, 808);
    CHECK_INT(l->if_owner, 74);
    CHECK_INT(l->if_localsplus, 80);
    CHECK_INT(l->co_code_adaptive, 208);
    CHECK_INT(l->tuple_item, 32);
    CHECK_INT(l->is_gc_generations, 7432);
    l = layout_for(3, 15);
    REQUIRE(l);
    CHECK_INT(l->rt_interpreters_head, 936);
    CHECK_INT(l->ts_thread_id, 176);
    CHECK_INT(l->ts_datastack_chunk, 256);
    CHECK_INT(l->ht_cached_keys, 888);
    CHECK_INT(l->is_gc_collecting, 7512);
}

TEST(locals_offsets_as_measured)
{
    /* tools/probe-offsets.sh on each version's headers. */
    static const struct {
        int major, minor;
        int localsplus, argcount, kwonly, flags, nlocals, varnames, freevars, cellvars;
    } old[] = {
        {2, 7, 376, 16, -1, 28, 20, 56, 64, 72},
        {3, 6, 376, 16, 20, 32, 24, 64, 72, 80},
        {3, 7, 360, 16, 20, 32, 24, 64, 72, 80},
        {3, 8, 360, 16, 24, 36, 28, 72, 80, 88},
        {3, 9, 360, 16, 24, 36, 28, 72, 80, 88},
        {3, 10, 352, 16, 24, 36, 28, 72, 80, 88},
    };
    for (size_t i = 0; i < ARRAY_SIZE(old); i++) {
        const struct pylayout *l = layout_for(old[i].major, old[i].minor);
        REQUIRE(l);
        CHECK_INT(l->fo_localsplus, old[i].localsplus);
        CHECK_INT(l->co_argcount, old[i].argcount);
        CHECK_INT(l->co_kwonlyargcount, old[i].kwonly);
        CHECK_INT(l->co_argflags, old[i].flags);
        CHECK_INT(l->co_nlocals, old[i].nlocals);
        CHECK_INT(l->co_varnames, old[i].varnames);
        CHECK_INT(l->co_freevars, old[i].freevars);
        CHECK_INT(l->co_cellvars, old[i].cellvars);
        CHECK_INT(l->if_localsplus, -1);
        CHECK_INT(l->long_tagged, 0);
    }
    static const struct {
        int minor, argcount, kwonly, flags, nlocalsplus;
    } new[] = {{11, 56, 64, 48, 76}, {12, 52, 60, 48, 72}, {13, 52, 60, 48, 72},
               {14, 52, 60, 48, 72}, {15, 52, 60, 48, 72}};
    for (size_t i = 0; i < ARRAY_SIZE(new); i++) {
        const struct pylayout *l = layout_for(3, new[i].minor);
        REQUIRE(l);
        CHECK_INT(l->if_localsplus, new[i].minor >= 14 ? 80 : 72);
        CHECK_INT(l->co_argcount, new[i].argcount);
        CHECK_INT(l->co_kwonlyargcount, new[i].kwonly);
        CHECK_INT(l->co_argflags, new[i].flags);
        CHECK_INT(l->co_nlocalsplus, new[i].nlocalsplus);
        CHECK_INT(l->co_localsplusnames, 96);
        CHECK_INT(l->co_localspluskinds, 104);
        CHECK_INT(l->fo_localsplus, -1);
        CHECK_INT(l->long_tagged, new[i].minor >= 12);
    }
    /* Values: the same everywhere but 2.7's set entries (hash first) and ints. */
    for (size_t i = 0; i < ARRAY_SIZE(supported); i++) {
        const struct pylayout *l = layout_for(supported[i][0], supported[i][1]);
        int py2 = supported[i][0] == 2;
        /* 3.14 caches a tuple's hash before its items. */
        CHECK_INT(l->tuple_item, supported[i][0] == 3 && supported[i][1] >= 14 ? 32 : 24);
        CHECK(l->list_item == 24 && l->float_fval == 16 && l->cell_ref == 16);
        CHECK(l->long_size == 16 && l->long_digit == 24);
        CHECK(l->set_used == 24 && l->set_mask == 32 && l->set_table == 40 && l->setentry_size == 16);
        CHECK_INT(l->setentry_key, py2 ? 8 : 0);
        CHECK_INT(l->setentry_hash, py2 ? 0 : 8);
        CHECK_INT(l->int27_ival, py2 ? 16 : -1);
    }
}

TEST(unknown_versions_have_no_table)
{
    CHECK(layout_for(3, 5) == NULL);
    CHECK(layout_for(3, 16) == NULL);
    CHECK(layout_for(4, 0) == NULL);
    CHECK(layout_for(2, 6) == NULL);
    CHECK(layout_for(0, 0) == NULL);
    CHECK(layout_for(-1, 7) == NULL);
    CHECK_STR(layout_supported(), "2.7, 3.6-3.15");
    CHECK_INT(layout_newest_minor(), 15);
}

TEST(symbols_and_facts_by_version)
{
    /* What was decided by version in the code, now each version's table. */
    for (size_t i = 0; i < ARRAY_SIZE(supported); i++) {
        int major = supported[i][0], minor = supported[i][1];
        const struct pylayout *l = layout_for(major, minor);
        REQUIRE(l);
        int py2 = major == 2, statics = py2 || minor == 6;
        CHECK_STR(l->runtime_symbol, statics ? "interp_head" : "_PyRuntime");
        CHECK_INT(l->rt_interpreters_head >= 0, !statics);
        CHECK_INT(l->debug_offsets, !py2 && minor >= 13);
        CHECK_INT(l->tstate_current_symbol != NULL, statics);
        CHECK_INT(l->gil == GIL_TSTATE_CURRENT, statics);
        if (statics)
            CHECK_STR(l->tstate_current_symbol, "_PyThreadState_Current");
        CHECK_INT(l->gil_lock_symbol != NULL, py2);
        if (py2)
            CHECK_STR(l->gil_lock_symbol, "interpreter_lock");
        CHECK_INT(l->gil_static_symbols[0] != NULL, statics && !py2);
        if (statics && !py2) {
            CHECK_STR(l->gil_static_symbols[0], "gil_cond");
            CHECK_STR(l->gil_static_symbols[3], "switch_mutex");
        }
        CHECK_INT(l->narrow_unicode_symbol != NULL, py2);
        CHECK_STR(l->eval_function, py2 ? "PyEval_EvalFrameEx" : "_PyEval_EvalFrameDefault");
        CHECK_STR(l->known_symbols[PYK_INT], py2 ? "PyInt_Type" : "PyLong_Type");
        CHECK_STR(l->known_symbols[PYK_STR], py2 ? "PyString_Type" : "PyUnicode_Type");
        CHECK_STR(l->known_symbols[PYK_FALSE], py2 ? "_Py_ZeroStruct" : "_Py_FalseStruct");
        CHECK_INT(l->known_symbols[PYK_LONG27] != NULL, py2);
        CHECK_INT(l->known_symbols[PYK_UNICODE27] != NULL, py2);
        CHECK_INT(l->known_symbols[PYK_BYTES] != NULL, !py2);
        CHECK_INT(l->known_symbols[PYK_SET_DUMMY] != NULL, !py2);
        CHECK(l->known_symbols[PYK_NONE] && l->known_symbols[PYK_CELL]);
        CHECK_INT(l->co_generator_flags, py2 ? 0x20 : 0x2a0);
        CHECK_INT(l->set_dummy, py2 ? SET_DUMMY_STR27 : SET_DUMMY_HASH);
        CHECK_INT(l->set_repr_call, py2);
        CHECK_STR(l->thread_name_attr, py2 ? "_Thread__name" : "_name");
        CHECK_INT(l->thread_native_id_attr != NULL, !py2 && minor >= 8);
        CHECK_INT(l->strings, py2 ? STR_BYTES27 : STR_UNICODE3);
    }
}

TEST(facts_for_naming)
{
    /* What naming is given of each version: the table's, in its own terms. */
    static const enum lt_format fmt[] = {LT_LNOTAB_27, LT_LNOTAB_36, LT_LNOTAB_36, LT_LNOTAB_36,
                                         LT_LNOTAB_36, LT_LINETABLE_310, LT_LOCATIONS_311,
                                         LT_LOCATIONS_311, LT_LOCATIONS_311, LT_LOCATIONS_311,
                                         LT_LOCATIONS_311};
    for (size_t i = 0; i < ARRAY_SIZE(supported); i++) {
        int major = supported[i][0], minor = supported[i][1];
        const struct pylayout *l = layout_for(major, minor);
        struct code_facts cf;
        struct pystr_layout sl;
        REQUIRE(l);
        layout_code_facts(l, &cf);
        layout_str_facts(l, &sl);
        CHECK_INT(cf.linetable, fmt[i]);
        CHECK(cf.co_filename == l->co_filename && cf.co_name == l->co_name &&
              cf.co_qualname == l->co_qualname && cf.co_firstlineno == l->co_firstlineno &&
              cf.co_linetable == l->co_linetable && cf.co_code == l->co_code &&
              cf.co_code_adaptive == l->co_code_adaptive && cf.co_flags == l->co_flags &&
              cf.co_stacksize == l->co_stacksize && cf.co_nlocalsplus == l->co_nlocalsplus &&
              cf.frame_size == l->if_size && cf.ob_type == l->ob_type && cf.tp_name == l->tp_name);
        CHECK_INT(cf.generator_flags, l->co_generator_flags);
        CHECK_INT(cf.trampoline, major == 3 && minor >= 12);
        CHECK_INT(cf.init_shim, major == 3 && minor >= 12);
        CHECK(memcmp(&cf.str, &sl, sizeof(sl)) == 0);
        CHECK_INT(sl.bytes27, major == 2);
        CHECK(sl.bytes_size == l->bytes_size && sl.bytes_sval == l->bytes_sval &&
              sl.uni_length == l->uni_length && sl.uni_state == l->uni_state &&
              sl.uni_ascii_size == l->uni_ascii_size &&
              sl.uni_compact_size == l->uni_compact_size && sl.uni_data_any == l->uni_data_any &&
              sl.uni27_str == l->uni27_str);
        REQUIRE(cf.ops);
        CHECK_INT(cf.ops->oparg16, major == 2);
        CHECK_INT(cf.ops->caches != NULL, major == 3 && minor >= 11);
        CHECK_INT(cf.ops->compare_op != 0, major == 2 || minor <= 8);
    }
}

/* ---- _Py_DebugOffsets ------------------------------------------------------ */

/* Slots of 3.13's _Py_DebugOffsets (uint64 each), as profiler/cpython/layout.c numbers them. */
enum {
    S_VERSION = 1, S_FREE_THREADED = 2,
    S_RT_SIZE = 3, S_RT_FINALIZING = 4, S_RT_INTERPRETERS_HEAD = 5,
    S_IS_SIZE = 6, S_IS_ID = 7, S_IS_NEXT = 8, S_IS_THREADS_HEAD = 9, S_IS_GC = 10,
    S_IS_MODULES = 11, S_IS_SYSDICT = 12, S_IS_BUILTINS = 13, S_IS_CEVAL_GIL = 14,
    S_IS_GIL_STATE = 15, S_IS_GIL_ENABLED = 16, S_IS_GIL_LOCKED = 17, S_IS_GIL_HOLDER = 18,
    S_TS_SIZE = 19, S_TS_PREV = 20, S_TS_NEXT = 21, S_TS_INTERP = 22, S_TS_CURRENT_FRAME = 23,
    S_TS_THREAD_ID = 24, S_TS_NATIVE_THREAD_ID = 25, S_TS_DATASTACK_CHUNK = 26, S_TS_STATUS = 27,
    S_IF_SIZE = 28, S_IF_PREVIOUS = 29, S_IF_EXECUTABLE = 30, S_IF_INSTR_PTR = 31,
    S_IF_LOCALSPLUS = 32, S_IF_OWNER = 33,
    S_CO_SIZE = 34, S_CO_FILENAME = 35, S_CO_NAME = 36, S_CO_QUALNAME = 37, S_CO_LINETABLE = 38,
    S_CO_FIRSTLINENO = 39, S_CO_ARGCOUNT = 40, S_CO_LOCALSPLUSNAMES = 41,
    S_CO_LOCALSPLUSKINDS = 42, S_CO_CODE_ADAPTIVE = 43,
    S_OB_SIZE = 44, S_OB_TYPE = 45,
    S_TP_SIZE = 46, S_TP_NAME = 47, S_TP_REPR = 48, S_TP_FLAGS = 49,
    S_TUPLE_SIZE = 50, S_LIST_SIZE = 53,
    S_DICT_SIZE = 56, S_DICT_KEYS = 57, S_DICT_VALUES = 58,
    S_FLOAT_SIZE = 59, S_LONG_SIZE = 61,
    S_BYTES_SIZE = 64, S_BYTES_OB_SIZE = 65, S_BYTES_SVAL = 66,
    S_UNI_SIZE = 67, S_UNI_STATE = 68, S_UNI_LENGTH = 69, S_UNI_ASCII_SIZE = 70,
    S_GC_SIZE = 71, S_GC_COLLECTING = 72,
    S_SLOTS = 73,
};

/* What pystrobe reads of a _PyRuntime for its debug offsets. */
#define D_SLOTS (DEBUG_OFFSETS_SIZE / 8)

/* A 3.13 _Py_DebugOffsets as 3.13.0 carries it, built from the 3.13 table. */
static void make_debug_offsets(uint64_t d[D_SLOTS])
{
    const struct pylayout *l = layout_for(3, 13);
    REQUIRE(l != NULL);
    REQUIRE(S_SLOTS <= D_SLOTS);
    memset(d, 0, D_SLOTS * 8);
    memcpy(d, DEBUG_OFFSETS_COOKIE, 8);
    d[S_VERSION] = 0x030d00f0;
    d[S_FREE_THREADED] = 0;
    d[S_RT_SIZE] = 283320;
    d[S_RT_FINALIZING] = 608;
    d[S_RT_INTERPRETERS_HEAD] = (uint64_t)l->rt_interpreters_head;
    d[S_IS_SIZE] = 194968;
    d[S_IS_ID] = 7272;
    d[S_IS_NEXT] = (uint64_t)l->is_next;
    d[S_IS_THREADS_HEAD] = (uint64_t)l->is_tstate_head;
    d[S_IS_GC] = 7400;
    d[S_IS_MODULES] = (uint64_t)l->is_modules;
    d[S_IS_SYSDICT] = 7640;
    d[S_IS_BUILTINS] = 7648;
    d[S_IS_CEVAL_GIL] = (uint64_t)l->is_ceval_gil;
    d[S_IS_GIL_STATE] = 7752;
    d[S_IS_GIL_ENABLED] = 0;
    d[S_IS_GIL_LOCKED] = 7752 + (uint64_t)l->gil_locked;
    d[S_IS_GIL_HOLDER] = 7752 + (uint64_t)l->gil_last_holder;
    d[S_TS_SIZE] = 304;
    d[S_TS_PREV] = 0;
    d[S_TS_NEXT] = (uint64_t)l->ts_next;
    d[S_TS_INTERP] = (uint64_t)l->ts_interp;
    d[S_TS_CURRENT_FRAME] = (uint64_t)l->ts_current_frame;
    d[S_TS_THREAD_ID] = (uint64_t)l->ts_thread_id;
    d[S_TS_NATIVE_THREAD_ID] = (uint64_t)l->ts_native_thread_id;
    d[S_TS_DATASTACK_CHUNK] = (uint64_t)l->ts_datastack_chunk;
    d[S_TS_STATUS] = 32;
    d[S_IF_SIZE] = (uint64_t)l->if_size;
    d[S_IF_PREVIOUS] = (uint64_t)l->if_previous;
    d[S_IF_EXECUTABLE] = (uint64_t)l->if_code;
    d[S_IF_INSTR_PTR] = (uint64_t)l->if_instr;
    d[S_IF_LOCALSPLUS] = 72;
    d[S_IF_OWNER] = (uint64_t)l->if_owner;
    d[S_CO_SIZE] = 208;
    d[S_CO_FILENAME] = (uint64_t)l->co_filename;
    d[S_CO_NAME] = (uint64_t)l->co_name;
    d[S_CO_QUALNAME] = (uint64_t)l->co_qualname;
    d[S_CO_LINETABLE] = (uint64_t)l->co_linetable;
    d[S_CO_FIRSTLINENO] = (uint64_t)l->co_firstlineno;
    d[S_CO_ARGCOUNT] = 52;
    d[S_CO_LOCALSPLUSNAMES] = 96;
    d[S_CO_LOCALSPLUSKINDS] = 104;
    d[S_CO_CODE_ADAPTIVE] = (uint64_t)l->co_code_adaptive;
    d[S_OB_SIZE] = 16;
    d[S_OB_TYPE] = (uint64_t)l->ob_type;
    d[S_TP_SIZE] = 416;
    d[S_TP_NAME] = (uint64_t)l->tp_name;
    d[S_TP_REPR] = 88;
    d[S_TP_FLAGS] = (uint64_t)l->tp_flags;
    d[S_TUPLE_SIZE] = 32, d[S_TUPLE_SIZE + 1] = 24, d[S_TUPLE_SIZE + 2] = 16;
    d[S_LIST_SIZE] = 40, d[S_LIST_SIZE + 1] = 24, d[S_LIST_SIZE + 2] = 16;
    d[S_DICT_SIZE] = 48;
    d[S_DICT_KEYS] = (uint64_t)l->ma_keys;
    d[S_DICT_VALUES] = (uint64_t)l->ma_values;
    d[S_FLOAT_SIZE] = 24, d[S_FLOAT_SIZE + 1] = 16;
    d[S_LONG_SIZE] = 32, d[S_LONG_SIZE + 1] = 16, d[S_LONG_SIZE + 2] = 24;
    d[S_BYTES_SIZE] = 40;
    d[S_BYTES_OB_SIZE] = (uint64_t)l->bytes_size;
    d[S_BYTES_SVAL] = (uint64_t)l->bytes_sval;
    d[S_UNI_SIZE] = 64;
    d[S_UNI_STATE] = (uint64_t)l->uni_state;
    d[S_UNI_LENGTH] = (uint64_t)l->uni_length;
    d[S_UNI_ASCII_SIZE] = (uint64_t)l->uni_ascii_size;
    d[S_GC_SIZE] = 240;
    d[S_GC_COLLECTING] = 200;
}

/* Compares two tables field by field (every field is an int or an enum). */
static int same_layout(const struct pylayout *a, const struct pylayout *b)
{
    _Static_assert(sizeof(struct pylayout) % sizeof(int) == 0, "pylayout holds ints");
    const int *x = (const int *)(const void *)a, *y = (const int *)(const void *)b;
    int same = 1;
    for (size_t i = 0; i < sizeof(*a) / sizeof(int); i++) {
        if (x[i] != y[i]) {
            TEST_FAILF("layouts differ at int #%zu: %d vs %d", i, x[i], y[i]);
            same = 0;
        }
    }
    return same;
}

TEST(debug_offsets_reproduce_313_table)
{
    uint64_t d[D_SLOTS];
    make_debug_offsets(d);
    struct pylayout out;
    struct pserr err = {0};
    int ret = layout_from_debug_offsets(&out, d, sizeof(d), &err);
    if (ret)
        TEST_FAILF("layout_from_debug_offsets: %d %s", ret, err.msg);
    REQUIRE(ret == 0);
    CHECK(same_layout(&out, layout_for(3, 13)));
}

TEST(debug_offsets_values_are_taken_from_the_target)
{
    /* Moved fields (as a patched build might have them) are used, not the table's. */
    uint64_t d[D_SLOTS];
    make_debug_offsets(d);
    d[S_TS_CURRENT_FRAME] = 80;
    d[S_TS_DATASTACK_CHUNK] = 256;
    d[S_CO_NAME] = 144;
    d[S_IS_GIL_LOCKED] = 7752 + 24;
    d[S_IF_LOCALSPLUS] = 80;
    d[S_CO_LOCALSPLUSKINDS] = 112;
    d[S_LONG_SIZE + 2] = 28;
    struct pylayout out;
    struct pserr err = {0};
    REQUIRE(layout_from_debug_offsets(&out, d, sizeof(d), &err) == 0);
    CHECK_INT(out.ts_current_frame, 80);
    CHECK_INT(out.ts_datastack_chunk, 256);
    CHECK_INT(out.ts_datastack_top, 264);
    CHECK_INT(out.ts_size, 272);
    CHECK_INT(out.co_name, 144);
    CHECK_INT(out.gil_locked, 24);
    CHECK_INT(out.if_localsplus, 80);
    CHECK_INT(out.co_localspluskinds, 112);
    CHECK_INT(out.long_digit, 28);
    /* Fields the debug offsets lack keep the built-in values. */
    CHECK_INT(out.chunk_data, 24);
    CHECK_INT(out.co_code_adaptive, 200);
    CHECK_INT(out.managed, MANAGED_313);
}

TEST(debug_offsets_bad_cookie)
{
    uint64_t d[D_SLOTS];
    make_debug_offsets(d);
    memcpy(d, "xdebugpz", 8);
    struct pylayout out;
    struct pserr err = {0};
    CHECK_INT(layout_from_debug_offsets(&out, d, sizeof(d), &err), -EINVAL);
    CHECK_INT(err.code, EINVAL);
    CHECK(err.msg[0] != '\0');
    /* Too short a buffer, even with the cookie. */
    make_debug_offsets(d);
    CHECK_INT(layout_from_debug_offsets(&out, d, 100, &err), -EINVAL);
}

TEST(debug_offsets_unknown_version)
{
    uint64_t d[D_SLOTS];
    make_debug_offsets(d);
    struct pylayout out;
    struct pserr err = {0};
    /* A known version that has no debug offsets is not accepted. */
    d[S_VERSION] = 0x030c01f0;
    CHECK_INT(layout_from_debug_offsets(&out, d, sizeof(d), &err), -ENOTSUP);
    CHECK(strstr(err.msg, "3.12") != NULL);
    d[S_VERSION] = 0x040000f0;
    CHECK_INT(layout_from_debug_offsets(&out, d, sizeof(d), &err), -ENOTSUP);
    CHECK(strstr(err.msg, "4.0") != NULL);
}

/* The slots pystrobe reads, by CPython's names, and each version's: 3.13's
 * from this file's own enumeration, 3.14's and 3.15's spot-checked against
 * offsetof(_Py_DebugOffsets, ...) / 8 on python3.14-dev 3.14.10 and
 * python3.15-dev 3.15.2 (the live tests below check every one). */
TEST(debug_offsets_slots_by_version)
{
    static const struct {
        const char *name;
        int slot;
    } s313[] = {
        {"version", S_VERSION}, {"runtime_state.interpreters_head", S_RT_INTERPRETERS_HEAD},
        {"interpreter_state.threads_head", S_IS_THREADS_HEAD}, {"interpreter_state.gc", S_IS_GC},
        {"interpreter_state.gil_runtime_state_holder", S_IS_GIL_HOLDER},
        {"thread_state.current_frame", S_TS_CURRENT_FRAME},
        {"thread_state.datastack_chunk", S_TS_DATASTACK_CHUNK},
        {"interpreter_frame.owner", S_IF_OWNER}, {"code_object.co_code_adaptive", S_CO_CODE_ADAPTIVE},
        {"type_object.tp_flags", S_TP_FLAGS}, {"tuple_object.ob_item", S_TUPLE_SIZE + 1},
        {"long_object.ob_digit", S_LONG_SIZE + 2}, {"unicode_object.asciiobject_size", S_UNI_ASCII_SIZE},
        {"gc.collecting", S_GC_COLLECTING},
    };
    for (size_t i = 0; i < ARRAY_SIZE(s313); i++)
        if (layout_debug_slot(13, s313[i].name) != s313[i].slot)
            TEST_FAILF("3.13 %s: slot %d, expected %d", s313[i].name,
                       layout_debug_slot(13, s313[i].name), s313[i].slot);
    CHECK_INT(layout_debug_slot(14, "interpreter_state.gc"), 11);
    CHECK_INT(layout_debug_slot(14, "thread_state.size"), 22);
    CHECK_INT(layout_debug_slot(14, "interpreter_frame.owner"), 36);
    CHECK_INT(layout_debug_slot(14, "tuple_object.ob_item"), 57);
    CHECK_INT(layout_debug_slot(14, "dict_object.ma_keys"), 67);
    CHECK_INT(layout_debug_slot(14, "gc.collecting"), 82);
    CHECK_INT(layout_debug_slot(15, "thread_state.thread_id"), 30);
    CHECK_INT(layout_debug_slot(15, "interpreter_frame.size"), 39);
    CHECK_INT(layout_debug_slot(15, "code_object.co_code_adaptive"), 56);
    CHECK_INT(layout_debug_slot(15, "unicode_object.asciiobject_size"), 92);
    CHECK_INT(layout_debug_slot(15, "gc.collecting"), 95);
    CHECK_INT(layout_debug_slot(12, "version"), -1);
    CHECK_INT(layout_debug_slot(16, "version"), -1);
    CHECK_INT(layout_debug_slot(14, "no_such.field"), -1);
}

/* Sets the named field of a debug-offsets image of 3.minor. */
static void dset(uint64_t *d, int minor, const char *name, uint64_t v)
{
    int slot = layout_debug_slot(minor, name);
    if (slot < 0 || slot >= D_SLOTS)
        TEST_FAILF("no slot for %s in 3.%d", name, minor);
    else
        d[slot] = v;
}

/* A 3.minor (13+) _Py_DebugOffsets image made from that version's table. */
static void make_debug_offsets_of(uint64_t d[D_SLOTS], int minor)
{
    const struct pylayout *l = layout_for(3, minor);
    REQUIRE(l != NULL);
    memset(d, 0, D_SLOTS * 8);
    memcpy(d, DEBUG_OFFSETS_COOKIE, 8);
    dset(d, minor, "version", 0x030000f0u | ((uint64_t)minor << 16));
    /* The gc state: where the table's generations say, its collecting flag within it. */
    const uint64_t gil = 7752, gc = (uint64_t)(l->is_gc_generations - l->gc_state_generations);
    const struct {
        const char *name;
        uint64_t v;
    } f[] = {
        {"runtime_state.size", 300000},
        {"runtime_state.interpreters_head", (uint64_t)l->rt_interpreters_head},
        {"interpreter_state.size", 200000}, {"interpreter_state.next", (uint64_t)l->is_next},
        {"interpreter_state.threads_head", (uint64_t)l->is_tstate_head},
        {"interpreter_state.gc", gc},
        {"interpreter_state.imports_modules", (uint64_t)l->is_modules},
        {"interpreter_state.ceval_gil", (uint64_t)l->is_ceval_gil},
        {"interpreter_state.gil_runtime_state", gil},
        {"interpreter_state.gil_runtime_state_locked", gil + (uint64_t)l->gil_locked},
        {"interpreter_state.gil_runtime_state_holder", gil + (uint64_t)l->gil_last_holder},
        {"thread_state.size", 900}, {"thread_state.next", (uint64_t)l->ts_next},
        {"thread_state.interp", (uint64_t)l->ts_interp},
        {"thread_state.current_frame", (uint64_t)l->ts_current_frame},
        {"thread_state.thread_id", (uint64_t)l->ts_thread_id},
        {"thread_state.native_thread_id", (uint64_t)l->ts_native_thread_id},
        {"thread_state.datastack_chunk", (uint64_t)l->ts_datastack_chunk},
        {"interpreter_frame.size", (uint64_t)l->if_size},
        {"interpreter_frame.previous", (uint64_t)l->if_previous},
        {"interpreter_frame.executable", (uint64_t)l->if_code},
        {"interpreter_frame.instr_ptr", (uint64_t)l->if_instr},
        {"interpreter_frame.localsplus", (uint64_t)l->if_localsplus},
        {"interpreter_frame.owner", (uint64_t)l->if_owner},
        {"code_object.size", (uint64_t)l->co_code_adaptive},
        {"code_object.filename", (uint64_t)l->co_filename},
        {"code_object.name", (uint64_t)l->co_name},
        {"code_object.qualname", (uint64_t)l->co_qualname},
        {"code_object.linetable", (uint64_t)l->co_linetable},
        {"code_object.firstlineno", (uint64_t)l->co_firstlineno},
        {"code_object.argcount", (uint64_t)l->co_argcount},
        {"code_object.localsplusnames", (uint64_t)l->co_localsplusnames},
        {"code_object.localspluskinds", (uint64_t)l->co_localspluskinds},
        {"code_object.co_code_adaptive", (uint64_t)l->co_code_adaptive},
        {"pyobject.size", 16}, {"pyobject.ob_type", (uint64_t)l->ob_type},
        {"type_object.size", 416}, {"type_object.tp_name", (uint64_t)l->tp_name},
        {"type_object.tp_flags", (uint64_t)l->tp_flags},
        {"tuple_object.size", 40}, {"tuple_object.ob_item", (uint64_t)l->tuple_item},
        {"list_object.size", 40}, {"list_object.ob_item", (uint64_t)l->list_item},
        {"dict_object.size", 48}, {"dict_object.ma_keys", (uint64_t)l->ma_keys},
        {"dict_object.ma_values", (uint64_t)l->ma_values},
        {"float_object.size", 24}, {"float_object.ob_fval", (uint64_t)l->float_fval},
        {"long_object.size", 32}, {"long_object.lv_tag", (uint64_t)l->long_size},
        {"long_object.ob_digit", (uint64_t)l->long_digit},
        {"bytes_object.size", 40}, {"bytes_object.ob_size", (uint64_t)l->bytes_size},
        {"bytes_object.ob_sval", (uint64_t)l->bytes_sval},
        {"unicode_object.size", 64}, {"unicode_object.state", (uint64_t)l->uni_state},
        {"unicode_object.length", (uint64_t)l->uni_length},
        {"unicode_object.asciiobject_size", (uint64_t)l->uni_ascii_size},
        {"gc.size", 240}, {"gc.collecting", (uint64_t)l->is_gc_collecting - gc},
    };
    for (size_t i = 0; i < ARRAY_SIZE(f); i++)
        dset(d, minor, f[i].name, f[i].v);
}

TEST(debug_offsets_reproduce_each_table)
{
    for (int minor = 13; minor <= 15; minor++) {
        uint64_t d[D_SLOTS];
        make_debug_offsets_of(d, minor);
        struct pylayout out;
        struct pserr err = {0};
        int ret = layout_from_debug_offsets(&out, d, sizeof(d), &err);
        if (ret)
            TEST_FAILF("3.%d: layout_from_debug_offsets: %d %s", minor, ret, err.msg);
        else
            CHECK(same_layout(&out, layout_for(3, minor)));
        /* One version's offsets read as another's are refused or differ. */
        if (minor > 13) {
            dset(d, minor, "version", 0x030d00f0);
            ret = layout_from_debug_offsets(&out, d, sizeof(d), &err);
            CHECK(ret < 0 || out.ts_current_frame != layout_for(3, minor)->ts_current_frame ||
                  out.if_owner != layout_for(3, minor)->if_owner);
        }
    }
}

TEST(newer_minor_is_attempted_through_its_debug_offsets)
{
    /* A 3.16 that kept 3.15's _Py_DebugOffsets, with some structures moved. */
    uint64_t d[D_SLOTS];
    make_debug_offsets_of(d, 15);
    dset(d, 15, "version", 0x031000a1);
    dset(d, 15, "thread_state.current_frame", 96);
    dset(d, 15, "code_object.name", 144);
    struct pylayout out;
    struct pserr err = {0};
    int ret = layout_from_debug_offsets(&out, d, sizeof(d), &err);
    if (ret)
        TEST_FAILF("3.16: %d %s", ret, err.msg);
    REQUIRE(ret == 0);
    CHECK_INT(out.major, 3);
    CHECK_INT(out.minor, 16);
    CHECK_INT(out.untested, 1);
    CHECK_INT(out.ts_current_frame, 96);
    CHECK_INT(out.co_name, 144);
    /* What the debug offsets lack comes from the newest table. */
    const struct pylayout *newest = layout_for(3, 15);
    CHECK_INT(out.co_stacksize, newest->co_stacksize);
    CHECK_INT(out.owner_cstack, newest->owner_cstack);
    CHECK_INT(out.chunk_data, newest->chunk_data);
    /* Naming it has no bytecode table: those checks are off. */
    struct code_facts cf;
    layout_code_facts(&out, &cf);
    CHECK(cf.ops == NULL);
    /* A field pystrobe needs that the table does not carry where it must
     * be: one clear error, naming it. */
    dset(d, 15, "interpreter_frame.owner", 4096);
    CHECK_INT(layout_from_debug_offsets(&out, d, sizeof(d), &err), -EINVAL);
    CHECK(strstr(err.msg, "interpreter_frame.owner") != NULL);
    CHECK(strstr(err.msg, "3.16") != NULL);
    make_debug_offsets_of(d, 15);
    dset(d, 15, "version", 0x031000a1);
    dset(d, 15, "thread_state.size", 0);
    CHECK_INT(layout_from_debug_offsets(&out, d, sizeof(d), &err), -EINVAL);
    CHECK(strstr(err.msg, "thread_state.") != NULL);
    /* Tested versions are not marked. */
    make_debug_offsets_of(d, 14);
    REQUIRE(layout_from_debug_offsets(&out, d, sizeof(d), &err) == 0);
    CHECK_INT(out.untested, 0);
    /* Nor is a newer major, or an absurd minor, attempted. */
    make_debug_offsets_of(d, 15);
    dset(d, 15, "version", 0x040000f0);
    CHECK_INT(layout_from_debug_offsets(&out, d, sizeof(d), &err), -ENOTSUP);
    dset(d, 15, "version", 0x03ff00f0);
    CHECK_INT(layout_from_debug_offsets(&out, d, sizeof(d), &err), -ENOTSUP);
}

TEST(debug_offsets_free_threaded)
{
    uint64_t d[D_SLOTS];
    make_debug_offsets(d);
    d[S_FREE_THREADED] = 1;
    struct pylayout out;
    struct pserr err = {0};
    CHECK_INT(layout_from_debug_offsets(&out, d, sizeof(d), &err), -ENOTSUP);
    CHECK(strstr(err.msg, "free-threaded") != NULL);
}

TEST(debug_offsets_field_beyond_struct)
{
    static const int cases[][2] = {
        {S_TS_CURRENT_FRAME, 304},   /* == size */
        {S_TS_NEXT, 400},
        {S_IF_OWNER, 80},
        {S_CO_FILENAME, 205},        /* 8 bytes do not fit */
        {S_RT_INTERPRETERS_HEAD, 283320},
        {S_UNI_STATE, 62},
        {S_UNI_STATE, 40},           /* in the object, past the ASCII header that is read */
        {S_UNI_LENGTH, 36},
        {S_TP_NAME, 1000},
        {S_IF_LOCALSPLUS, 81},       /* a flexible array may start at the end, not past it */
        {S_CO_LOCALSPLUSKINDS, 204},
        {S_LONG_SIZE + 2, 32},
        {S_TUPLE_SIZE + 1, 1 << 30},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        uint64_t d[D_SLOTS];
        make_debug_offsets(d);
        d[cases[i][0]] = (uint64_t)cases[i][1];
        struct pylayout out;
        struct pserr err = {0};
        int ret = layout_from_debug_offsets(&out, d, sizeof(d), &err);
        if (ret != -EINVAL)
            TEST_FAILF("slot %d = %d: got %d, expected -EINVAL", cases[i][0], cases[i][1], ret);
    }
    /* A zero or absurd structure size. */
    uint64_t d[D_SLOTS];
    struct pylayout out;
    struct pserr err = {0};
    make_debug_offsets(d);
    d[S_TS_SIZE] = 0;
    CHECK_INT(layout_from_debug_offsets(&out, d, sizeof(d), &err), -EINVAL);
    make_debug_offsets(d);
    d[S_CO_SIZE] = 1ull << 40;
    CHECK_INT(layout_from_debug_offsets(&out, d, sizeof(d), &err), -EINVAL);
    /* Bytecode said to start past the end of the code object. */
    make_debug_offsets(d);
    d[S_CO_CODE_ADAPTIVE] = 209;
    CHECK_INT(layout_from_debug_offsets(&out, d, sizeof(d), &err), -EINVAL);
}

/* ---- a live 3.13 ---------------------------------------------------------- */

static pid_t child = -1;

static void kill_child(void)
{
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = -1;
    }
}

/* Finds python3.13 under $PYENV_ROOT (or ~/.pyenv), versions/3.13.x/bin. */
static int find_python313(char *out, size_t len)
{
    const char *root = getenv("PYENV_ROOT");
    const char *home = getenv("HOME");
    char pat[512];
    if (root && *root)
        snprintf(pat, sizeof(pat), "%s/versions/3.13.*/bin/python3.13", root);
    else if (home && *home)
        snprintf(pat, sizeof(pat), "%s/.pyenv/versions/3.13.*/bin/python3.13", home);
    else
        return -1;
    glob_t g;
    int ret = -1;
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc && ret < 0; i++)
            if (access(g.gl_pathv[i], X_OK) == 0 && strlen(g.gl_pathv[i]) < len) {
                snprintf(out, len, "%s", g.gl_pathv[i]);
                ret = 0;
            }
        globfree(&g);
    }
    return ret;
}

/* Starts python -c code and waits (on a pipe, no sleeping) until it printed a line. */
static pid_t start_python_in(const char *root, const char *python, const char *code)
{
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* Dies with the test, even when the test is killed by its timeout. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (root && (chroot(root) < 0 || chdir("/") < 0))
            _exit(126);
        execl(python, python, "-c", code, (char *)NULL);
        _exit(127);
    }
    child = pid;
    atexit(kill_child);
    close(fds[1]);
    char c = 0;
    ssize_t r = read(fds[0], &c, 1);
    close(fds[0]);
    REQUIRE(r == 1);
    return pid;
}

static pid_t start_python(const char *python, const char *code)
{
    return start_python_in(NULL, python, code);
}

TEST(live_313_debug_offsets_match_table)
{
    char python[512];
    if (find_python313(python, sizeof(python)) < 0)
        SKIP("no pyenv 3.13 interpreter");
    pid_t pid = start_python(python, "import sys, time\n"
                                     "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
                                     "time.sleep(30)\n");
    struct mem *m = mem_new_pid(pid);
    struct pyrt rt;
    struct pserr err = {0};
    int ret = pyrt_attach(&rt, m, pid, &err);
    if (ret)
        TEST_FAILF("pyrt_attach: %d %s", ret, err.msg);
    REQUIRE(ret == 0);
    CHECK_INT(rt.major, 3);
    CHECK_INT(rt.minor, 13);
    REQUIRE(rt.runtime != 0);
    /* The raw offsets, read from _PyRuntime and decoded again. */
    unsigned char raw[DEBUG_OFFSETS_SIZE];
    REQUIRE(mem_read(m, rt.runtime, raw, sizeof(raw)) == 0);
    CHECK(memcmp(raw, DEBUG_OFFSETS_COOKIE, 8) == 0);
    uint64_t version;
    memcpy(&version, raw + 8, 8);
    CHECK_U64(version >> 16, 0x030d);
    struct pylayout out;
    CHECK_INT(layout_from_debug_offsets(&out, raw, sizeof(raw), &err), 0);
    CHECK(same_layout(&out, layout_for(3, 13)));
    CHECK(same_layout(&rt.layout, layout_for(3, 13)));
    /* The synthetic image agrees with the real one on every slot it sets from the table. */
    uint64_t d[D_SLOTS], live[S_SLOTS];
    make_debug_offsets(d);
    memcpy(live, raw, sizeof(live));
    static const int slots[] = {
        S_RT_INTERPRETERS_HEAD, S_IS_NEXT, S_IS_THREADS_HEAD, S_IS_MODULES, S_IS_CEVAL_GIL,
        S_IS_GIL_STATE, S_IS_GIL_LOCKED, S_IS_GIL_HOLDER, S_TS_NEXT, S_TS_INTERP,
        S_TS_CURRENT_FRAME, S_TS_THREAD_ID, S_TS_NATIVE_THREAD_ID, S_TS_DATASTACK_CHUNK,
        S_IF_SIZE, S_IF_PREVIOUS, S_IF_EXECUTABLE, S_IF_INSTR_PTR, S_IF_OWNER, S_CO_SIZE,
        S_CO_FILENAME, S_CO_NAME, S_CO_QUALNAME, S_CO_LINETABLE, S_CO_FIRSTLINENO,
        S_CO_CODE_ADAPTIVE, S_OB_TYPE, S_TP_NAME, S_TP_FLAGS, S_DICT_KEYS, S_DICT_VALUES,
        S_BYTES_OB_SIZE, S_BYTES_SVAL, S_UNI_STATE, S_UNI_LENGTH, S_UNI_ASCII_SIZE,
        S_IF_LOCALSPLUS, S_CO_ARGCOUNT, S_CO_LOCALSPLUSNAMES, S_CO_LOCALSPLUSKINDS,
        S_TUPLE_SIZE + 1, S_LIST_SIZE + 1, S_FLOAT_SIZE + 1, S_LONG_SIZE + 1, S_LONG_SIZE + 2,
    };
    for (size_t i = 0; i < ARRAY_SIZE(slots); i++)
        if (d[slots[i]] != live[slots[i]])
            TEST_FAILF("slot %d: table %" PRIu64 ", live %" PRIu64, slots[i], d[slots[i]],
                       live[slots[i]]);
    pyrt_release(&rt);
    mem_free(m);
    kill_child();
}

/* ---- the interpreters of a Debian unstable root (3.13-3.15) --------------- */

/* The root the tests' interpreters come from ($PYSTROBE_TEST_ROOT, else .ci/run's). */
static const char *test_root(void)
{
    const char *r = getenv("PYSTROBE_TEST_ROOT");
    return r && *r ? r : "/var/cache/pystrobe/sid-root";
}

TEST(live_root_debug_offsets_match_tables)
{
    const char *root = test_root();
    int tried = 0;
    if (geteuid() != 0)
        SKIP("not root: cannot run the interpreters of %s", root);
    for (int minor = 13; minor <= 15; minor++) {
        char python[64], path[1024];
        snprintf(python, sizeof(python), "/usr/bin/python3.%d", minor);
        snprintf(path, sizeof(path), "%s%s", root, python);
        if (access(path, X_OK) != 0)
            continue;
        tried++;
        pid_t pid = start_python_in(root, python, "import sys, time\n"
                                                  "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
                                                  "time.sleep(30)\n");
        struct mem *m = mem_new_pid(pid);
        struct pyrt rt;
        struct pserr err = {0};
        int ret = pyrt_attach(&rt, m, pid, &err);
        if (ret)
            TEST_FAILF("3.%d: pyrt_attach: %d %s", minor, ret, err.msg);
        if (ret == 0) {
            CHECK_INT(rt.minor, minor);
            CHECK_INT(rt.layout.untested, 0);
            /* Every field the target's debug offsets give, and the table's
             * others, are the table's: the slot map is right. */
            if (!same_layout(&rt.layout, layout_for(3, minor)))
                TEST_FAILF("3.%d (%s): its debug offsets do not give the table", minor,
                           rt.version);
            pyrt_release(&rt);
        }
        mem_free(m);
        kill_child();
    }
    if (!tried)
        SKIP("no python3.13-3.15 under %s (.ci/run makes it)", root);
}
