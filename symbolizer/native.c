#include "symbolizer/native.h"

#include <elf.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/htab.h"
#include "symbolizer/callsite.h"

/*
 * Stack memory is read through a small page cache that lives for one unwind
 * (the thread runs again afterwards): a miss reads a run of pages at once, up
 * to the end of the mapping, so a deep stack costs a handful of reads rather
 * than one per word libdw asks for.
 */
#define NPAGE 4096u
#define CACHE_PAGES 32
#define PREFETCH_PAGES 8

/* The vDSO is a few pages; anything larger in its place is not one. */
#define VDSO_MAX (64u * 1024u)

/* x86_64 DWARF register numbers (the psABI's order, not user_regs_struct's). */
#define DWARF_NREGS 17
#define DWARF_RSP 7

enum page_state { PAGE_EMPTY, PAGE_OK, PAGE_BAD };

struct page {
    uint64_t addr;
    int state;
    unsigned char data[NPAGE];
};

/* One reported module: what find_elf needs to open its file. */
struct module {
    struct unwinder *u;
    struct mem_region r; /* the file's first mapping (path owned) */
    uint64_t low, high;  /* as reported to libdw */
    unsigned char *image; /* the vDSO's bytes, read from memory */
    int seen;             /* still mapped at the last refresh */
};

struct sym_entry {
    uint64_t pc;
    int leaf;
    int ret;
    struct native_sym sym;
};

struct unwinder {
    struct mem *mem;
    native_open_fn open_file;
    void *ctx;
    char *root; /* the target's file system (/proc/PID/root, --root): its debug files */
    Dwfl *dwfl;
    Elf *arch_elf; /* names the architecture for dwfl_attach_state */
    unsigned char arch_ehdr[sizeof(Elf64_Ehdr)];
    struct module **mods;
    size_t nmods, modcap;
    int have_x; /* the source marks executable mappings */
    /* The unwind in progress. */
    const struct user_regs_struct *regs;
    struct page *pages;
    size_t next_victim;
    /* Symbols by (pc, leaf), and interned strings that outlive module changes. */
    struct sym_entry *syms;
    size_t nsyms, symcap;
    struct htab sym_index;
    char **strs;
    size_t nstrs, strcap;
    struct htab str_index;
    struct callsite *callsite; /* inlined calls, per compilation unit */
};

/* ---- strings and the symbol cache ------------------------------------- */

static int str_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct unwinder *u = ctx;
    return strcmp(u->strs[idx], key) == 0;
}

/* A copy of s that lives until unwinder_free (names stay valid after a refresh). */
static const char *intern(struct unwinder *u, const char *s)
{
    if (!s)
        return NULL;
    uint64_t h = hash_bytes(s, strlen(s), 0);
    uint32_t i = htab_find(&u->str_index, h, str_eq, u, s);
    if (i != HTAB_NONE)
        return u->strs[i];
    GROW(u->strs, u->strcap, u->nstrs + 1);
    u->strs[u->nstrs] = xstrdup(s);
    htab_insert(&u->str_index, h, (uint32_t)u->nstrs);
    return u->strs[u->nstrs++];
}

struct sym_key {
    uint64_t pc;
    int leaf;
};

static int sym_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct unwinder *u = ctx;
    const struct sym_key *k = key;
    return u->syms[idx].pc == k->pc && u->syms[idx].leaf == k->leaf;
}

static uint64_t sym_hash(const struct sym_key *k)
{
    return hash_u64(k->pc * 2 + (uint64_t)(k->leaf != 0));
}

/* ---- finding the files ------------------------------------------------ */

static int is_vdso(const struct mem_region *r)
{
    return strcmp(r->path, "[vdso]") == 0;
}

/* The vDSO has no file: its ELF image is read from the target's memory. */
static int vdso_elf(struct module *m, Elf **elfp)
{
    uint64_t len = m->r.end - m->r.start;
    if (!m->image) {
        if (len == 0 || len > VDSO_MAX)
            return -1;
        unsigned char *image = xmalloc(len);
        if (mem_read(m->u->mem, m->r.start, image, len) < 0) {
            free(image);
            return -1;
        }
        m->image = image;
    }
    /* libdw ends this Elf with the module; the bytes stay ours. */
    *elfp = elf_memory((char *)m->image, len);
    return -1;
}

static int find_elf(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
                    char **file_name, Elf **elfp)
{
    (void)mod, (void)name, (void)base;
    struct module *m = *userdata;
    if (!m)
        return -1;
    if (is_vdso(&m->r))
        return vdso_elf(m, elfp);
    if (!m->u->open_file)
        return -1;
    int fd = m->u->open_file(m->u->ctx, &m->r);
    if (fd < 0)
        return -1;
    /* The name lets dwfl_standard_find_debuginfo follow .gnu_debuglink. */
    if (m->r.path[0] == '/')
        *file_name = xstrdup(m->r.path);
    return fd;
}

/*
 * The debug file of mod in the target's own file system, by build-id
 * (ROOT/usr/lib/debug/.build-id/xx/yyyy.debug, every link on the way
 * resolved inside ROOT), when it is a regular file with the same build-id.
 * An fd, or -1.
 */
static int root_debuginfo(struct unwinder *u, Dwfl_Module *mod, char **debuginfo_file_name)
{
    const unsigned char *id;
    GElf_Addr vaddr;
    int n = dwfl_module_build_id(mod, &id, &vaddr);
    if (n < 2 || n > 64)
        return -1;
    struct strbuf sb = STRBUF_INIT;
    sb_adds(&sb, "/usr/lib/debug/.build-id/");
    for (int i = 0; i < n; i++)
        sb_addf(&sb, i == 1 ? "/%02x" : "%02x", id[i]);
    sb_adds(&sb, ".debug");
    struct stat st;
    int fd = open_regular_in(u->root, sb_str(&sb), &st);
    if (fd >= 0) {
        Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        const void *have = NULL;
        ssize_t nh = elf ? dwelf_elf_gnu_build_id(elf, &have) : -1;
        int same = nh == n && memcmp(have, id, (size_t)n) == 0;
        if (elf)
            elf_end(elf);
        if (!same) {
            close(fd);
            fd = -1;
        } else if (debuginfo_file_name) {
            struct strbuf full = STRBUF_INIT;
            sb_adds(&full, u->root);
            sb_adds(&full, sb_str(&sb));
            *debuginfo_file_name = sb_detach(&full);
        }
    }
    sb_release(&sb);
    return fd < 0 ? -1 : fd;
}

/*
 * Debug information: the target's own (root_debuginfo), then libdw's
 * search here: the file itself, /usr/lib/debug/.build-id and
 * .gnu_debuglink.  (With DEBUGINFOD_URLS set, libdw also asks those
 * servers, which the user asked for.)
 */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
                          Dwarf_Addr base, const char *file_name, const char *debuglink_file,
                          GElf_Word debuglink_crc, char **debuginfo_file_name)
{
    struct module *m = userdata ? *userdata : NULL;
    if (m && m->u->root) {
        int fd = root_debuginfo(m->u, mod, debuginfo_file_name);
        if (fd >= 0)
            return fd;
    }
    return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                        debuglink_crc, debuginfo_file_name);
}

static const Dwfl_Callbacks dwfl_callbacks = {
    .find_elf = find_elf,
    .find_debuginfo = find_debuginfo,
};

/* ---- reporting the mappings as modules -------------------------------- */

static int same_file(const struct mem_region *a, const struct mem_region *b)
{
    return a->inode == b->inode && a->dev_major == b->dev_major &&
           a->dev_minor == b->dev_minor && strcmp(a->path, b->path) == 0;
}

static int reportable(const struct mem_region *r)
{
    return (r->path[0] == '/' && r->inode != 0) || is_vdso(r);
}

static struct module *find_module(struct unwinder *u, const struct mem_region *r, uint64_t low)
{
    for (size_t i = 0; i < u->nmods; i++) {
        struct module *m = u->mods[i];
        if (m->low == low && same_file(&m->r, r))
            return m;
    }
    return NULL;
}

static void module_free(struct module *m)
{
    if (!m)
        return;
    free(m->r.path);
    free(m->image);
    free(m);
}

/*
 * Reports the file whose mappings are v[0..n).  Its module starts where the
 * file's first byte would be (the first mapping less its file offset), so
 * that libdw's bias (low less the first PT_LOAD's aligned p_vaddr) is the
 * load bias.  A module kept from the last report is reported again as it
 * was, so libdw keeps its opened file and CFI.
 */
static int report_file(struct unwinder *u, const struct mem_region *v, size_t n,
                       uint64_t *floor)
{
    uint64_t low = v[0].start - v[0].offset, high = v[n - 1].end;
    if (v[0].offset > v[0].start || low < *floor)
        return 0; /* would overlap the module before it: not an ELF file's layout */
    struct module *m = find_module(u, &v[0], low);
    int fresh = !m;
    if (fresh) {
        m = xcalloc(1, sizeof(*m));
        m->u = u;
        m->r = v[0];
        m->r.path = xstrdup(v[0].path);
        m->low = low;
    }
    m->high = high;
    Dwfl_Module *mod = dwfl_report_module(u->dwfl, m->r.path, m->low, m->high);
    if (!mod) {
        if (fresh)
            module_free(m);
        return 0;
    }
    void **ud = NULL;
    dwfl_module_info(mod, &ud, NULL, NULL, NULL, NULL, NULL, NULL);
    if (ud)
        *ud = m;
    m->seen = 1;
    if (fresh) {
        GROW(u->mods, u->modcap, u->nmods + 1);
        u->mods[u->nmods++] = m;
    }
    *floor = m->high;
    return fresh;
}

/* Reports every mapped file; returns how many modules are new or gone. */
static size_t report_maps(struct unwinder *u, const struct mem_maps *maps)
{
    size_t changed = 0;
    uint64_t floor = 0;
    for (size_t i = 0; i < u->nmods; i++)
        u->mods[i]->seen = 0;
    u->have_x = 0;
    dwfl_report_begin(u->dwfl);
    for (size_t i = 0; i < maps->n;) {
        const struct mem_region *r = &maps->v[i];
        u->have_x |= (r->perms & MEM_X) != 0;
        size_t j = i + 1;
        if (!reportable(r)) {
            i = j;
            continue;
        }
        while (j < maps->n && same_file(&maps->v[j], r))
            j++;
        changed += (size_t)report_file(u, r, j - i, &floor);
        i = j;
    }
    dwfl_report_end(u->dwfl, NULL, NULL);
    /* libdw dropped the modules not reported again; drop ours after it. */
    size_t kept = 0;
    for (size_t i = 0; i < u->nmods; i++) {
        if (u->mods[i]->seen) {
            u->mods[kept++] = u->mods[i];
        } else {
            module_free(u->mods[i]);
            changed++;
        }
    }
    u->nmods = kept;
    return changed;
}

/* ---- memory, through the page cache ----------------------------------- */

static struct page *page_lookup(struct unwinder *u, uint64_t page)
{
    for (size_t i = 0; i < CACHE_PAGES; i++)
        if (u->pages[i].state != PAGE_EMPTY && u->pages[i].addr == page)
            return &u->pages[i];
    return NULL;
}

/* Reads a run of pages from page on (within its mapping) into the cache. */
static struct page *page_fill(struct unwinder *u, uint64_t page)
{
    size_t want = 1;
    const struct mem_region *r = mem_find_region(u->mem, page);
    if (r && r->end > page)
        want = (size_t)MIN((uint64_t)PREFETCH_PAGES, (r->end - page + NPAGE - 1) / NPAGE);
    struct mem_iov iov[PREFETCH_PAGES];
    struct page *slot[PREFETCH_PAGES];
    size_t n = 0;
    for (size_t k = 0; k < want; k++) {
        uint64_t a = page + k * NPAGE;
        if (a < page || (k > 0 && page_lookup(u, a)))
            break;
        slot[n] = &u->pages[u->next_victim];
        u->next_victim = (u->next_victim + 1) % CACHE_PAGES;
        slot[n]->addr = a;
        iov[n] = (struct mem_iov){a, slot[n]->data, NPAGE, 0};
        n++;
    }
    if (mem_readv(u->mem, iov, n) < 0)
        for (size_t k = 0; k < n; k++)
            iov[k].ok = 0;
    for (size_t k = 0; k < n; k++)
        slot[k]->state = iov[k].ok ? PAGE_OK : PAGE_BAD;
    return slot[0];
}

static int cache_read(struct unwinder *u, uint64_t addr, void *out, size_t len)
{
    unsigned char *dst = out;
    while (len > 0) {
        uint64_t page = addr & ~(uint64_t)(NPAGE - 1);
        struct page *p = page_lookup(u, page);
        if (!p)
            p = page_fill(u, page);
        if (p->state != PAGE_OK)
            return -EFAULT;
        size_t off = (size_t)(addr - page), k = MIN(len, NPAGE - off);
        memcpy(dst, p->data + off, k);
        dst += k;
        addr += k;
        len -= k;
        if (addr == 0 && len > 0)
            return -EFAULT; /* wrapped around */
    }
    return 0;
}

/* ---- libdw's view of the one thread ----------------------------------- */

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
    (void)dwfl, (void)arg, (void)thread_argp;
    return 0; /* threads are unwound one at a time, by dwfl_getthread_frames */
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
    (void)dwfl, (void)tid;
    *thread_argp = arg;
    return true;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
    (void)dwfl;
    struct unwinder *u = arg;
    return cache_read(u, addr, result, sizeof(*result)) == 0;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
    struct unwinder *u = arg;
    const struct user_regs_struct *r = u->regs;
    const Dwarf_Word regs[DWARF_NREGS] = {
        r->rax, r->rdx, r->rcx, r->rbx, r->rsi, r->rdi, r->rbp, r->rsp, r->r8,
        r->r9,  r->r10, r->r11, r->r12, r->r13, r->r14, r->r15, r->rip,
    };
    if (!dwfl_thread_state_registers(thread, 0, DWARF_NREGS, regs))
        return false;
    dwfl_thread_state_register_pc(thread, r->rip);
    return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = next_thread,
    .get_thread = get_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
};

/*
 * dwfl_attach_state learns the architecture from an ELF header.  Ours is a
 * bare x86_64 header in memory, so that attaching needs no module (a buffer
 * source has none) and no file is opened before the first unwind.
 */
static Elf *arch_elf(unsigned char *buf)
{
    Elf64_Ehdr h;
    memset(&h, 0, sizeof(h));
    memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS64;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_ident[EI_VERSION] = EV_CURRENT;
    h.e_type = ET_CORE;
    h.e_machine = EM_X86_64;
    h.e_version = EV_CURRENT;
    h.e_ehsize = sizeof(h);
    memcpy(buf, &h, sizeof(h));
    return elf_memory((char *)buf, sizeof(h));
}

/* ---- the unwinder ----------------------------------------------------- */

struct unwinder *unwinder_new(struct mem *mem, native_open_fn open_file, void *ctx,
                              struct pserr *err)
{
    elf_version(EV_CURRENT);
    struct unwinder *u = xcalloc(1, sizeof(*u));
    u->mem = mem;
    u->open_file = open_file;
    u->ctx = ctx;
    u->pages = xcalloc(CACHE_PAGES, sizeof(*u->pages));
    u->callsite = callsite_new();
    u->dwfl = dwfl_begin(&dwfl_callbacks);
    u->arch_elf = arch_elf(u->arch_ehdr);
    if (!u->dwfl || !u->arch_elf) {
        pserr_set(err, ENOMEM, "cannot start libdw: %s", dwfl_errmsg(-1));
        goto fail;
    }
    /* The mappings as the source holds them: re-reading them here would
     * end the life of a list its other users may hold. */
    const struct mem_maps *maps = mem_maps(mem);
    int ret = maps->n > 0 ? 0 : mem_refresh_maps(mem, &maps);
    if (ret < 0) {
        pserr_set(err, -ret, "cannot read the process's mappings: %s", strerror(-ret));
        goto fail;
    }
    report_maps(u, maps);
    if (!dwfl_attach_state(u->dwfl, u->arch_elf, 1, &thread_callbacks, u)) {
        pserr_set(err, EINVAL, "libdw cannot unwind x86_64 stacks: %s", dwfl_errmsg(-1));
        goto fail;
    }
    return u;
fail:
    unwinder_free(u);
    return NULL;
}

void unwinder_set_root(struct unwinder *u, const char *root)
{
    free(u->root);
    u->root = root && *root ? xstrdup(root) : NULL;
}

void unwinder_free(struct unwinder *u)
{
    if (!u)
        return;
    free(u->root);
    callsite_free(u->callsite); /* holds libdw's modules and names: before dwfl_end */
    if (u->dwfl)
        dwfl_end(u->dwfl); /* ends the modules' Elfs before their bytes go */
    if (u->arch_elf)
        elf_end(u->arch_elf);
    for (size_t i = 0; i < u->nmods; i++)
        module_free(u->mods[i]);
    free(u->mods);
    free(u->pages);
    free(u->syms);
    htab_release(&u->sym_index);
    for (size_t i = 0; i < u->nstrs; i++)
        free(u->strs[i]);
    free(u->strs);
    htab_release(&u->str_index);
    free(u);
}

int unwinder_refresh(struct unwinder *u)
{
    const struct mem_maps *maps = NULL;
    int ret = mem_refresh_maps(u->mem, &maps);
    if (ret < 0)
        return ret;
    if (report_maps(u, maps) > 0) {
        /* A pc may now lie in another file: name everything afresh. */
        u->nsyms = 0;
        htab_clear(&u->sym_index);
        callsite_clear(u->callsite);
    }
    return 0;
}

/* A pc worth unwinding from: in a mapping, and an executable one when the
 * source says which are (a buffer source does not). */
static int pc_plausible(struct unwinder *u, uint64_t pc)
{
    if (pc == 0)
        return 0;
    const struct mem_region *r = mem_find_region(u->mem, pc);
    return r && (!u->have_x || (r->perms & MEM_X));
}

struct walk {
    struct unwinder *u;
    uint64_t *pcs;
    size_t max, n;
    uint64_t last_sp;
};

static int frame_cb(Dwfl_Frame *f, void *arg)
{
    struct walk *w = arg;
    Dwarf_Addr pc;
    bool activation = false;
    Dwarf_Word sp = 0;
    if (!dwfl_frame_pc(f, &pc, &activation) || !pc_plausible(w->u, pc))
        return DWARF_CB_ABORT;
    if (dwfl_frame_reg(f, DWARF_RSP, &sp) != 0)
        return DWARF_CB_ABORT;
    /*
     * Callers' frames lie at higher addresses.  libdw checks this too, but
     * not in every fallback; a loop in garbage memory must end here.  Only
     * the frame a signal interrupted (an activation past the first) may lie
     * anywhere: the handler may have run on an alternate signal stack.  Its
     * own callers are held to the rule again, and NATIVE_MAX_FRAMES bounds
     * a chain of such frames.
     */
    if (w->n > 0 && sp <= w->last_sp && !activation)
        return DWARF_CB_ABORT;
    w->pcs[w->n++] = pc;
    w->last_sp = sp;
    return w->n < w->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

int unwinder_unwind(struct unwinder *u, const struct user_regs_struct *regs, uint64_t *pcs,
                    size_t max, size_t *n)
{
    struct walk w = {u, pcs, MIN(max, (size_t)NATIVE_MAX_FRAMES), 0, 0};
    *n = 0;
    if (w.max == 0)
        return 0;
    for (size_t i = 0; i < CACHE_PAGES; i++)
        u->pages[i].state = PAGE_EMPTY;
    u->regs = regs;
    /* The end of a stack shows as an error from libdw: what was found stands. */
    dwfl_getthread_frames(u->dwfl, 1, frame_cb, &w);
    u->regs = NULL;
    *n = w.n;
    return w.n > 0 ? 0 : -EFAULT;
}

/* ---- naming addresses ------------------------------------------------- */

/* Suffixes GCC gives the copies it makes of a function ("pysleep.constprop.0"). */
static const char *const clone_suffixes[] = {".isra", ".constprop", ".part", ".cold",
                                             ".lto_priv", ".localalias"};

/* Length of ".word" or ".word.N" at s when word is a clone suffix, else 0. */
static size_t clone_suffix_len(const char *s)
{
    for (size_t i = 0; i < ARRAY_SIZE(clone_suffixes); i++) {
        size_t k = strlen(clone_suffixes[i]);
        if (strncmp(s, clone_suffixes[i], k) != 0)
            continue;
        if (s[k] == '\0' || s[k] == '.') {
            size_t d = s[k] == '.' ? k + 1 : k;
            while (s[d] >= '0' && s[d] <= '9')
                d++;
            if (s[d] == '\0' || s[d] == '.')
                return d;
        }
    }
    return 0;
}

/*
 * The function's name as people call it: without a symbol version
 * ("clock_nanosleep@GLIBC_2.2.5") and without GCC's clone suffixes, so that
 * a function's copies add up to one frame in a profile.  Names are not
 * demangled: C++ names stay as the symbol table has them (demangling would
 * need libstdc++ at run time).
 */
static size_t plain_name_len(const char *name)
{
    size_t n = strcspn(name, "@");
    for (size_t i = 1; i < n; i++) {
        if (name[i] != '.')
            continue;
        size_t k = 0, j = i;
        while (j < n && (k = clone_suffix_len(name + j)) > 0 && j + k <= n)
            j += k;
        if (j == n || name[j] == '@')
            return i;
    }
    return n;
}

static void symbolize_module(struct unwinder *u, Dwfl_Module *mod, uint64_t pc, uint64_t at,
                             struct native_sym *s)
{
    GElf_Addr bias = 0;
    Dwarf_Addr low = 0;
    dwfl_module_info(mod, NULL, &low, NULL, NULL, NULL, NULL, NULL);
    s->module_off = dwfl_module_getelf(mod, &bias) ? pc - bias : pc - low;
    GElf_Off off = 0;
    GElf_Sym sym;
    /*
     * Names stay as the symbol tables hold them: C++ names are not
     * demangled (that would need libstdc++'s demangler at run time).
     */
    const char *name = dwfl_module_addrinfo(mod, at, &off, &sym, NULL, NULL, NULL);
    if (!name && at != pc) {
        /* A signal handler returns to the first byte of libc's __restore_rt:
         * the byte before it is in no function. */
        at = pc;
        name = dwfl_module_addrinfo(mod, at, &off, &sym, NULL, NULL, NULL);
    }
    size_t len = name ? plain_name_len(name) : 0;
    if (len > 0) {
        char *plain = xstrndup(name, len);
        s->func = intern(u, plain);
        free(plain);
        s->func_off = off + (pc - at);
    }
    int lineno = 0;
    const char *file = callsite_find(u->callsite, mod, at, &lineno);
    if (!file) {
        Dwfl_Line *line = dwfl_module_getsrc(mod, at);
        file = line ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
    }
    if (file && file[0] && lineno > 0) {
        s->file = intern(u, file);
        s->line = lineno;
    }
}

static int symbolize_uncached(struct unwinder *u, uint64_t pc, int leaf, struct native_sym *s)
{
    memset(s, 0, sizeof(*s));
    s->module = "";
    s->module_off = pc;
    const struct mem_region *r = mem_find_region(u->mem, pc);
    if (!r || pc == 0)
        return -ENOENT;
    s->module = intern(u, r->path);
    if (r->path[0])
        s->module_off = pc - r->start + r->offset; /* until the module's bias is known */
    /* A return address is just past its call, which may be the function's last instruction. */
    uint64_t at = leaf ? pc : pc - 1;
    Dwfl_Module *mod = dwfl_addrmodule(u->dwfl, at);
    if (mod)
        symbolize_module(u, mod, pc, at, s);
    return 0;
}

int unwinder_symbolize(struct unwinder *u, uint64_t pc, int leaf, struct native_sym *out)
{
    struct sym_key k = {pc, leaf != 0};
    uint64_t h = sym_hash(&k);
    uint32_t i = htab_find(&u->sym_index, h, sym_eq, u, &k);
    if (i == HTAB_NONE) {
        struct sym_entry e = {pc, k.leaf, 0, {0}};
        e.ret = symbolize_uncached(u, pc, k.leaf, &e.sym);
        GROW(u->syms, u->symcap, u->nsyms + 1);
        u->syms[u->nsyms] = e;
        htab_insert(&u->sym_index, h, (uint32_t)u->nsyms);
        i = (uint32_t)u->nsyms++;
    }
    *out = u->syms[i].sym;
    return u->syms[i].ret;
}

void native_label(const struct native_sym *s, struct strbuf *out)
{
    if (s->func && s->file && s->line > 0) {
        sb_addf(out, "%s (%s:%d)", s->func, s->file, s->line);
    } else if (s->func) {
        sb_adds(out, s->func);
    } else if (s->module && s->module[0]) {
        /* "[vdso]" and its kind are named without their own brackets. */
        const char *base = path_base(s->module);
        size_t len = strlen(base);
        if (len >= 2 && base[0] == '[' && base[len - 1] == ']')
            sb_addf(out, "[%.*s+0x%" PRIx64 "]", (int)(len - 2), base + 1, s->module_off);
        else
            sb_addf(out, "[%s+0x%" PRIx64 "]", base, s->module_off);
    } else {
        sb_addf(out, "[0x%" PRIx64 "]", s->module_off);
    }
}
