/* Small helpers shared by every module: allocation that cannot return NULL,
 * a growable string buffer, error messages, clocks and hashing. */
#ifndef PYSTROBE_UTIL_H
#define PYSTROBE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* Allocation failures end the program with "pystrobe: out of memory". */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Grows *v (holding *cap elements of size elem) to hold at least need. */
void grow_array(void **v, size_t *cap, size_t need, size_t elem);
#define GROW(v, cap, need) grow_array((void **)&(v), &(cap), (need), sizeof(*(v)))

/*
 * A growable, always NUL-terminated byte string (git's strbuf, reduced).
 * STRBUF_INIT is an empty buffer that owns nothing; sb_release frees it.
 */
struct strbuf {
    char *buf;
    size_t len;
    size_t cap;
};
#define STRBUF_INIT { NULL, 0, 0 }
void sb_grow(struct strbuf *sb, size_t extra);
void sb_add(struct strbuf *sb, const void *data, size_t len);
void sb_adds(struct strbuf *sb, const char *s);
void sb_addc(struct strbuf *sb, char c);
void sb_addf(struct strbuf *sb, const char *fmt, ...) PRINTF_LIKE(2, 3);
void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
void sb_reset(struct strbuf *sb);
/* The buffer's text; "" for a buffer that never held anything. */
const char *sb_str(const struct strbuf *sb);
/* Hands the heap string to the caller (who frees it) and empties sb. */
char *sb_detach(struct strbuf *sb);
void sb_release(struct strbuf *sb);

/*
 * An error: an errno code (positive, as in errno) and a one-line message
 * saying what failed and what to do.  Modules fill it and return -code; only
 * the command layer prints it.
 */
struct pserr {
    int code;
    char msg[512];
};
/* Sets the message (if e is not NULL) and returns -code, for "return pserr_set(...)". */
int pserr_set(struct pserr *e, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* CLOCK_MONOTONIC and CLOCK_REALTIME in nanoseconds; process CPU time in ns. */
uint64_t now_ns(void);
uint64_t wall_ns(void);
uint64_t cpu_ns(void);

/* The 8 bytes at buf + off, in host order (a field of bytes read from a target). */
static inline uint64_t buf_u64(const unsigned char *buf, int off)
{
    uint64_t v;
    memcpy(&v, buf + off, sizeof(v));
    return v;
}

/* 64-bit hashes for hash tables (not for security). */
uint64_t hash_bytes(const void *p, size_t n, uint64_t seed);
static inline uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Appends code point cp as UTF-8 (invalid ones as U+FFFD). */
void utf8_put(struct strbuf *sb, uint32_t cp);
/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not valid. */
size_t utf8_valid_len(const unsigned char *s, size_t n);
/* Appends s[0..n) with each byte that is not valid UTF-8 replaced by U+FFFD; returns how many were. */
size_t sb_add_utf8(struct strbuf *sb, const char *s, size_t n);

/*
 * 1 for a code point that would move the cursor or change how the rest of
 * a line shows on a terminal: C0 and C1 controls, DEL, line and paragraph
 * separators, and the bidi marks, embeddings, overrides and isolates
 * (U+061C, U+200E/F, U+202A-E, U+2066-9).
 */
int text_unsafe(uint32_t cp);
/*
 * The character at s (n > 0 bytes) for text shown to people: its length,
 * and in *cp its code point, or '?' for a character text_unsafe refuses, or
 * U+FFFD for a byte that is not UTF-8 (its length 1).
 */
size_t text_char(const char *s, size_t n, uint32_t *cp);
/* Appends s[0..n) with every character text_char turns into '?' so replaced. */
void sb_add_clean(struct strbuf *sb, const char *s, size_t n);

/* The last component of a path ("libpython3.12.so" of "/usr/lib/libpython3.12.so"). */
const char *path_base(const char *path);

struct stat;
/*
 * Opens path read-only if it is a regular file, and opens nothing else: the
 * name is resolved once without opening what it names (O_PATH), that file
 * is checked (fstat into *st), and only a regular one is reopened through
 * its descriptor, so a device, FIFO or socket put under the name is never
 * opened (no blocking open, no device side effects).  Returns the
 * descriptor, or a negative errno: -EINVAL when the file is not regular
 * (st->st_mode says what it is; see file_kind).
 */
int open_regular(const char *path, struct stat *st);
/*
 * open_regular for path as seen from the directory root (a target's
 * /proc/PID/root, a copy of its file system): every symbolic link and ".."
 * on the way resolves inside root, as it would for the target, never to the
 * files around root (openat2's RESOLVE_IN_ROOT; /proc's magic links are
 * refused).  -ENOSYS on a kernel before 5.6.
 */
int open_regular_in(const char *root, const char *path, struct stat *st);
/* What a file of this st_mode is, for messages: "a FIFO", "a directory"... */
const char *file_kind(unsigned mode);

/* Parses a whole decimal string into *out; -1 on junk or overflow. */
int parse_long(const char *s, long *out);
/* Parses a decimal number of seconds with an optional fraction ("2", "0.5"). */
int parse_seconds(const char *s, double *out);

#include "banned.h"
#endif
