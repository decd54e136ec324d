/*
 * Versions as data: the byte offsets of the CPython structures pystrobe reads,
 * one table per minor version (x86_64, default release builds).  The walker
 * and the object readers take every offset from here and have no per-version
 * code paths beyond the "kind" switches below.  On 3.13+ the table is filled
 * from the _Py_DebugOffsets the target carries.  A field a version lacks is -1.
 */
#ifndef PYSTROBE_LAYOUT_H
#define PYSTROBE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* Filled from a table for naming (symbolizer/codefacts.h, symbolizer/pystr.h). */
struct code_facts;
struct pystr_layout;

enum frame_kind {
    FRAME_OBJECTS,      /* <= 3.10: PyFrameObject chain through f_back */
    FRAME_INTERPRETER,  /* 3.11+: _PyInterpreterFrame chain through previous */
};

enum gil_kind {
    GIL_TSTATE_CURRENT, /* 2.7, 3.6: the exported _PyThreadState_Current */
    GIL_RUNTIME,        /* 3.7-3.11: _PyRuntime.ceval.gil.{locked,last_holder} */
    GIL_INTERP,         /* 3.12+: *(interp + ceval_gil) -> {last_holder, locked} */
};

enum lines_kind {
    LINES_LNOTAB_27,    /* 2.7 co_lnotab: (addr u8, line u8) pairs */
    LINES_LNOTAB_36,    /* 3.6-3.9 co_lnotab: (addr u8, line s8) pairs */
    LINES_LINETABLE_310, /* 3.10 co_linetable */
    LINES_LOCATIONS_311, /* 3.11+ co_linetable: the location table */
};

enum str_kind {
    STR_BYTES27,        /* 2.7 PyStringObject */
    STR_UNICODE3,       /* 3.3+ PEP 393 unicode */
};

enum dict_kind {
    DICT_27,            /* open addressing over (hash, key, value) entries */
    DICT_36,            /* 3.6-3.10 compact dict: dk_size, indices, entries */
    DICT_311,           /* 3.11+: dk_log2_size, dk_kind, unicode entries */
};

enum set_dummy_kind {
    SET_DUMMY_HASH,     /* 3.x: a deleted entry's hash is -1 (its key _PySet_Dummy) */
    SET_DUMMY_STR27,    /* 2.7: a deleted entry's key is the str "<dummy key>" */
};

/*
 * Built-in objects whose address tells what a value is (dump --locals): each
 * version's table names the symbol of each (NULL: none), and pyrt.known
 * holds their addresses (0 where the interpreter does not export one).
 */
enum known_object {
    PYK_NONE, PYK_TRUE, PYK_FALSE,
    PYK_INT,        /* int: 3.x PyLong_Type, 2.7 PyInt_Type */
    PYK_LONG27,     /* 2.7 long */
    PYK_BOOL, PYK_FLOAT,
    PYK_STR,        /* str: 3.x PyUnicode_Type, 2.7 PyString_Type */
    PYK_UNICODE27,  /* 2.7 unicode */
    PYK_BYTES,      /* 3.x bytes */
    PYK_TUPLE, PYK_LIST, PYK_DICT, PYK_SET, PYK_FROZENSET, PYK_CELL,
    PYK_SET_DUMMY,  /* 3.x: the key of a deleted set entry */
    PYK_COUNT
};

#define GIL_STATIC_SYMBOLS 4

enum managed_dict_kind {
    MANAGED_NONE,       /* <= 3.10: the dict sits at tp_dictoffset */
    MANAGED_311,        /* obj[-3] dict, obj[-4] values */
    MANAGED_312,        /* obj[-3] dict, or values - 1 (odd) */
    MANAGED_313,        /* obj[-3] dict; inline values after the object */
};

struct pylayout {
    int major, minor;
    int untested;               /* a newer minor than pystrobe knows, read through the
                                 * debug offsets it carries and the newest table */

    /* Symbols of the interpreter's ELF file */
    const char *runtime_symbol;     /* where the runtime state is: _PyRuntime (3.7+), or
                                     * the static interp_head */
    int debug_offsets;              /* 3.13+: _PyRuntime starts with _Py_DebugOffsets */
    const char *tstate_current_symbol; /* 2.7, 3.6: the current thread state (the GIL's
                                     * holder), else NULL */
    const char *gil_lock_symbol;    /* 2.7: the static pointer to the GIL's semaphore */
    const char *gil_static_symbols[GIL_STATIC_SYMBOLS]; /* 3.6: the GIL's condition
                                     * variables and mutexes, statics (NULL: none) */
    const char *narrow_unicode_symbol; /* 2.7: exported by narrow (UCS-2) builds only */
    const char *eval_function;      /* the C function of the eval loop (a ".cold" part too) */
    const char *const *known_symbols; /* [PYK_COUNT]: the symbol of each known object */

    /* _PyRuntime (3.7+) */
    int rt_interpreters_head;
    int rt_gil_locked, rt_gil_last_holder;

    /* PyInterpreterState */
    int is_next;
    int is_tstate_head;
    int is_modules;
    int is_gc_generations;      /* 3.9+: the gc_generation array (3 heads of 24 bytes) */
    int is_gc_collecting;       /* 3.9+: gc.collecting, set while a collection relinks the lists */
    int gc_state_generations;   /* 3.13+: the generations' offset in the gc state (the debug
                                 * offsets give where the gc state is) */
    int gc_state_generation0;   /* 3.13: the gc state's pointer to the first generation's
                                 * head (where the generations really are: see greenlet_gc.c) */
    int gc_head_size;           /* sizeof(PyGC_Head): the object follows it */
    int gc_generation_size;     /* sizeof(struct gc_generation): head, threshold, count */
    int rt_gc_generations;      /* 3.7, 3.8: the generations in _PyRuntime.gc */
    int rt_gc_collecting;       /* 3.7, 3.8: _PyRuntime.gc.collecting */
    int is_ceval_gil;           /* 3.12+: pointer to the _gil_runtime_state */
    int gil_locked, gil_last_holder; /* inside _gil_runtime_state (3.7+) */
    int gil_state_size;         /* sizeof(struct _gil_runtime_state) (3.7+) */
    int var_ob_size;            /* ob_size in a PyVarObject */
    enum gil_kind gil;

    /* PyThreadState */
    int ts_next, ts_interp;
    int ts_frame;               /* <= 3.10 */
    int ts_cframe, cf_current_frame; /* 3.11, 3.12 */
    int ts_current_frame;       /* 3.13+ */
    int ts_thread_id;
    int ts_native_thread_id;    /* 3.11+ */
    int ts_datastack_chunk, ts_datastack_top; /* 3.11+ */
    int ts_size;                /* bytes to read to cover every field above */

    enum frame_kind frames;
    /* PyFrameObject (<= 3.10) */
    int fo_back, fo_code, fo_lasti;
    int lasti_units;            /* f_lasti counts 2-byte units (3.10) */
    /* _PyInterpreterFrame (3.11+) */
    int if_previous, if_code, if_instr, if_owner, if_size;
    int owner_cstack;           /* owner value of C-stack shim frames, -1 if none */
    int owner_cstack2;          /* 3.14: a second owner value of frames without code, else -1 */
    int owner_max;              /* the largest owner value a frame can have */
    int if_is_entry;            /* 3.11: the flag marking a C-level eval call's first frame */
    int code_tagged;            /* f_executable and the frame's slots are tagged stack
                                 * references (3.14+) */
    /* _PyStackChunk (3.11+) */
    int chunk_previous, chunk_size, chunk_top, chunk_data;

    /* PyCodeObject */
    int co_filename, co_name, co_qualname, co_firstlineno, co_linetable;
    int co_code_adaptive;       /* 3.11+: bytecode inline in the code object */
    int co_stacksize;           /* 3.11+: with co_nlocalsplus, the size of the code's frames */
    int co_code;                /* <= 3.10: the bytecode, a bytes object */
    int co_flags;               /* <= 3.10: CO_GENERATOR and friends (0: not read) */
    uint32_t co_generator_flags; /* the co_flags of generators, coroutines, async generators */
    enum lines_kind linetable;

    /* Objects in general */
    int ob_type;
    int tp_name, tp_basicsize, tp_flags, tp_base, tp_dictoffset, ht_cached_keys;
    int md_dict;                /* PyModuleObject */

    /* Strings */
    enum str_kind strings;
    int bytes_size, bytes_sval; /* PyBytesObject, or 2.7 PyStringObject */
    int uni_length, uni_hash, uni_state;
    int uni_ascii_size;         /* sizeof(PyASCIIObject): compact ASCII data */
    int uni_compact_size;       /* sizeof(PyCompactUnicodeObject): compact data */
    int uni_data_any;           /* legacy (non-compact) data pointer */
    int uni27_str;              /* 2.7 PyUnicodeObject: Py_UNICODE* (UCS-4) */

    /* Dicts */
    enum dict_kind dicts;
    int ma_used, ma_keys, ma_values, ma_mask, ma_table;
    int dk_size, dk_log2_size, dk_log2_index_bytes, dk_kind, dk_nentries, dk_indices;
    int dv_values;              /* offset of the values array in PyDictValues */
    enum managed_dict_kind managed;

    /* Locals (dump --locals) */
    int fo_localsplus;          /* <= 3.10: PyFrameObject.f_localsplus */
    int if_localsplus;          /* 3.11+: _PyInterpreterFrame.localsplus */
    int co_argcount;
    int co_kwonlyargcount;      /* 3.x */
    int co_argflags;            /* co_flags in every version: CO_VARARGS, CO_VARKEYWORDS */
    int co_nlocals, co_varnames, co_cellvars, co_freevars; /* <= 3.10 */
    int co_nlocalsplus, co_localsplusnames, co_localspluskinds; /* 3.11+ */

    /* Values of the built-in types (dump --locals) */
    int tuple_item, list_item, float_fval, cell_ref;
    int long_size, long_digit;  /* ob_size (<= 3.11), or lv_tag (3.12+); 30-bit digits */
    int long_tagged;            /* 3.12+: long_size holds lv_tag */
    int int27_ival;             /* 2.7 PyIntObject.ob_ival; -1: an int is a PyLongObject */
    int set_used, set_mask, set_table;
    int setentry_key, setentry_hash, setentry_size;
    enum set_dummy_kind set_dummy;
    int set_repr_call;          /* 2.7: a set shows as set([...]), not {...} */

    /* threading.Thread's attributes */
    const char *thread_name_attr;       /* its name */
    const char *thread_native_id_attr;  /* 3.8+: its Linux thread id, else NULL */
};

/* 1 when a 3.12+ frame owned by owner is one without code of its own (the
 * eval loop's entry shim, a C-stack frame): it is passed over. */
static inline int layout_owner_shim(const struct pylayout *l, int owner)
{
    return l->owner_cstack >= 0 &&
           (owner == l->owner_cstack || (l->owner_cstack2 >= 0 && owner == l->owner_cstack2));
}

/* The built-in table for major.minor, or NULL when pystrobe does not know it. */
const struct pylayout *layout_for(int major, int minor);

/* "2.7, 3.6-3.13": the versions layout_for knows (from its table), for messages. */
const char *layout_supported(void);

/* What naming needs of the code objects of the version of l (their
 * offsets, strings, line tables and bytecode), filled from l. */
void layout_code_facts(const struct pylayout *l, struct code_facts *out);

/* What naming needs of the strings of the version of l, filled from l. */
void layout_str_facts(const struct pylayout *l, struct pystr_layout *out);

/* Bytes of _PyRuntime read for its _Py_DebugOffsets: more than the
 * largest known (3.15: 888), and what a newer minor is read with. */
#define DEBUG_OFFSETS_SIZE 1024
#define DEBUG_OFFSETS_COOKIE "xdebugpy"

/* The newest minor of 3.x whose table pystrobe has. */
int layout_newest_minor(void);

/*
 * The uint64 slot of the named field of _Py_DebugOffsets ("thread_state.next",
 * as CPython names it) in 3.minor's, or -1 when pystrobe does not read that
 * field or know that version.  Slot 0 is the cookie.
 */
int layout_debug_slot(int minor, const char *field);

/*
 * Fills *out from the _Py_DebugOffsets at the start of a 3.13+ _PyRuntime
 * (buf holds len bytes of it): checks the cookie, that the version is one
 * pystrobe knows, or a newer 3.x (read as the newest it knows, marked
 * untested), that the build is not free-threaded, and that every offset is
 * within its structure; takes the fields the debug offsets lack from the
 * built-in table for that version.  Returns 0, or a negative errno with err
 * filled (naming the field at fault): -EINVAL bad cookie or offsets,
 * -ENOTSUP unknown version or build.
 */
int layout_from_debug_offsets(struct pylayout *out, const void *buf, size_t len,
                              struct pserr *err);

#endif
