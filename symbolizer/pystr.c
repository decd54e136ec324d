#include "symbolizer/pystr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* PEP 393 state bits. */
#define STATE_KIND(s) (((s) >> 2) & 7u)
#define STATE_COMPACT(s) (((s) >> 5) & 1u)
#define STATE_ASCII(s) (((s) >> 6) & 1u)

void pystr_decode_ucs(const unsigned char *data, size_t count, int width, struct strbuf *out)
{
    sb_grow(out, count);
    for (size_t i = 0; i < count; i++) {
        uint32_t cp;
        if (width == 1) {
            cp = data[i];
        } else if (width == 2) {
            uint16_t u;
            memcpy(&u, data + 2 * i, 2);
            cp = u;
        } else {
            memcpy(&cp, data + 4 * i, 4);
        }
        if (cp < 0x80)
            sb_addc(out, (char)cp);
        else
            utf8_put(out, cp); /* surrogates and out-of-range become U+FFFD */
    }
}

void pystr_decode_utf8(const unsigned char *data, size_t len, struct strbuf *out)
{
    size_t i = 0;
    sb_grow(out, len);
    while (i < len) {
        size_t n = utf8_valid_len(data + i, len - i);
        if (n == 0) {
            utf8_put(out, 0xFFFD);
            i++;
        } else {
            sb_add(out, data + i, n);
            i += n;
        }
    }
}

/*
 * A 2.7 narrow build's unicode is UTF-16: a high surrogate followed by a low
 * one is a single character outside the BMP.  (A 3.x string never holds
 * pairs: its surrogates are lone code points.)
 */
static void decode_utf16(const unsigned char *data, size_t count, struct strbuf *out)
{
    for (size_t i = 0; i < count; i++) {
        uint16_t hi, lo;
        memcpy(&hi, data + 2 * i, 2);
        if (hi >= 0xD800 && hi <= 0xDBFF && i + 1 < count) {
            memcpy(&lo, data + 2 * i + 2, 2);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                utf8_put(out, 0x10000 + (((uint32_t)hi - 0xD800) << 10) + (lo - 0xDC00));
                i++;
                continue;
            }
        }
        utf8_put(out, hi); /* lone surrogates become U+FFFD */
    }
}

enum units { UNITS_UCS, UNITS_UTF8, UNITS_UTF16 };

/* Reads count units of width bytes at addr and decodes them. */
static int read_units(struct mem *m, uint64_t addr, size_t count, int width, enum units how,
                      struct strbuf *out)
{
    unsigned char stack[1024];
    size_t bytes = count * (size_t)width;
    unsigned char *buf = bytes <= sizeof(stack) ? stack : xmalloc(bytes);
    int ret = mem_read(m, addr, buf, bytes);
    if (ret == 0) {
        if (how == UNITS_UTF8)
            pystr_decode_utf8(buf, bytes, out);
        else if (how == UNITS_UTF16)
            decode_utf16(buf, count, out);
        else
            pystr_decode_ucs(buf, count, width, out);
    }
    if (buf != stack)
        free(buf);
    return ret;
}

static int read_bytes27(struct mem *m, const struct pystr_layout *l, uint64_t addr,
                        struct strbuf *out)
{
    int64_t size;
    int ret = mem_read(m, addr + (uint64_t)l->bytes_size, &size, 8);
    if (ret < 0)
        return ret;
    if (size < 0 || size > (1 << 24))
        return -EINVAL;
    size_t n = (size_t)MIN(size, (int64_t)PYSTR_MAX_CHARS);
    ret = read_units(m, addr + (uint64_t)l->bytes_sval, n, 1, UNITS_UTF8, out);
    return ret < 0 ? ret : n < (size_t)size;
}

static int read_unicode27(struct mem *m, const struct pystr_layout *l, uint64_t addr, int width,
                          struct strbuf *out)
{
    int64_t length;
    uint64_t data;
    int ret;
    if ((ret = mem_read(m, addr + (uint64_t)l->uni_length, &length, 8)) < 0 ||
        (ret = mem_read_u64(m, addr + (uint64_t)l->uni27_str, &data)) < 0)
        return ret;
    if (length < 0 || length > (1 << 24) || (width != 2 && width != 4))
        return -EINVAL;
    size_t n = (size_t)MIN(length, (int64_t)PYSTR_MAX_CHARS);
    ret = read_units(m, data, n, width, width == 2 ? UNITS_UTF16 : UNITS_UCS, out);
    return ret < 0 ? ret : n < (size_t)length;
}

static int read_unicode3(struct mem *m, const struct pystr_layout *l, uint64_t addr,
                         struct strbuf *out)
{
    unsigned char hdr[128];
    size_t hdrlen = (size_t)l->uni_ascii_size;
    /* length and state are PyASCIIObject fields: they must lie in the bytes
     * read (a 3.13+ layout takes both offsets from the target). */
    if (hdrlen > sizeof(hdr) || l->uni_state < 0 || l->uni_length < 0 ||
        (size_t)l->uni_state + 4 > hdrlen || (size_t)l->uni_length + 8 > hdrlen)
        return -EINVAL;
    int ret = mem_read(m, addr, hdr, hdrlen);
    if (ret < 0)
        return ret;
    int64_t length;
    uint32_t state;
    memcpy(&length, hdr + l->uni_length, 8);
    memcpy(&state, hdr + l->uni_state, 4);
    unsigned kind = STATE_KIND(state);
    if (length < 0 || length > (1 << 28) || (kind != 1 && kind != 2 && kind != 4) ||
        (STATE_ASCII(state) && (kind != 1 || !STATE_COMPACT(state))))
        return -EINVAL;
    size_t n = (size_t)MIN(length, (int64_t)PYSTR_MAX_CHARS);
    uint64_t data;
    if (STATE_COMPACT(state)) {
        data = addr + (uint64_t)(STATE_ASCII(state) ? l->uni_ascii_size : l->uni_compact_size);
    } else {
        /* Legacy string: the characters live in a separate block. */
        if ((ret = mem_read_u64(m, addr + (uint64_t)l->uni_data_any, &data)) < 0)
            return ret;
        if (!data)
            return -EINVAL;
    }
    ret = read_units(m, data, n, (int)kind, UNITS_UCS, out);
    return ret < 0 ? ret : n < (size_t)length;
}

int pystr_read(struct mem *m, const struct pystr_layout *l, uint64_t addr,
               enum pystr_type type, int unicode27_width, struct strbuf *out)
{
    if (!addr)
        return -EINVAL;
    if (l->bytes27)
        return type == PYSTR_BYTES27 ? read_bytes27(m, l, addr, out)
                                     : read_unicode27(m, l, addr, unicode27_width, out);
    if (type != PYSTR_UNICODE)
        return -EINVAL;
    return read_unicode3(m, l, addr, out);
}
