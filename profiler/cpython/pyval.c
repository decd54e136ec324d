/*
 * Rendering the target's values as short, safe text (see pyval.h): ints of
 * any size, floats as repr() prints them, strings quoted and cut,
 * containers' first items, nested a little.  The reads and the types are
 * pyval_read.c's.
 */
#include "profiler/cpython/pyval.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/cpython/pyobj.h"
#include "profiler/cpython/pyval_impl.h"

/* Entry slots of a dict or set looked at for its first items. */
#define SLOTS_MAX 64

struct pyval *pyval_new(struct pyrt *rt)
{
    struct pyval *pv = xcalloc(1, sizeof(*pv));
    pv->rt = rt;
    pv->l = &rt->layout;
    pv->m = rt->mem;
    pv->pre = xmalloc(PYVAL_PRE_MAX * sizeof(*pv->pre));
    return pv;
}

void pyval_free(struct pyval *pv)
{
    if (!pv)
        return;
    free(pv->pre);
    free(pv->types);
    free(pv);
}

static int can_read(const struct pyval *pv)
{
    return pyval_can_read_n(pv, 1);
}

/* ---- scalars -------------------------------------------------------------- */

/* Takes out back to len bytes. */
static void cut_back(struct strbuf *out, size_t len)
{
    if (out->buf && len < out->len) {
        out->len = len;
        out->buf[len] = 0;
    }
}

static int bit_length(uint32_t v)
{
    int n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
}

/*
 * Appends the decimal form of the magnitude in 30-bit digits d[0..nd)
 * (least significant first), or returns -ERANGE when it has more than
 * PYVAL_MAX_DIGITS digits.
 */
static int digits_decimal(const uint32_t *d, size_t nd, struct strbuf *out)
{
    uint32_t a[8];
    uint32_t chunks[16];
    size_t nc = 0;
    if (nd > ARRAY_SIZE(a))
        return -ERANGE;
    memcpy(a, d, nd * sizeof(*a));
    while (nd > 0 && nc < ARRAY_SIZE(chunks)) {
        uint64_t rem = 0;
        for (size_t i = nd; i-- > 0;) {
            uint64_t cur = rem << 30 | a[i];
            a[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        chunks[nc++] = (uint32_t)rem;
        while (nd > 0 && a[nd - 1] == 0)
            nd--;
    }
    char buf[160];
    int len = snprintf(buf, sizeof(buf), "%" PRIu32, chunks[nc - 1]);
    for (size_t i = nc - 1; i-- > 0 && len > 0 && (size_t)len < sizeof(buf) - 10;)
        len += snprintf(buf + len, sizeof(buf) - (size_t)len, "%09" PRIu32, chunks[i]);
    if (len <= 0 || len > PYVAL_MAX_DIGITS)
        return -ERANGE;
    sb_add(out, buf, (size_t)len);
    return 0;
}

/* A 3.x int, or a 2.7 long (suffix "L"): 30-bit digits. */
static int render_long(struct pyval *pv, const struct objhdr *h, const char *suffix,
                       struct strbuf *out)
{
    const struct pylayout *l = pv->l;
    int64_t size;
    int negative;
    uint64_t nd;
    if (pyval_field_i64(pv, h, l->long_size, &size) < 0)
        return -EFAULT;
    if (l->long_tagged) {
        /* lv_tag: digit count << 3, sign in the low bits (0 positive, 1 zero, 2 negative). */
        uint64_t tag = (uint64_t)size;
        if ((tag & 3) == 3 || ((tag & 3) == 1 && (tag >> 3) != 0))
            return -EINVAL;
        negative = (tag & 3) == 2;
        nd = tag >> 3;
    } else {
        negative = size < 0;
        nd = size < 0 ? (uint64_t)0 - (uint64_t)size : (uint64_t)size;
    }
    if (nd == 0) {
        sb_adds(out, "0");
        sb_adds(out, suffix);
        return 0;
    }
    if (nd > (1u << 28))
        return -EINVAL;
    uint64_t digits = h->addr + (uint64_t)l->long_digit;
    uint32_t d[8];
    if (nd <= ARRAY_SIZE(d)) {
        if (pyval_bytes_at(pv, h, digits, d, nd * 4) < 0)
            return -EFAULT;
        for (size_t i = 0; i < nd; i++)
            if (d[i] >> 30)
                return -EINVAL;
        if (d[nd - 1] == 0)
            return -EINVAL;
        size_t mark = out->len;
        if (negative)
            sb_addc(out, '-');
        if (digits_decimal(d, nd, out) == 0) {
            sb_adds(out, suffix);
            return 0;
        }
        cut_back(out, mark);
    } else if (pyval_bytes_at(pv, h, digits + 4 * (nd - 1), d, 4) < 0) {
        return -EFAULT;
    } else if (d[0] == 0 || (d[0] >> 30)) {
        return -EINVAL;
    }
    uint32_t top = nd <= ARRAY_SIZE(d) ? d[nd - 1] : d[0];
    sb_addf(out, "<%sint of %" PRIu64 " bits>", negative ? "negative " : "",
            (nd - 1) * 30 + (uint64_t)bit_length(top));
    return 0;
}

static int render_int27(struct pyval *pv, const struct objhdr *h, struct strbuf *out)
{
    int64_t v;
    if (pyval_field_i64(pv, h, pv->l->int27_ival, &v) < 0)
        return -EFAULT;
    sb_addf(out, "%" PRId64, v);
    return 0;
}

/* True or False from an int's value, when the singletons' addresses are unknown. */
static int render_bool(struct pyval *pv, const struct objhdr *h, struct strbuf *out)
{
    int64_t v;
    int ret;
    if (pyval_int27(pv)) {
        ret = pyval_field_i64(pv, h, pv->l->int27_ival, &v);
    } else {
        uint32_t d;
        ret = pyval_field(pv, h, pv->l->long_digit, &d, 4);
        v = d;
        if (ret == 0 && !pv->l->long_tagged && pyval_field_i64(pv, h, pv->l->long_size, &v) == 0)
            v = v ? d : 0;
    }
    if (ret < 0)
        return -EFAULT;
    sb_adds(out, v ? "True" : "False");
    return 0;
}

void pyval_float_repr(double v, struct strbuf *out)
{
    if (isnan(v)) {
        sb_adds(out, "nan");
        return;
    }
    if (isinf(v)) {
        sb_adds(out, v < 0 ? "-inf" : "inf");
        return;
    }
    /* The fewest significant digits that read back as v, from %e. */
    char buf[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    char digits[24];
    size_t nd = 0;
    const char *p = buf;
    int negative = *p == '-';
    p += negative;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < sizeof(digits) - 1)
            digits[nd++] = *p;
    int exp10 = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    /* repr: the point after decpt digits; exponent form outside -4 < decpt <= 16. */
    int decpt = exp10 + 1;
    if (negative)
        sb_addc(out, '-');
    if (decpt <= -4 || decpt > 16) {
        sb_addc(out, digits[0]);
        if (nd > 1) {
            sb_addc(out, '.');
            sb_adds(out, digits + 1);
        }
        sb_addf(out, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (decpt <= 0) {
        sb_adds(out, "0.");
        for (int i = decpt; i < 0; i++)
            sb_addc(out, '0');
        sb_adds(out, digits);
    } else {
        for (int i = 0; i < decpt; i++)
            sb_addc(out, (size_t)i < nd ? digits[i] : '0');
        sb_addc(out, '.');
        sb_adds(out, (size_t)decpt < nd ? digits + decpt : "0");
    }
}

static int render_float(struct pyval *pv, const struct objhdr *h, struct strbuf *out)
{
    double v;
    if (pyval_field(pv, h, pv->l->float_fval, &v, 8) < 0)
        return -EFAULT;
    pyval_float_repr(v, out);
    return 0;
}

/* ---- strings -------------------------------------------------------------- */

/*
 * The first max characters (or bytes) of a str, 2.7 unicode or bytes object
 * into cps[], their number in *n and the object's whole length in *total.
 */
int pyval_str_units(struct pyval *pv, const struct objhdr *h, enum vkind kind, uint32_t *cps,
                    size_t max, size_t *n, int64_t *total)
{
    const struct pylayout *l = pv->l;
    int64_t len;
    uint64_t data;
    int width = 1;
    if (kind == VK_BYTES) {
        if (pyval_field_i64(pv, h, l->bytes_size, &len) < 0)
            return -EFAULT;
        data = h->addr + (uint64_t)l->bytes_sval;
    } else if (kind == VK_UNICODE27) {
        if (pyval_field_i64(pv, h, l->uni_length, &len) < 0 ||
            pyval_field_u64(pv, h, l->uni27_str, &data) < 0)
            return -EFAULT;
        width = pv->rt->unicode27_width;
    } else {
        uint32_t state;
        if (pyval_field_i64(pv, h, l->uni_length, &len) < 0 ||
            pyval_field(pv, h, l->uni_state, &state, 4) < 0)
            return -EFAULT;
        width = (int)((state >> 2) & 7);
        int compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
        if ((width != 1 && width != 2 && width != 4) || (ascii && (width != 1 || !compact)))
            return -EINVAL;
        if (compact)
            data = h->addr + (uint64_t)(ascii ? l->uni_ascii_size : l->uni_compact_size);
        else if (pyval_field_u64(pv, h, l->uni_data_any, &data) < 0)
            return -EFAULT;
    }
    if (len < 0 || len > ((int64_t)1 << 40))
        return -EINVAL;
    size_t k = (size_t)MIN((uint64_t)len, (uint64_t)max);
    unsigned char *buf = xmalloc(k * (size_t)width + 1);
    int ret = k ? pyval_bytes_at(pv, h, data, buf, k * (size_t)width) : 0;
    if (ret == 0) {
        for (size_t i = 0; i < k; i++) {
            const unsigned char *u = buf + i * (size_t)width;
            cps[i] = width == 1 ? u[0] : width == 2 ? (uint32_t)(u[0] | u[1] << 8)
                                                    : (uint32_t)(u[0] | u[1] << 8 | u[2] << 16 |
                                                                 (uint32_t)u[3] << 24);
        }
        *n = k;
        *total = len;
    }
    free(buf);
    return ret < 0 ? -EFAULT : 0;
}

/* Python 3 prints these as escapes in a str's repr (a close approximation of
 * "not printable": controls, separators, format characters, surrogates,
 * private use). */
static int unprintable(uint32_t c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
           (c >= 0x205f && c <= 0x206f) || c == 0x3000 || (c >= 0xd800 && c <= 0xf8ff) ||
           c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb) || c == 0xfffe || c == 0xffff ||
           c >= 0xf0000;
}

/*
 * Appends cps[0..n) as Python's repr would quote them.  bytes: every unit is
 * a byte; ascii_only: 2.7 unicode, which escapes everything past ASCII.
 */
static void quote(const uint32_t *cps, size_t n, int bytes, int ascii_only, struct strbuf *out)
{
    int has_single = 0, has_double = 0;
    for (size_t i = 0; i < n; i++) {
        has_single |= cps[i] == '\'';
        has_double |= cps[i] == '"';
    }
    char q = has_single && !has_double ? '"' : '\'';
    sb_addc(out, q);
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        if (c == (uint32_t)q || c == '\\')
            sb_addf(out, "\\%c", (char)c);
        else if (c == '\t')
            sb_adds(out, "\\t");
        else if (c == '\n')
            sb_adds(out, "\\n");
        else if (c == '\r')
            sb_adds(out, "\\r");
        else if (c >= 0x20 && c < 0x7f)
            sb_addc(out, (char)c);
        else if (c < 0x100 && (bytes || ascii_only || unprintable(c)))
            sb_addf(out, "\\x%02x", c);
        else if (c < 0x10000 && (ascii_only || unprintable(c)))
            sb_addf(out, "\\u%04x", c);
        else if (ascii_only || unprintable(c))
            sb_addf(out, "\\U%08x", c);
        else
            utf8_put(out, c);
    }
    sb_addc(out, q);
}

/* Appends " (TYPE, N UNITS)" for a cut value, " (TYPE)" for a subclass's. */
static void suffix(const struct vtype *t, int cut, uint64_t count, const char *unit,
                   struct strbuf *out)
{
    if (cut)
        sb_addf(out, " (%s, %" PRIu64 " %s)", t->name, count, unit);
    else if (!t->exact)
        sb_addf(out, " (%s)", t->name);
}

static int render_str(struct pyval *pv, const struct objhdr *h, const struct vtype *t,
                      struct strbuf *out)
{
    uint32_t cps[PYVAL_MAX_CHARS];
    size_t n;
    int64_t total;
    int ret = pyval_str_units(pv, h, t->kind, cps, PYVAL_MAX_CHARS, &n, &total);
    if (ret < 0)
        return ret;
    if (t->kind == VK_UNICODE27)
        sb_addc(out, 'u');
    else if (t->kind == VK_BYTES && !pyval_bytes27(pv))
        sb_addc(out, 'b');
    quote(cps, n, t->kind == VK_BYTES, t->kind == VK_UNICODE27, out);
    if ((uint64_t)total > n)
        sb_adds(out, "...");
    suffix(t, (uint64_t)total > n, (uint64_t)total,
           t->kind == VK_BYTES ? "bytes" : "chars", out);
    return 0;
}

/* ---- containers ----------------------------------------------------------- */

/*
 * Renders items[0..n) separated by ", " (dict: key-value pairs when vals is
 * not NULL).  Returns how many were rendered before the reads ran out.
 */
static size_t render_items(struct pyval *pv, const uint64_t *items, const uint64_t *vals,
                           size_t n, int depth, struct strbuf *out)
{
    uint64_t all[2 * PYVAL_MAX_ITEMS] = {0};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        all[k++] = items[i];
        if (vals)
            all[k++] = vals[i];
    }
    pyval_prefetch(pv, all, k);
    for (size_t i = 0; i < n; i++) {
        if (!can_read(pv) && (!pyval_pre_find(pv, items[i]) || (vals && !pyval_pre_find(pv, vals[i]))))
            return i;
        if (i)
            sb_adds(out, ", ");
        pyval_render_depth(pv, items[i], depth + 1, out);
        if (vals) {
            sb_adds(out, ": ");
            pyval_render_depth(pv, vals[i], depth + 1, out);
        }
    }
    return n;
}

/* Tuples and lists. */
static int render_seq(struct pyval *pv, const struct objhdr *h, const struct vtype *t, int depth,
                      struct strbuf *out)
{
    const struct pylayout *l = pv->l;
    int tuple = t->kind == VK_TUPLE;
    int64_t size;
    uint64_t items[PYVAL_MAX_ITEMS];
    if (pyval_field_i64(pv, h, 16, &size) < 0)
        return -EFAULT;
    if (size < 0 || size > ((int64_t)1 << 40))
        return -EINVAL;
    size_t n = (size_t)MIN(size, PYVAL_MAX_ITEMS);
    if (depth >= PYVAL_MAX_DEPTH && size > 0) {
        sb_adds(out, tuple ? "(...)" : "[...]");
        return 0;
    }
    if (n) {
        uint64_t at = h->addr + (uint64_t)(tuple ? l->tuple_item : l->list_item);
        if (!tuple && pyval_field_u64(pv, h, l->list_item, &at) < 0)
            return -EFAULT;
        if (pyval_bytes_at(pv, h, at, items, n * 8) < 0)
            return -EFAULT;
    }
    sb_addc(out, tuple ? '(' : '[');
    size_t shown = render_items(pv, items, NULL, n, depth, out);
    if (shown < (size_t)size)
        sb_adds(out, shown ? ", ..." : "...");
    else if (tuple && size == 1)
        sb_addc(out, ',');
    sb_addc(out, tuple ? ')' : ']');
    suffix(t, shown < (size_t)size, (uint64_t)size, "items", out);
    return 0;
}

static int render_dict(struct pyval *pv, const struct objhdr *h, const struct vtype *t, int depth,
                       struct strbuf *out)
{
    int64_t used;
    if (pyval_field_i64(pv, h, pv->l->ma_used, &used) < 0)
        return -EFAULT;
    if (used < 0 || used > ((int64_t)1 << 40))
        return -EINVAL;
    uint64_t keys[PYVAL_MAX_ITEMS], vals[PYVAL_MAX_ITEMS];
    size_t n = 0;
    if (used > 0 && depth >= PYVAL_MAX_DEPTH) {
        sb_adds(out, "{...}");
        return 0;
    }
    /* pydict_entries_max reads up to five times (the dict, its keys and values). */
    if (used > 0 && pyval_can_read_n(pv, 5)) {
        struct pydict_entry *e;
        size_t ne;
        int ret = pydict_entries_max(pv->rt, h->addr, SLOTS_MAX, &e, &ne);
        if (ret == -EFAULT)
            return ret;
        for (size_t i = 0; ret == 0 && i < ne && n < PYVAL_MAX_ITEMS; i++, n++) {
            keys[n] = e[i].key;
            vals[n] = e[i].value;
        }
        if (ret == 0)
            free(e);
    }
    sb_addc(out, '{');
    size_t shown = render_items(pv, keys, vals, n, depth, out);
    if (shown < (size_t)used)
        sb_adds(out, shown ? ", ..." : "...");
    sb_addc(out, '}');
    suffix(t, shown < (size_t)used, (uint64_t)used, "items", out);
    return 0;
}

/* 2.7's deleted set entries hold a str "<dummy key>" (not exported). */
static int is_dummy27(struct pyval *pv, uint64_t key)
{
    static const char dummy[] = "<dummy key>";
    const struct pylayout *l = pv->l;
    const struct objhdr *h = pyval_pre_find(pv, key);
    int64_t len;
    if (!h || (size_t)l->bytes_sval + sizeof(dummy) > h->len)
        return 0;
    memcpy(&len, h->b + l->bytes_size, 8);
    return len == (int64_t)sizeof(dummy) - 1 &&
           memcmp(h->b + l->bytes_sval, dummy, sizeof(dummy) - 1) == 0;
}

/* The first live keys of a set's table (at most PYVAL_MAX_ITEMS, among SLOTS_MAX slots). */
static int set_keys(struct pyval *pv, const struct objhdr *h, uint64_t *keys, size_t *n)
{
    const struct pylayout *l = pv->l;
    int64_t mask;
    uint64_t table;
    unsigned char raw[SLOTS_MAX * 16];
    if (pyval_field_i64(pv, h, l->set_mask, &mask) < 0 ||
        pyval_field_u64(pv, h, l->set_table, &table) < 0)
        return -EFAULT;
    if (mask < 0 || mask >= ((int64_t)1 << 40) || ((mask + 1) & mask) || l->setentry_size != 16)
        return -EINVAL;
    size_t slots = (size_t)MIN(mask + 1, SLOTS_MAX);
    if (pyval_bytes_at(pv, h, table, raw, slots * 16) < 0)
        return -EFAULT;
    uint64_t cand[SLOTS_MAX];
    size_t k = 0;
    for (size_t i = 0; i < slots; i++) {
        uint64_t key;
        int64_t hash;
        memcpy(&key, raw + i * 16 + l->setentry_key, 8);
        memcpy(&hash, raw + i * 16 + l->setentry_hash, 8);
        if (key && key != pv->rt->known[PYK_SET_DUMMY] &&
            !(l->set_dummy == SET_DUMMY_HASH && hash == -1))
            cand[k++] = key;
    }
    *n = 0;
    int dummy27 = l->set_dummy == SET_DUMMY_STR27;
    if (dummy27)
        pyval_prefetch(pv, cand, k);
    for (size_t i = 0; i < k && *n < PYVAL_MAX_ITEMS; i++)
        if (!dummy27 || !is_dummy27(pv, cand[i]))
            keys[(*n)++] = cand[i];
    return 0;
}

static int render_set(struct pyval *pv, const struct objhdr *h, const struct vtype *t, int depth,
                      struct strbuf *out)
{
    int call = pv->l->set_repr_call, frozen = t->kind == VK_FROZENSET;
    const char *name = frozen ? "frozenset" : "set";
    int64_t used;
    uint64_t keys[PYVAL_MAX_ITEMS];
    size_t n = 0;
    if (pyval_field_i64(pv, h, pv->l->set_used, &used) < 0)
        return -EFAULT;
    if (used < 0 || used > ((int64_t)1 << 40))
        return -EINVAL;
    if (used == 0) {
        sb_addf(out, "%s()", name);
        suffix(t, 0, 0, "", out);
        return 0;
    }
    if (depth >= PYVAL_MAX_DEPTH) {
        sb_addf(out, call ? "%s([...])" : frozen ? "%s({...})" : "{...}", name);
        return 0;
    }
    int ret = set_keys(pv, h, keys, &n);
    if (ret == -EFAULT || ret == -EINVAL)
        return ret;
    if (call || frozen)
        sb_addf(out, "%s(", name);
    sb_addc(out, call ? '[' : '{');
    size_t shown = render_items(pv, keys, NULL, n, depth, out);
    if (shown < (size_t)used)
        sb_adds(out, shown ? ", ..." : "...");
    sb_addc(out, call ? ']' : '}');
    if (call || frozen)
        sb_addc(out, ')');
    suffix(t, shown < (size_t)used, (uint64_t)used, "items", out);
    return 0;
}

/* ---- values --------------------------------------------------------------- */

static int render_kind(struct pyval *pv, const struct objhdr *h, const struct vtype *t, int depth,
                       struct strbuf *out)
{
    int ret;
    switch (t->kind) {
    case VK_NONE:
        sb_adds(out, "None");
        return 0;
    case VK_BOOL:
        return render_bool(pv, h, out);
    case VK_INT:
    case VK_LONG27:
        ret = render_long(pv, h, t->kind == VK_LONG27 ? "L" : "", out);
        break;
    case VK_INT27:
        ret = render_int27(pv, h, out);
        break;
    case VK_FLOAT:
        ret = render_float(pv, h, out);
        break;
    case VK_STR:
    case VK_UNICODE27:
    case VK_BYTES:
        return render_str(pv, h, t, out);
    case VK_TUPLE:
    case VK_LIST:
        return render_seq(pv, h, t, depth, out);
    case VK_DICT:
        return render_dict(pv, h, t, depth, out);
    case VK_SET:
    case VK_FROZENSET:
        return render_set(pv, h, t, depth, out);
    default:
        return -ENOENT;
    }
    if (ret == 0)
        suffix(t, 0, 0, "", out);
    return ret;
}

void pyval_render_depth(struct pyval *pv, uint64_t obj, int depth, struct strbuf *out)
{
    const uint64_t *k = pv->rt->known;
    struct objhdr h;
    if (!obj) {
        sb_adds(out, "<NULL>");
        return;
    }
    if (obj == k[PYK_NONE] || obj == k[PYK_TRUE] || obj == k[PYK_FALSE]) {
        sb_adds(out, obj == k[PYK_NONE] ? "None" : obj == k[PYK_TRUE] ? "True" : "False");
        return;
    }
    int ret = pyval_hdr(pv, obj, &h);
    if (ret == -ENOSPC) {
        sb_adds(out, "...");
        return;
    }
    struct vtype tv = ret == 0 ? pyval_type_of(pv, &h) : (struct vtype){.ok = 0};
    const struct vtype *t = &tv;
    if (!t->ok) {
        sb_addf(out, "<unreadable at 0x%" PRIx64 ">", obj);
        return;
    }
    size_t mark = out->len;
    if (render_kind(pv, &h, t, depth, out) == 0)
        return;
    cut_back(out, mark);
    /* Out of reads: a failed read says nothing about the value. */
    if (!can_read(pv)) {
        sb_adds(out, "...");
        return;
    }
    /* Anything else, or a value that makes no sense for its type. */
    sb_addf(out, "<%s at 0x%" PRIx64 ">", t->name, obj);
}

/* Starts a value's read budget. */
void pyval_value_start(struct pyval *pv)
{
    pv->value_reads = mem_read_calls(pv->m);
}

void pyval_render(struct pyval *pv, uint64_t obj, struct strbuf *out)
{
    pv->npre = 0;
    pyval_value_start(pv);
    pyval_render_depth(pv, obj, 0, out);
}
