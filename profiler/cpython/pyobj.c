#include "profiler/cpython/pyobj.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer/pystr.h"

#define TPFLAGS_INLINE_VALUES (1ul << 2)
#define TPFLAGS_MANAGED_DICT (1ul << 4)

int pyobj_type_name(struct pyrt *rt, uint64_t obj, struct strbuf *out)
{
    uint64_t type, name;
    char buf[64];
    int ret;
    if ((ret = mem_read_u64(rt->mem, obj + (uint64_t)rt->layout.ob_type, &type)) < 0 ||
        (ret = mem_read_u64(rt->mem, type + (uint64_t)rt->layout.tp_name, &name)) < 0)
        return ret;
    /* A short name may sit at the end of a mapping: shrink the read until it works. */
    for (size_t n = sizeof(buf); n >= 1; n /= 2) {
        if (mem_read(rt->mem, name, buf, n) == 0) {
            size_t len = strnlen(buf, n);
            if (len == n)
                return -EINVAL;
            pystr_decode_utf8((const unsigned char *)buf, len, out);
            return 0;
        }
    }
    return -EFAULT;
}

/* Every entry slot of a keys object, in index order, empty ones included. */
static int keys_slots_max(struct pyrt *rt, uint64_t keys, size_t max, struct pydict_entry **out,
                          size_t *n)
{
    const struct pylayout *l = &rt->layout;
    unsigned char hdr[64];
    int64_t nentries;
    uint64_t entries;
    size_t esize = 24;
    int general = 1, ret;
    if ((ret = mem_read(rt->mem, keys, hdr, (size_t)l->dk_indices)) < 0)
        return ret;
    memcpy(&nentries, hdr + l->dk_nentries, 8);
    if (l->dicts == DICT_36) {
        int64_t size;
        memcpy(&size, hdr + l->dk_size, 8);
        if (size <= 0 || size > (1 << 24) || (size & (size - 1)))
            return -EINVAL;
        uint64_t ix = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;
        entries = keys + (uint64_t)l->dk_indices + (uint64_t)size * ix;
    } else {
        uint8_t log2_index_bytes = hdr[l->dk_log2_index_bytes], kind = hdr[l->dk_kind];
        if (log2_index_bytes > 30 || kind > 2)
            return -EINVAL;
        general = kind == 0;
        esize = general ? 24 : 16;
        entries = keys + (uint64_t)l->dk_indices + (1ull << log2_index_bytes);
    }
    if (nentries < 0 || nentries > PYDICT_MAX_ENTRIES)
        return -EINVAL;
    nentries = MIN(nentries, (int64_t)max);
    unsigned char *raw = xmalloc((size_t)nentries * esize + 1);
    struct pydict_entry *v = xcalloc((size_t)nentries + 1, sizeof(*v));
    if ((ret = mem_read(rt->mem, entries, raw, (size_t)nentries * esize)) < 0) {
        free(raw);
        free(v);
        return ret;
    }
    for (int64_t i = 0; i < nentries; i++) {
        const unsigned char *e = raw + (size_t)i * esize;
        if (general) {
            memcpy(&v[i].hash, e, 8);
            memcpy(&v[i].key, e + 8, 8);
            memcpy(&v[i].value, e + 16, 8);
        } else {
            memcpy(&v[i].key, e, 8);
            memcpy(&v[i].value, e + 8, 8);
        }
    }
    free(raw);
    *out = v;
    *n = (size_t)nentries;
    return 0;
}

static int keys_slots(struct pyrt *rt, uint64_t keys, struct pydict_entry **out, size_t *n)
{
    return keys_slots_max(rt, keys, PYDICT_MAX_ENTRIES, out, n);
}

/* Fills entry values from a split table's values array. */
static int read_split_values(struct pyrt *rt, uint64_t values, struct pydict_entry *v, size_t n)
{
    uint64_t *vals = xmalloc(n * 8 + 8);
    int ret = mem_read(rt->mem, values + (uint64_t)rt->layout.dv_values, vals, n * 8);
    if (ret == 0)
        for (size_t i = 0; i < n; i++)
            v[i].value = vals[i];
    free(vals);
    return ret;
}

static int dict27_entries(struct pyrt *rt, uint64_t dict, size_t max, struct pydict_entry **out,
                          size_t *n)
{
    const struct pylayout *l = &rt->layout;
    int64_t mask;
    uint64_t table;
    int ret;
    if ((ret = mem_read(rt->mem, dict + (uint64_t)l->ma_mask, &mask, 8)) < 0 ||
        (ret = mem_read_u64(rt->mem, dict + (uint64_t)l->ma_table, &table)) < 0)
        return ret;
    if (mask < 0 || mask >= PYDICT_MAX_ENTRIES * 4 || ((mask + 1) & mask))
        return -EINVAL;
    size_t slots = MIN((size_t)mask + 1, max);
    struct pydict_entry *v = xmalloc(slots * sizeof(*v));
    if ((ret = mem_read(rt->mem, table, v, slots * sizeof(*v))) < 0) {
        free(v);
        return ret;
    }
    *out = v;
    *n = slots;
    return 0;
}

int pydict_entries(struct pyrt *rt, uint64_t dict, struct pydict_entry **out, size_t *n)
{
    return pydict_entries_max(rt, dict, PYDICT_MAX_ENTRIES * 4, out, n);
}

int pydict_entries_max(struct pyrt *rt, uint64_t dict, size_t max, struct pydict_entry **out,
                       size_t *n)
{
    const struct pylayout *l = &rt->layout;
    struct pydict_entry *v = NULL;
    size_t count = 0;
    int ret;
    *out = NULL;
    *n = 0;
    if (l->dicts == DICT_27) {
        ret = dict27_entries(rt, dict, max, &v, &count);
    } else {
        uint64_t keys, values;
        if ((ret = mem_read_u64(rt->mem, dict + (uint64_t)l->ma_keys, &keys)) < 0 ||
            (ret = mem_read_u64(rt->mem, dict + (uint64_t)l->ma_values, &values)) < 0)
            return ret;
        ret = keys_slots_max(rt, keys, max, &v, &count);
        if (ret == 0 && values)
            ret = read_split_values(rt, values, v, count);
    }
    if (ret < 0) {
        free(v);
        return ret;
    }
    /* Keep live entries only (deleted ones have no key or no value). */
    size_t live = 0;
    for (size_t i = 0; i < count; i++)
        if (v[i].key && v[i].value)
            v[live++] = v[i];
    *out = v;
    *n = live;
    return 0;
}

/*
 * Index of the entry whose key is the ASCII string key, checking all keys
 * with one vectored read of their headers and first bytes.
 */
static long find_str_key(struct pyrt *rt, const struct pydict_entry *v, size_t n, const char *key)
{
    const struct pylayout *l = &rt->layout;
    size_t klen = strlen(key);
    int py2 = l->strings == STR_BYTES27;
    size_t data_off = (size_t)(py2 ? l->bytes_sval : l->uni_ascii_size);
    size_t piece = data_off + klen + 1;
    if (n == 0 || klen > 64)
        return -1;
    unsigned char *buf = xmalloc(n * piece);
    struct mem_iov *iov = xmalloc(n * sizeof(*iov));
    for (size_t i = 0; i < n; i++)
        iov[i] = (struct mem_iov){v[i].key, buf + i * piece, piece, 0};
    long found = -1;
    if (mem_readv(rt->mem, iov, n) >= 0) {
        for (size_t i = 0; i < n && found < 0; i++) {
            const unsigned char *b = buf + i * piece;
            int64_t len;
            if (!iov[i].ok || !v[i].key)
                continue;
            memcpy(&len, b + (py2 ? l->bytes_size : l->uni_length), 8);
            if (len != (int64_t)klen || memcmp(b + data_off, key, klen) != 0)
                continue;
            if (!py2) {
                uint32_t state;
                memcpy(&state, b + l->uni_state, 4);
                if (!((state >> 5) & 1) || !((state >> 6) & 1)) /* compact ASCII */
                    continue;
            }
            found = (long)i;
        }
    }
    free(iov);
    free(buf);
    return found;
}

int pydict_get_str(struct pyrt *rt, uint64_t dict, const char *key, uint64_t *value)
{
    struct pydict_entry *v;
    size_t n;
    int ret = pydict_entries(rt, dict, &v, &n);
    if (ret < 0)
        return ret;
    long i = find_str_key(rt, v, n, key);
    if (i >= 0)
        *value = v[i].value;
    free(v);
    return i >= 0 ? 0 : -ENOENT;
}

/* Looks name up in a type's shared keys and reads the value from values. */
static int shared_lookup(struct pyrt *rt, uint64_t type, uint64_t values, const char *name,
                         uint64_t *value)
{
    uint64_t keys;
    struct pydict_entry *v;
    size_t n;
    int ret;
    if (rt->layout.ht_cached_keys < 0)
        return -ENOENT;
    if ((ret = mem_read_u64(rt->mem, type + (uint64_t)rt->layout.ht_cached_keys, &keys)) < 0)
        return ret;
    if (!keys || (ret = keys_slots(rt, keys, &v, &n)) < 0)
        return keys ? ret : -ENOENT;
    long ix = find_str_key(rt, v, n, name);
    free(v);
    if (ix < 0)
        return -ENOENT;
    ret = mem_read_u64(rt->mem, values + (uint64_t)rt->layout.dv_values + 8 * (uint64_t)ix, value);
    if (ret == 0 && !*value)
        return -ENOENT;
    return ret;
}

int pyobj_getattr(struct pyrt *rt, uint64_t obj, const char *name, uint64_t *value)
{
    const struct pylayout *l = &rt->layout;
    uint64_t type, flags, slot;
    int64_t basicsize, dictoffset;
    int ret;
    if ((ret = mem_read_u64(rt->mem, obj + (uint64_t)l->ob_type, &type)) < 0 ||
        (ret = mem_read_u64(rt->mem, type + (uint64_t)l->tp_flags, &flags)) < 0 ||
        (ret = mem_read(rt->mem, type + (uint64_t)l->tp_basicsize, &basicsize, 8)) < 0 ||
        (ret = mem_read(rt->mem, type + (uint64_t)l->tp_dictoffset, &dictoffset, 8)) < 0)
        return ret;
    if (l->managed == MANAGED_NONE || !(flags & TPFLAGS_MANAGED_DICT)) {
        if (dictoffset <= 0 || dictoffset > (1 << 20))
            return -ENOENT;
        if ((ret = mem_read_u64(rt->mem, obj + (uint64_t)dictoffset, &slot)) < 0)
            return ret;
        return slot ? pydict_get_str(rt, slot, name, value) : -ENOENT;
    }
    if ((ret = mem_read_u64(rt->mem, obj - 24, &slot)) < 0)
        return ret;
    switch (l->managed) {
    case MANAGED_311: {
        uint64_t values;
        if (slot)
            return pydict_get_str(rt, slot, name, value);
        if ((ret = mem_read_u64(rt->mem, obj - 32, &values)) < 0)
            return ret;
        return values ? shared_lookup(rt, type, values, name, value) : -ENOENT;
    }
    case MANAGED_312:
        if (slot & 1)
            return shared_lookup(rt, type, slot + 1, name, value); /* stored as values - 1 */
        return slot ? pydict_get_str(rt, slot, name, value) : -ENOENT;
    case MANAGED_313: {
        uint8_t valid;
        if (slot)
            return pydict_get_str(rt, slot, name, value);
        if (!(flags & TPFLAGS_INLINE_VALUES) || basicsize <= 0 || basicsize > (1 << 20))
            return -ENOENT;
        /* PyDictValues {capacity, size, embedded, valid; values[]} after the object. */
        uint64_t values = obj + (uint64_t)basicsize;
        if ((ret = mem_read(rt->mem, values + 3, &valid, 1)) < 0)
            return ret;
        return valid ? shared_lookup(rt, type, values, name, value) : -ENOENT;
    }
    default:
        return -ENOENT;
    }
}

int pyobj_str(struct pyrt *rt, uint64_t obj, struct strbuf *out)
{
    struct strbuf tn = STRBUF_INIT;
    struct pystr_layout sl;
    layout_str_facts(&rt->layout, &sl);
    int ret = pyobj_type_name(rt, obj, &tn);
    if (ret == 0) {
        /* 2.7: str is bytes, unicode a type apart. */
        if (strcmp(sb_str(&tn), "str") == 0)
            ret = pystr_read(rt->mem, &sl, obj, sl.bytes27 ? PYSTR_BYTES27 : PYSTR_UNICODE,
                             rt->unicode27_width, out);
        else if (sl.bytes27 && strcmp(sb_str(&tn), "unicode") == 0)
            ret = pystr_read(rt->mem, &sl, obj, PYSTR_UNICODE, rt->unicode27_width, out);
        else
            ret = -EINVAL;
    }
    sb_release(&tn);
    return ret < 0 ? ret : 0;
}

void pythread_names_free(struct pythread_name *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

int pyobj_small_int(struct pyrt *rt, uint64_t obj, int64_t *value)
{
    const struct pylayout *l = &rt->layout;
    unsigned char b[64];
    int ret;
    /* A PyLongObject: its size, then two 30-bit digits (a 2.7 int is a PyIntObject). */
    if (l->int27_ival >= 0 || l->long_size < 0 || l->long_digit < 0 ||
        (size_t)l->long_size + 8 > sizeof(b) || (size_t)l->long_digit + 8 > sizeof(b))
        return -EINVAL;
    if (!pyrt_type_is(rt, obj, "int"))
        return -EINVAL;
    size_t len = (size_t)MAX(l->long_size, l->long_digit) + 8;
    if ((ret = mem_read(rt->mem, obj, b, len)) < 0)
        return ret;
    /* ob_size (the signed digit count) before 3.12, then lv_tag: the digit
     * count << 3 with the sign in the low bits (0 positive, 1 zero, 2 negative). */
    int64_t size;
    memcpy(&size, b + l->long_size, 8);
    int negative = 0;
    if (l->long_tagged) {
        uint64_t tag = (uint64_t)size;
        negative = (tag & 3) == 2;
        size = (tag & 3) == 1 ? 0 : (int64_t)(tag >> 3);
    } else if (size < 0) {
        negative = 1;
        size = -size;
    }
    if (size > 2)
        return -ERANGE;
    uint32_t d0, d1;
    memcpy(&d0, b + l->long_digit, 4);
    memcpy(&d1, b + l->long_digit + 4, 4);
    if ((d0 >> 30) || (size > 1 && (d1 >> 30)))
        return -EINVAL;
    int64_t v = size == 0 ? 0 : (int64_t)d0 + (size > 1 ? (int64_t)d1 << 30 : 0);
    *value = negative ? -v : v;
    return 0;
}

int pythread_names(struct pyrt *rt, uint64_t interp, const uint64_t *idents, size_t nidents,
                   struct pythread_name **out, size_t *n)
{
    const struct pylayout *l = &rt->layout;
    uint64_t modules, threading, mdict, active;
    struct pydict_entry *v = NULL;
    size_t count = 0;
    int ret;
    *out = NULL;
    *n = 0;
    if ((ret = mem_read_u64(rt->mem, interp + (uint64_t)l->is_modules, &modules)) < 0)
        return ret;
    if (!modules)
        return 0;
    ret = pydict_get_str(rt, modules, "threading", &threading);
    if (ret == -ENOENT)
        return 0;
    if (ret < 0 || (ret = mem_read_u64(rt->mem, threading + (uint64_t)l->md_dict, &mdict)) < 0 ||
        (ret = pydict_get_str(rt, mdict, "_active", &active)) < 0 ||
        (ret = pydict_entries(rt, active, &v, &count)) < 0)
        return ret == -ENOENT ? 0 : ret;
    struct pythread_name *names = xcalloc(count + 1, sizeof(*names));
    size_t k = 0;
    const char *attr = l->thread_name_attr, *native_attr = l->thread_native_id_attr;
    for (size_t i = 0; i < count && i < 4096; i++) {
        uint64_t name_obj;
        struct strbuf sb = STRBUF_INIT;
        /* Keys are the idents (ints): an int's hash is its value below 2**61-1. */
        if (idents) {
            size_t j = 0;
            while (j < nidents && idents[j] != v[i].hash)
                j++;
            if (j == nidents)
                continue;
        }
        if (pyobj_getattr(rt, v[i].value, attr, &name_obj) == 0 &&
            pyobj_str(rt, name_obj, &sb) == 0) {
            uint64_t nid_obj;
            int64_t nid;
            names[k].ident = v[i].hash;
            names[k].name = sb_detach(&sb);
            /* 3.8+: the thread's own idea of its Linux id tells a reused ident apart. */
            if (native_attr && pyobj_getattr(rt, v[i].value, native_attr, &nid_obj) == 0 &&
                pyobj_small_int(rt, nid_obj, &nid) == 0 && nid > 0 && nid <= INT32_MAX)
                names[k].native_id = (pid_t)nid;
            k++;
        }
        sb_release(&sb);
    }
    free(v);
    *out = names;
    *n = k;
    return 0;
}
