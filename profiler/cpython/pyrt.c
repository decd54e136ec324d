#include "profiler/cpython/pyrt.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "profiler/target/proc.h"
#include "profiler/target/task.h"
#include "symbolizer/elfsym.h"

/* The scan validates at most this many distinct candidate pointers. */
#define SCAN_MAX_CANDIDATES 50000
/* ... and reads at most this many bytes of sections. */
#define SCAN_MAX_BYTES (64u << 20)
/* Bound on thread states walked while validating an interpreter. */
#define VALIDATE_MAX_THREADS 4096

static const char *const route_names[ROUTE_COUNT] = {"dynsym", "symtab", "section", "scan"};

const char *pyrt_route_name(enum pyrt_route route)
{
    return (unsigned)route < ROUTE_COUNT ? route_names[route] : "?";
}

/* The routes PYSTROBE_ROUTE allows, as a bit set (all when unset). */
static unsigned allowed_routes(void)
{
    const char *env = getenv("PYSTROBE_ROUTE");
    if (!env || !*env)
        return (1u << ROUTE_COUNT) - 1;
    unsigned set = 0;
    for (int r = 0; r < ROUTE_COUNT; r++) {
        const char *p = strstr(env, route_names[r]);
        size_t n = strlen(route_names[r]);
        if (p && (p == env || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            set |= 1u << r;
    }
    return set;
}

/* Chooses the mapping of the ELF that holds the interpreter. */
static const struct mem_region *find_binary(struct pyrt *rt, const struct mem_maps *maps)
{
    const struct mem_region *exe = NULL;
    for (size_t i = 0; i < maps->n; i++) {
        const struct mem_region *r = &maps->v[i];
        if (r->path[0] == '/' && strstr(path_base(r->path), "libpython")) {
            rt->binary_is_exe = 0;
            return r;
        }
    }
    for (size_t i = 0; i < maps->n && !exe; i++)
        if (maps->v[i].path[0] == '/' && mem_is_exe(rt->mem, maps->v[i].path))
            exe = &maps->v[i];
    rt->binary_is_exe = 1;
    return exe;
}

/* The lowest mapping of the same file (same inode) with file offset 0. */
static const struct mem_region *file_base(const struct mem_maps *maps,
                                          const struct mem_region *r)
{
    for (size_t i = 0; i < maps->n; i++) {
        const struct mem_region *m = &maps->v[i];
        if (m->inode == r->inode && m->dev_major == r->dev_major &&
            m->dev_minor == r->dev_minor && m->offset == 0 && strcmp(m->path, r->path) == 0)
            return m;
    }
    return NULL;
}

static void format_version(char *buf, size_t len, uint64_t hex)
{
    unsigned major = (hex >> 24) & 0xff, minor = (hex >> 16) & 0xff, micro = (hex >> 8) & 0xff;
    unsigned level = (hex >> 4) & 0xf, serial = hex & 0xf;
    const char *tag = level == 0xa ? "a" : level == 0xb ? "b" : level == 0xc ? "rc" : "";
    if (*tag)
        snprintf(buf, len, "%u.%u.%u%s%u", major, minor, micro, tag, serial);
    else
        snprintf(buf, len, "%u.%u.%u", major, minor, micro);
}

/* "libpython3.12.so.1.0", "python2.7", "libpython3.6m.so" -> 3, 12 */
static int version_from_name(const char *path, int *major, int *minor)
{
    const char *b = path_base(path);
    const char *p = strstr(b, "python");
    if (!p)
        return -1;
    p += 6;
    if (!isdigit((unsigned char)p[0]) || p[1] != '.' || !isdigit((unsigned char)p[2]))
        return -1;
    *major = p[0] - '0';
    *minor = (int)strtol(p + 2, NULL, 10);
    return 0;
}

/*
 * Py_GetVersion() formats "3.9.18 (main, ...)" into a static buffer in .bss
 * at start-up; finding it gives the micro version of old interpreters.
 */
static int version_from_bss(struct pyrt *rt, struct elf_file *ef, char *out, size_t outlen)
{
    struct elf_section s;
    if (elf_section(ef, ".bss", &s) < 0 || s.size == 0 || s.size > SCAN_MAX_BYTES)
        return -1;
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "%d.%d.", rt->major, rt->minor);
    size_t plen = strlen(prefix);
    char *buf = xmalloc(65536 + 64);
    int ret = -1;
    for (uint64_t off = 0; off < s.size && ret < 0; off += 65536) {
        size_t n = (size_t)MIN((uint64_t)65536 + 64, s.size - off);
        if (mem_read(rt->mem, s.addr + rt->bias + off, buf, n) < 0)
            continue;
        for (size_t i = 0; i + plen + 3 < n; i++) {
            if (memcmp(buf + i, prefix, plen) != 0 || (i > 0 && buf[i - 1] != '\0'))
                continue;
            size_t j = i + plen;
            while (j < n && j - i < 24 && (isalnum((unsigned char)buf[j]) || buf[j] == '+'))
                j++;
            if (j + 1 < n && j > i + plen && buf[j] == ' ' && buf[j + 1] == '(' &&
                j - i < outlen) {
                memcpy(out, buf + i, j - i);
                out[j - i] = '\0';
                ret = 0;
                break;
            }
        }
    }
    free(buf);
    return ret;
}

int pyrt_type_is(struct pyrt *rt, uint64_t obj, const char *name)
{
    uint64_t type, tp_name;
    char buf[32];
    size_t n = strlen(name) + 1; /* the name and its terminator: no more is read */
    return n <= sizeof(buf) && obj &&
           mem_read_u64(rt->mem, obj + (uint64_t)rt->layout.ob_type, &type) == 0 &&
           mem_read_u64(rt->mem, type + (uint64_t)rt->layout.tp_name, &tp_name) == 0 &&
           mem_read(rt->mem, tp_name, buf, n) == 0 && memcmp(buf, name, n) == 0;
}

/* 1 when the thread state's top frame leads to a code object. */
static int top_frame_ok(struct pyrt *rt, const unsigned char *ts)
{
    const struct pylayout *l = &rt->layout;
    uint64_t frame = 0, code = 0;
    if (l->frames == FRAME_OBJECTS) {
        memcpy(&frame, ts + l->ts_frame, 8);
        if (!pyrt_type_is(rt, frame, "frame"))
            return 0;
        return mem_read_u64(rt->mem, frame + (uint64_t)l->fo_code, &code) == 0 &&
               pyrt_type_is(rt, code, "code");
    }
    if (l->ts_current_frame >= 0) {
        memcpy(&frame, ts + l->ts_current_frame, 8);
    } else {
        uint64_t cframe;
        memcpy(&cframe, ts + l->ts_cframe, 8);
        if (!cframe || mem_read_u64(rt->mem, cframe + (uint64_t)l->cf_current_frame, &frame) < 0)
            return 0;
    }
    for (int i = 0; i < 16 && frame; i++) {
        unsigned char f[128];
        if (l->if_size > (int)sizeof(f) || mem_read(rt->mem, frame, f, (size_t)l->if_size) < 0)
            return 0;
        uint8_t owner = f[l->if_owner];
        memcpy(&code, f + l->if_code, 8);
        if (l->code_tagged)
            code &= ~(uint64_t)1;
        if (!layout_owner_shim(l, owner))
            return pyrt_type_is(rt, code, "code");
        memcpy(&frame, f + l->if_previous, 8);
    }
    return 0;
}

int pyrt_validate_interp(struct pyrt *rt, uint64_t interp, int need_frame)
{
    const struct pylayout *l = &rt->layout;
    unsigned char ts[512];
    uint64_t tstate, next_interp;
    if (!interp || (interp & 7) || !mem_readable(rt->mem, interp, (size_t)l->is_tstate_head + 8))
        return 0;
    if (mem_read_u64(rt->mem, interp + (uint64_t)l->is_tstate_head, &tstate) < 0 ||
        mem_read_u64(rt->mem, interp + (uint64_t)l->is_next, &next_interp) < 0)
        return 0;
    if (!tstate || (tstate & 7) || tstate == interp || (next_interp & 7))
        return 0;
    int frames_ok = 0;
    for (int n = 0; tstate && n < VALIDATE_MAX_THREADS; n++) {
        uint64_t back, tid, next;
        if ((tstate & 7) || l->ts_size > (int)sizeof(ts) ||
            mem_read(rt->mem, tstate, ts, (size_t)l->ts_size) < 0)
            return 0;
        memcpy(&back, ts + l->ts_interp, 8);
        memcpy(&tid, ts + l->ts_thread_id, 8);
        memcpy(&next, ts + l->ts_next, 8);
        if (back != interp || tid == 0 || next == tstate)
            return 0;
        if (need_frame && !frames_ok)
            frames_ok = top_frame_ok(rt, ts);
        tstate = next;
    }
    return !need_frame || frames_ok;
}

int pyrt_interp(struct pyrt *rt, uint64_t *interp)
{
    return mem_read_u64(rt->mem, rt->interp_head, interp);
}

int pyrt_gil_holder(struct pyrt *rt, uint64_t interp, uint64_t *tstate)
{
    const struct pylayout *l = &rt->layout;
    uint64_t holder = 0, gil;
    int32_t locked = 0;
    int ret = 0;
    *tstate = 0;
    switch (l->gil) {
    case GIL_TSTATE_CURRENT:
        if (!rt->tstate_current)
            return -ENOENT;
        ret = mem_read_u64(rt->mem, rt->tstate_current, &holder);
        locked = 1;
        break;
    case GIL_RUNTIME:
        if ((ret = mem_read(rt->mem, rt->runtime + (uint64_t)l->rt_gil_locked, &locked, 4)) == 0)
            ret = mem_read_u64(rt->mem, rt->runtime + (uint64_t)l->rt_gil_last_holder, &holder);
        break;
    case GIL_INTERP:
        if ((ret = mem_read_u64(rt->mem, interp + (uint64_t)l->is_ceval_gil, &gil)) == 0 &&
            (ret = mem_read(rt->mem, gil + (uint64_t)l->gil_locked, &locked, 4)) == 0)
            ret = mem_read_u64(rt->mem, gil + (uint64_t)l->gil_last_holder, &holder);
        break;
    }
    if (ret == 0 && locked == 1)
        *tstate = holder;
    return ret;
}

/* sizeof(sem_t) */
#define SEM_SIZE 32

int pyrt_gil_spans(struct pyrt *rt, uint64_t interp, struct gil_span *out)
{
    const struct pylayout *l = &rt->layout;
    uint64_t base = 0;
    int ret;
    switch (l->gil) {
    case GIL_TSTATE_CURRENT:
        if (rt->gil_lock_ptr) {
            /* 2.7: a semaphore allocated when threads start. */
            if ((ret = mem_read_u64(rt->mem, rt->gil_lock_ptr, &base)) < 0)
                return ret;
            if (!base)
                return 0;
            out[0] = (struct gil_span){base, base + SEM_SIZE};
            return 1;
        }
        for (int i = 0; i < rt->ngil_statics; i++)
            out[i] = (struct gil_span){rt->gil_statics[i][0], rt->gil_statics[i][1]};
        return rt->ngil_statics;
    case GIL_RUNTIME:
        /* The state's first field (interval) is before last_holder. */
        if (l->gil_last_holder < 0 || l->rt_gil_last_holder < l->gil_last_holder ||
            l->gil_state_size <= 0)
            return -ENOENT;
        base = rt->runtime + (uint64_t)(l->rt_gil_last_holder - l->gil_last_holder);
        break;
    case GIL_INTERP:
        if ((ret = mem_read_u64(rt->mem, interp + (uint64_t)l->is_ceval_gil, &base)) < 0)
            return ret;
        if (!base || l->gil_last_holder < 0 || l->gil_state_size <= 0)
            return 0;
        break;
    }
    out[0] = (struct gil_span){base, base + (uint64_t)l->gil_state_size};
    return 1;
}

int pyrt_gil_holder_in(struct pyrt *rt, const struct gil_span *gil, uint64_t *tstate)
{
    const struct pylayout *l = &rt->layout;
    unsigned char buf[12];
    int ret;
    *tstate = 0;
    /* last_holder, then locked 8 bytes on: both in one read. */
    if (l->gil == GIL_TSTATE_CURRENT || l->gil_last_holder < 0 ||
        l->gil_locked != l->gil_last_holder + 8 ||
        gil->end - gil->start != (uint64_t)l->gil_state_size ||
        (uint64_t)l->gil_locked + 4 > gil->end - gil->start)
        return -ENOENT;
    if ((ret = mem_read(rt->mem, gil->start + (uint64_t)l->gil_last_holder, buf, sizeof(buf))) < 0)
        return ret;
    uint64_t holder;
    int32_t locked;
    memcpy(&holder, buf, 8);
    memcpy(&locked, buf + 8, 4);
    if (locked == 1)
        *tstate = holder;
    return 0;
}

static int lookup(struct elf_file *ef, const char *name, unsigned tables, uint64_t bias,
                  uint64_t *addr, unsigned *where)
{
    uint64_t v;
    if (elf_symbol(ef, name, tables, &v, NULL, where) < 0 || v == 0)
        return -1;
    *addr = v + bias;
    return 0;
}

/* Tries each word of [start, start+size) in the target as the first interpreter. */
static int scan_range(struct pyrt *rt, uint64_t start, uint64_t size, uint64_t *tried,
                      size_t *ntried, uint64_t *found)
{
    enum { CHUNK = 65536 };
    uint64_t *buf = xmalloc(CHUNK);
    int ret = -1;
    for (uint64_t off = 0; off < size && ret < 0 && *ntried < SCAN_MAX_CANDIDATES; off += CHUNK) {
        size_t n = (size_t)MIN((uint64_t)CHUNK, size - off);
        if (mem_read(rt->mem, start + off, buf, n) < 0)
            continue;
        for (size_t i = 0; i < n / 8 && *ntried < SCAN_MAX_CANDIDATES; i++) {
            uint64_t v = buf[i];
            if (!v || (v & 7) || !mem_readable(rt->mem, v, 64))
                continue;
            /* Skip values already rejected (a small direct-mapped memo). */
            size_t slot = (size_t)(hash_u64(v) % SCAN_MAX_CANDIDATES);
            if (tried[slot] == v)
                continue;
            tried[slot] = v;
            (*ntried)++;
            if (pyrt_validate_interp(rt, v, 1)) {
                *found = start + off + i * 8;
                ret = 0;
                break;
            }
        }
    }
    free(buf);
    return ret;
}

static int scan_for_runtime(struct pyrt *rt, struct elf_file *ef, uint64_t *head_ptr)
{
    static const char *const sections[] = {".PyRuntime", ".data", ".bss"};
    uint64_t *tried = xcalloc(SCAN_MAX_CANDIDATES, sizeof(uint64_t));
    size_t ntried = 0;
    int ret = -1;
    for (size_t i = 0; i < ARRAY_SIZE(sections) && ret < 0; i++) {
        struct elf_section s;
        if (elf_section(ef, sections[i], &s) < 0 || s.size == 0 || s.size > SCAN_MAX_BYTES)
            continue;
        ret = scan_range(rt, s.addr + rt->bias, s.size, tried, &ntried, head_ptr);
    }
    free(tried);
    return ret;
}

static int not_python(struct pyrt *rt, struct pserr *err, const char *why)
{
    struct strbuf cmd = STRBUF_INIT;
    mem_cmdline(rt->mem, &cmd);
    pserr_set(err, ENOEXEC, "%sprocess %d (%.100s) is not a Python process: %s",
              mem_core_path(rt->mem) ? "the core's " : "", (int)rt->pid, cmd.len ? cmd.buf : "?",
              why);
    sb_release(&cmd);
    return -ENOEXEC;
}

static int find_version(struct pyrt *rt, struct elf_file *ef, struct pserr *err)
{
    uint64_t addr, hex = 0;
    unsigned where;
    char runtime_head[24];
    if (lookup(ef, "Py_Version", ELF_DYNSYM | ELF_SYMTAB, rt->bias, &addr, &where) == 0) {
        uint32_t v;
        if (mem_read(rt->mem, addr, &v, 4) == 0)
            hex = v;
    }
    /* 3.13+: the runtime state starts with _Py_DebugOffsets, which has the version. */
    struct elf_section s;
    if (!hex && (lookup(ef, "_PyRuntime", ELF_DYNSYM | ELF_SYMTAB, rt->bias, &addr, &where) == 0 ||
                 (elf_section(ef, ".PyRuntime", &s) == 0 && (addr = s.addr + rt->bias)))) {
        if (mem_read(rt->mem, addr, runtime_head, sizeof(runtime_head)) == 0 &&
            memcmp(runtime_head, DEBUG_OFFSETS_COOKIE, 8) == 0)
            memcpy(&hex, runtime_head + 8, 8);
    }
    if (hex) {
        rt->major = (int)((hex >> 24) & 0xff);
        rt->minor = (int)((hex >> 16) & 0xff);
        format_version(rt->version, sizeof(rt->version), hex);
    } else if (version_from_name(rt->binary, &rt->major, &rt->minor) == 0) {
        if (version_from_bss(rt, ef, rt->version, sizeof(rt->version)) < 0)
            snprintf(rt->version, sizeof(rt->version), "%d.%d", rt->major, rt->minor);
    } else {
        return not_python(rt, err, "cannot tell the Python version of its interpreter");
    }
    const struct pylayout *l = layout_for(rt->major, rt->minor);
    /* A newer 3.x is attempted as the newest known until its own debug
     * offsets (apply_debug_offsets) say where its fields are. */
    if (!l && rt->major == 3 && rt->minor > layout_newest_minor())
        l = layout_for(3, layout_newest_minor());
    if (!l)
        return pserr_set(err, ENOTSUP,
                         "process %d runs Python %s, which pystrobe does not support "
                         "(it knows %s)",
                         (int)rt->pid, rt->version, layout_supported());
    rt->layout = *l;
    return 0;
}

/* Sets rt->runtime / rt->interp_head by the first allowed route that works. */
static int find_runtime(struct pyrt *rt, struct elf_file *ef, struct pserr *err)
{
    unsigned routes = allowed_routes();
    const struct pylayout *l = &rt->layout;
    int modern = l->rt_interpreters_head >= 0;
    const char *sym = l->runtime_symbol;
    uint64_t addr = 0;
    unsigned where = 0;
    int found = 0;

    if ((routes & (1u << ROUTE_DYNSYM)) && lookup(ef, sym, ELF_DYNSYM, rt->bias, &addr, &where) == 0)
        found = 1, rt->route = ROUTE_DYNSYM;
    if (!found && (routes & (1u << ROUTE_SYMTAB)) &&
        lookup(ef, sym, ELF_SYMTAB, rt->bias, &addr, &where) == 0)
        found = 1, rt->route = ROUTE_SYMTAB;
    if (found) {
        if (modern) {
            rt->runtime = addr;
            rt->interp_head = addr + (uint64_t)l->rt_interpreters_head;
        } else {
            rt->interp_head = addr;
        }
        return 0;
    }
    struct elf_section s;
    if (modern && (routes & (1u << ROUTE_SECTION)) && elf_section(ef, ".PyRuntime", &s) == 0 &&
        s.size >= (uint64_t)l->rt_interpreters_head + 8) {
        rt->route = ROUTE_SECTION;
        rt->runtime = s.addr + rt->bias;
        rt->interp_head = rt->runtime + (uint64_t)l->rt_interpreters_head;
        return 0;
    }
    if ((routes & (1u << ROUTE_SCAN)) && scan_for_runtime(rt, ef, &addr) == 0) {
        rt->route = ROUTE_SCAN;
        rt->interp_head = addr;
        if (modern)
            rt->runtime = addr - (uint64_t)l->rt_interpreters_head;
        return 0;
    }
    return not_python(rt, err, "found no Python runtime state in its interpreter");
}

/* On 3.13+, replaces the built-in table with the target's own offsets. */
static int apply_debug_offsets(struct pyrt *rt, struct pserr *err)
{
    unsigned char buf[DEBUG_OFFSETS_SIZE];
    if (!rt->layout.debug_offsets)
        return 0;
    int ret = mem_read(rt->mem, rt->runtime, buf, sizeof(buf));
    if (ret < 0)
        return pserr_set(err, -ret, "cannot read _Py_DebugOffsets of process %d: %s",
                         (int)rt->pid, strerror(-ret));
    struct pylayout l;
    if ((ret = layout_from_debug_offsets(&l, buf, sizeof(buf), err)) < 0) {
        char why[sizeof(err->msg)];
        snprintf(why, sizeof(why), "%s", err->msg);
        /* A newer version: say so, and why it cannot be read. */
        if (rt->minor > layout_newest_minor())
            return pserr_set(err, ENOTSUP,
                             "process %d runs Python %s, newer than pystrobe knows (%s), and "
                             "cannot be read through what it says of itself: %s",
                             (int)rt->pid, rt->version, layout_supported(), why);
        return pserr_set(err, -ret, "cannot read Python %s of process %d: %s", rt->version,
                         (int)rt->pid, why);
    }
    if (l.major != rt->major || l.minor != rt->minor)
        return pserr_set(err, EINVAL,
                         "process %d: its _Py_DebugOffsets say Python %d.%d, its "
                         "interpreter %s",
                         (int)rt->pid, l.major, l.minor, rt->version);
    rt->layout = l;
    return 0;
}

static int permission_error(pid_t pid, int code, struct pserr *err)
{
    int scope = proc_ptrace_scope();
    char yama[160];
    if (scope < 0)
        snprintf(yama, sizeof(yama), "there is no Yama ptrace_scope here, so the process's own "
                 "user may read it too");
    else
        snprintf(yama, sizeof(yama), "kernel.yama.ptrace_scope is %d%s", scope,
                 scope == 0   ? " (its own user may read it too)"
                 : scope == 1 ? " (only its parent, root or CAP_SYS_PTRACE may read it)"
                 : scope == 2 ? " (only CAP_SYS_PTRACE may read it)"
                              : " (no process may read another)");
    return pserr_set(err, code,
                     "not allowed to read process %d: run pystrobe as root or with "
                     "CAP_SYS_PTRACE (in a container: docker run --cap-add SYS_PTRACE); %s",
                     (int)pid, yama);
}

_Static_assert(GIL_STATIC_SYMBOLS <= GIL_SPANS_MAX, "each GIL static is a span");

/* 2.7 and 3.6 keep the GIL in statics (the table names them): found in
 * .symtab when it is there. */
static void find_gil_statics(struct pyrt *rt, struct elf_file *ef)
{
    const struct pylayout *l = &rt->layout;
    uint64_t v, size;
    unsigned where;
    if (l->gil_lock_symbol) {
        if (elf_symbol(ef, l->gil_lock_symbol, ELF_SYMTAB, &v, &size, &where) == 0 && v &&
            size == 8)
            rt->gil_lock_ptr = v + rt->bias;
        return;
    }
    for (size_t i = 0; i < GIL_STATIC_SYMBOLS && l->gil_static_symbols[i]; i++) {
        if (elf_symbol(ef, l->gil_static_symbols[i], ELF_SYMTAB, &v, &size, &where) == 0 &&
            v && size > 0 && size <= 64) {
            rt->gil_statics[rt->ngil_statics][0] = v + rt->bias;
            rt->gil_statics[rt->ngil_statics][1] = v + rt->bias + size;
            rt->ngil_statics++;
        }
    }
}

static void find_known(struct pyrt *rt, struct elf_file *ef)
{
    unsigned where;
    for (int i = 0; i < PYK_COUNT; i++) {
        const char *name = rt->layout.known_symbols[i];
        if (name)
            lookup(ef, name, ELF_DYNSYM | ELF_SYMTAB, rt->bias, &rt->known[i], &where);
    }
}

int pyrt_attach(struct pyrt *rt, struct mem *mem, pid_t pid, struct pserr *err)
{
    memset(rt, 0, sizeof(*rt));
    rt->pid = pid;
    rt->mem = mem;
    rt->unicode27_width = 4;
    int ret = mem_check(mem);
    if (ret == -ESRCH)
        return pserr_set(err, ESRCH, "no process with pid %d", (int)pid);
    if (ret < 0)
        return pserr_set(err, -ret, "cannot look at process %d: %s", (int)pid, strerror(-ret));

    const struct mem_maps *maps;
    ret = mem_refresh_maps(mem, &maps);
    if (ret == -EACCES || ret == -EPERM)
        return permission_error(pid, -ret, err);
    if (ret == -ENOENT || ret == -ESRCH)
        return pserr_set(err, ESRCH, "no process with pid %d", (int)pid);
    if (ret < 0)
        return pserr_set(err, -ret, "cannot read the mappings of process %d: %s", (int)pid,
                         strerror(-ret));
    /* A read that the kernel refuses tells permission apart from garbage. */
    if (maps->n > 0) {
        char byte;
        int r = mem_read(mem, maps->v[0].start, &byte, 1);
        if (r == -EPERM || r == -EACCES)
            return permission_error(pid, -r, err);
        if (r == -ESRCH)
            return pserr_set(err, ESRCH, "process %d exited", (int)pid);
    }

    const struct mem_region *bin = find_binary(rt, maps);
    if (!bin)
        return not_python(rt, err, "neither libpython nor its executable is mapped");
    const struct mem_region *base = file_base(maps, bin);
    if (!base)
        return not_python(rt, err, "its executable is not mapped from offset 0");
    rt->binary = xstrdup(bin->path);

    int fd = mem_open_mapped(mem, base);
    if (fd < 0 && mem_mapped_error(mem)) {
        pserr_set(err, -fd, "%s", mem_mapped_error(mem));
        free(rt->binary);
        rt->binary = NULL;
        return fd;
    }
    if (fd == -EACCES || fd == -EPERM)
        return permission_error(pid, -fd, err);
    if (fd < 0)
        return pserr_set(err, -fd, "cannot open %s of process %d: %s", rt->binary, (int)pid,
                         strerror(-fd));
    struct elf_file *ef = NULL;
    struct pserr elf_err;
    if (elf_open_fd(fd, &ef, &elf_err) < 0) {
        char why[600];
        snprintf(why, sizeof(why), "%.80s is not a readable ELF file (%.400s)", rt->binary,
                 elf_err.msg);
        return not_python(rt, err, why);
    }
    uint64_t vbase = 0;
    if (elf_base_vaddr(ef, &vbase) < 0) {
        ret = not_python(rt, err, "its executable has no loadable segment at offset 0");
        goto out;
    }
    rt->bias = base->start - vbase;

    if ((ret = find_version(rt, ef, err)) < 0)
        goto out;
    /* The interpreter does not export these everywhere; they only speed up type checks. */
    unsigned where;
    lookup(ef, "PyCode_Type", ELF_DYNSYM | ELF_SYMTAB, rt->bias, &rt->code_type, &where);
    lookup(ef, "PyFrame_Type", ELF_DYNSYM | ELF_SYMTAB, rt->bias, &rt->frame_type, &where);
    find_known(rt, ef);
    if (rt->layout.tstate_current_symbol)
        lookup(ef, rt->layout.tstate_current_symbol, ELF_DYNSYM | ELF_SYMTAB, rt->bias,
               &rt->tstate_current, &where);
    find_gil_statics(rt, ef);
    if (rt->layout.narrow_unicode_symbol) {
        uint64_t dummy;
        if (lookup(ef, rt->layout.narrow_unicode_symbol, ELF_DYNSYM, 0, &dummy, &where) == 0)
            rt->unicode27_width = 2;
    }
    if ((ret = find_runtime(rt, ef, err)) < 0)
        goto out;
    ret = apply_debug_offsets(rt, err);
out:
    elf_close(ef);
    if (ret < 0) {
        free(rt->binary);
        rt->binary = NULL;
    }
    return ret;
}

void pyrt_release(struct pyrt *rt)
{
    free(rt->binary);
    rt->binary = NULL;
}

const char *pyrt_tested_note(const struct pyrt *rt)
{
    return rt->layout.untested ? " (not yet tested with pystrobe)" : "";
}
