/* Prints the structure offsets pystrobe's layout tables hold, for the CPython
 * whose headers it is compiled against.  Not part of the build: run
 * tools/probe-offsets.sh to regenerate the figures after a new release. */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <frameobject.h>
#if PY_VERSION_HEX < 0x030b0000
#include <longintrepr.h>
#endif
#include <stddef.h>
#include <stdio.h>
#if PY_VERSION_HEX >= 0x03090000
#include <internal/pycore_runtime.h>
#include <internal/pycore_interp.h>
#elif PY_VERSION_HEX >= 0x03080000
#include <internal/pycore_pystate.h>
#elif PY_VERSION_HEX >= 0x03070000
#include <internal/pystate.h>
#endif
#if PY_VERSION_HEX >= 0x030b0000
#include <internal/pycore_frame.h>
#include <internal/pycore_dict.h>
#include <internal/pycore_code.h>
#endif

#define P(name, expr) printf("%-36s %ld\n", name, (long)(expr))
#define O(name, type, field) P(name, offsetof(type, field))

#if PY_VERSION_HEX >= 0x03060000 && PY_VERSION_HEX < 0x030b0000
/* Objects/dict-common.h is not installed before 3.11; its layout is stable. */
struct keys_3_6 {
    Py_ssize_t dk_refcnt;
    Py_ssize_t dk_size;
    void *dk_lookup;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[8];
};
#endif

/* PyModuleObject is private to Objects/moduleobject.c before 3.12. */
struct module_head {
    PyObject_HEAD
    PyObject *md_dict;
};

int main(void)
{
    printf("version %s\n", PY_VERSION);
#if PY_VERSION_HEX >= 0x03070000
    O("runtime.interpreters_head", _PyRuntimeState, interpreters.head);
#endif
#if PY_VERSION_HEX >= 0x03070000 && PY_VERSION_HEX < 0x030c0000
    O("runtime.gil_last_holder", _PyRuntimeState, ceval.gil.last_holder);
    O("runtime.gil_locked", _PyRuntimeState, ceval.gil.locked);
    O("runtime.tstate_current", _PyRuntimeState, gilstate.tstate_current);
#endif
    O("interp.next", PyInterpreterState, next);
#if PY_VERSION_HEX >= 0x030b0000
    O("interp.tstate_head", PyInterpreterState, threads.head);
#else
    O("interp.tstate_head", PyInterpreterState, tstate_head);
#endif
#if PY_VERSION_HEX >= 0x030c0000
    O("interp.modules", PyInterpreterState, imports.modules);
    O("interp.ceval_gil", PyInterpreterState, ceval.gil);
#else
    O("interp.modules", PyInterpreterState, modules);
#endif
    O("tstate.next", PyThreadState, next);
    O("tstate.interp", PyThreadState, interp);
#if PY_VERSION_HEX < 0x030b0000
    O("tstate.frame", PyThreadState, frame);
#elif PY_VERSION_HEX < 0x030d0000
    O("tstate.cframe", PyThreadState, cframe);
    O("cframe.current_frame", _PyCFrame, current_frame);
#else
    O("tstate.current_frame", PyThreadState, current_frame);
#endif
    O("tstate.thread_id", PyThreadState, thread_id);
#if PY_VERSION_HEX >= 0x030b0000
    O("tstate.native_thread_id", PyThreadState, native_thread_id);
    O("tstate.datastack_chunk", PyThreadState, datastack_chunk);
    O("tstate.datastack_top", PyThreadState, datastack_top);
    P("sizeof.tstate", sizeof(PyThreadState));
#endif
#if PY_VERSION_HEX < 0x030b0000
    O("frame.f_back", PyFrameObject, f_back);
    O("frame.f_code", PyFrameObject, f_code);
    O("frame.f_lasti", PyFrameObject, f_lasti);
#else
    O("iframe.previous", _PyInterpreterFrame, previous);
#if PY_VERSION_HEX >= 0x030d0000
    O("iframe.code", _PyInterpreterFrame, f_executable);
    O("iframe.instr", _PyInterpreterFrame, instr_ptr);
#else
    O("iframe.code", _PyInterpreterFrame, f_code);
    O("iframe.instr", _PyInterpreterFrame, prev_instr);
#endif
    O("iframe.owner", _PyInterpreterFrame, owner);
    P("sizeof.iframe", sizeof(_PyInterpreterFrame));
    O("chunk.previous", _PyStackChunk, previous);
    O("chunk.size", _PyStackChunk, size);
    O("chunk.top", _PyStackChunk, top);
    O("chunk.data", _PyStackChunk, data);
#endif
    O("code.co_filename", PyCodeObject, co_filename);
    O("code.co_name", PyCodeObject, co_name);
#if PY_VERSION_HEX >= 0x030b0000
    O("code.co_qualname", PyCodeObject, co_qualname);
    O("code.co_code_adaptive", PyCodeObject, co_code_adaptive);
#endif
    O("code.co_firstlineno", PyCodeObject, co_firstlineno);
#if PY_VERSION_HEX >= 0x030a0000
    O("code.co_linetable", PyCodeObject, co_linetable);
#else
    O("code.co_linetable", PyCodeObject, co_lnotab);
#endif
#if PY_VERSION_HEX >= 0x030c0000
    O("code.co_version", PyCodeObject, co_version);
#endif
    O("type.tp_name", PyTypeObject, tp_name);
    O("type.tp_basicsize", PyTypeObject, tp_basicsize);
    O("type.tp_flags", PyTypeObject, tp_flags);
    O("type.tp_base", PyTypeObject, tp_base);
    O("type.tp_dictoffset", PyTypeObject, tp_dictoffset);
#if PY_VERSION_HEX >= 0x03030000
    O("heaptype.ht_cached_keys", PyHeapTypeObject, ht_cached_keys);
#endif
    O("module.md_dict", struct module_head, md_dict);
#if PY_MAJOR_VERSION == 2
    O("dict.ma_mask", PyDictObject, ma_mask);
    O("dict.ma_table", PyDictObject, ma_table);
    O("str.ob_size", PyStringObject, ob_size);
    O("str.ob_sval", PyStringObject, ob_sval);
    O("unicode.length", PyUnicodeObject, length);
    O("unicode.str", PyUnicodeObject, str);
    P("sizeof.Py_UNICODE", sizeof(Py_UNICODE));
    O("int.ob_ival", PyIntObject, ob_ival);
#else
    O("dict.ma_used", PyDictObject, ma_used);
    O("dict.ma_keys", PyDictObject, ma_keys);
    O("dict.ma_values", PyDictObject, ma_values);
#if PY_VERSION_HEX >= 0x030b0000
    O("keys.dk_log2_size", PyDictKeysObject, dk_log2_size);
    O("keys.dk_log2_index_bytes", PyDictKeysObject, dk_log2_index_bytes);
    O("keys.dk_kind", PyDictKeysObject, dk_kind);
    O("keys.dk_nentries", PyDictKeysObject, dk_nentries);
    O("keys.dk_indices", PyDictKeysObject, dk_indices);
    P("sizeof.PyDictKeyEntry", sizeof(PyDictKeyEntry));
    P("sizeof.PyDictUnicodeEntry", sizeof(PyDictUnicodeEntry));
    O("values.values", PyDictValues, values);
#else
    O("keys.dk_size", struct keys_3_6, dk_size);
    O("keys.dk_nentries", struct keys_3_6, dk_nentries);
    O("keys.dk_indices", struct keys_3_6, dk_indices);
#endif
    O("bytes.ob_size", PyBytesObject, ob_base.ob_size);
    O("bytes.ob_sval", PyBytesObject, ob_sval);
    O("unicode.length", PyASCIIObject, length);
    O("unicode.hash", PyASCIIObject, hash);
    O("unicode.state", PyASCIIObject, state);
    P("sizeof.PyASCIIObject", sizeof(PyASCIIObject));
    P("sizeof.PyCompactUnicodeObject", sizeof(PyCompactUnicodeObject));
    O("unicode.data_any", PyUnicodeObject, data.any);
#if PY_VERSION_HEX >= 0x030c0000
    O("long.lv_tag", PyLongObject, long_value.lv_tag);
    O("long.ob_digit", PyLongObject, long_value.ob_digit);
#else
    O("long.ob_size", PyLongObject, ob_base.ob_size);
    O("long.ob_digit", PyLongObject, ob_digit);
#endif
#endif

    /* Locals (dump --locals) and the values they hold. */
#if PY_VERSION_HEX < 0x030b0000
    O("frame.f_localsplus", PyFrameObject, f_localsplus);
    O("code.co_nlocals", PyCodeObject, co_nlocals);
    O("code.co_varnames", PyCodeObject, co_varnames);
    O("code.co_cellvars", PyCodeObject, co_cellvars);
    O("code.co_freevars", PyCodeObject, co_freevars);
#else
    O("iframe.localsplus", _PyInterpreterFrame, localsplus);
    O("code.co_nlocalsplus", PyCodeObject, co_nlocalsplus);
    O("code.co_localsplusnames", PyCodeObject, co_localsplusnames);
    O("code.co_localspluskinds", PyCodeObject, co_localspluskinds);
#endif
    O("code.co_argcount", PyCodeObject, co_argcount);
#if PY_MAJOR_VERSION >= 3
    O("code.co_kwonlyargcount", PyCodeObject, co_kwonlyargcount);
#endif
    O("code.co_flags", PyCodeObject, co_flags);
    O("tuple.ob_item", PyTupleObject, ob_item);
    O("list.ob_item", PyListObject, ob_item);
    O("float.ob_fval", PyFloatObject, ob_fval);
    O("set.fill", PySetObject, fill);
    O("set.used", PySetObject, used);
    O("set.mask", PySetObject, mask);
    O("set.table", PySetObject, table);
    O("setentry.key", setentry, key);
    O("setentry.hash", setentry, hash);
    P("sizeof.setentry", sizeof(setentry));
    O("cell.ob_ref", PyCellObject, ob_ref);
    P("long.shift", PyLong_SHIFT);
    return 0;
}
