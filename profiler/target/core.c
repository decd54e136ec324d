#include "profiler/target/core.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profiler/target/core_impl.h"

int core_read_at(int fd, uint64_t off, void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return 0;
}

/* ---- notes ---- */

struct note {
    uint32_t type, namesz, descsz;
    const char *name;
    const unsigned char *desc;
};

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* The note at *pos of buf[0..len): 1 with *n set and *pos moved on, 0 at the end, -1 corrupt. */
static int note_next(const unsigned char *buf, size_t len, size_t align, size_t *pos,
                     struct note *n)
{
    uint32_t h[3];
    if (*pos >= len)
        return 0;
    if (len - *pos < sizeof(h))
        return -1;
    memcpy(h, buf + *pos, sizeof(h));
    size_t p = *pos + sizeof(h);
    if (h[0] > len - p)
        return -1;
    n->namesz = h[0];
    n->descsz = h[1];
    n->type = h[2];
    n->name = (const char *)buf + p;
    p = align_up(p + h[0], align);
    if (p > len || h[1] > len - p)
        return -1;
    n->desc = buf + p;
    p = align_up(p + h[1], align);
    *pos = p > len ? len : p;
    return 1;
}

static int note_named(const struct note *n, const char *name)
{
    size_t k = strlen(name) + 1;
    return n->namesz == k && memcmp(n->name, name, k) == 0;
}

int core_note_build_id(const unsigned char *notes, size_t len, size_t align, unsigned char *id,
                       size_t max)
{
    size_t pos = 0;
    struct note n;
    for (int i = 0; i < 1024 && note_next(notes, len, align, &pos, &n) == 1; i++) {
        if (n.type == NT_GNU_BUILD_ID && note_named(&n, "GNU") && n.descsz > 0) {
            size_t k = MIN((size_t)n.descsz, max);
            memcpy(id, n.desc, k);
            return (int)k;
        }
    }
    return -ENOENT;
}

static int add_file(struct core *c, const char *path, size_t len)
{
    for (size_t i = c->nfiles; i-- > 0;)
        if (strlen(c->files[i].path) == len && memcmp(c->files[i].path, path, len) == 0)
            return (int)i;
    GROW(c->files, c->filecap, c->nfiles + 1);
    c->files[c->nfiles] = (struct mfile){xstrndup(path, len), -1, 0};
    return (int)c->nfiles++;
}

/* NT_FILE: count, page size, count (start, end, page offset) triples, count paths. */
static int note_file(struct core *c, const struct note *n)
{
    uint64_t count, page;
    if (n->descsz < 16)
        return -1;
    memcpy(&count, n->desc, 8);
    memcpy(&page, n->desc + 8, 8);
    if (count > CORE_MAX_FILES || count > (n->descsz - 16) / 24 || page == 0 ||
        page > (1u << 30) || (page & (page - 1)))
        return -1;
    const unsigned char *names = n->desc + 16 + count * 24;
    size_t left = n->descsz - 16 - count * 24;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t v[3];
        memcpy(v, n->desc + 16 + i * 24, sizeof(v));
        const unsigned char *nul = memchr(names, '\0', left);
        if (!nul || v[1] <= v[0] || v[2] > UINT64_MAX / page)
            return -1;
        size_t len = (size_t)(nul - names);
        GROW(c->nf, c->nfcap, c->nnf + 1);
        c->nf[c->nnf++] = (struct nfile){v[0], v[1], v[2] * page,
                                         (size_t)add_file(c, (const char *)names, len)};
        left -= len + 1;
        names = nul + 1;
    }
    return 0;
}

static int note_prstatus(struct core *c, const struct note *n)
{
    struct elf_prstatus ps;
    if (n->descsz < sizeof(ps))
        return -1;
    if (c->nthreads >= CORE_MAX_THREADS)
        return -1;
    memcpy(&ps, n->desc, sizeof(ps));
    GROW(c->threads, c->threadcap, c->nthreads + 1);
    struct core_thread *t = &c->threads[c->nthreads++];
    memset(t, 0, sizeof(*t));
    t->tid = ps.pr_pid;
    t->signo = ps.pr_cursig ? ps.pr_cursig : ps.pr_info.si_signo;
    _Static_assert(sizeof(ps.pr_reg) == sizeof(t->regs), "pr_reg is a user_regs_struct");
    memcpy(&t->regs, &ps.pr_reg, sizeof(t->regs));
    return 0;
}

static void copy_str(char *dst, size_t cap, const char *src, size_t n)
{
    size_t k = strnlen(src, MIN(n, cap - 1));
    memcpy(dst, src, k);
    dst[k] = '\0';
}

static int note_prpsinfo(struct core *c, const struct note *n)
{
    struct elf_prpsinfo ps;
    if (n->descsz < sizeof(ps))
        return -1;
    memcpy(&ps, n->desc, sizeof(ps));
    c->ps.pid = ps.pr_pid;
    c->ps.ppid = ps.pr_ppid;
    c->ps.uid = ps.pr_uid;
    c->ps.state = ps.pr_sname;
    copy_str(c->ps.fname, sizeof(c->ps.fname), ps.pr_fname, sizeof(ps.pr_fname));
    copy_str(c->ps.args, sizeof(c->ps.args), ps.pr_psargs, sizeof(ps.pr_psargs));
    /* The kernel keeps the arguments' NUL separators as spaces, but only in
     * what it copied: trailing spaces are its padding. */
    size_t k = strlen(c->ps.args);
    while (k > 0 && c->ps.args[k - 1] == ' ')
        c->ps.args[--k] = '\0';
    c->has_ps = 1;
    return 0;
}

static int note_auxv(struct core *c, const struct note *n)
{
    if (c->auxv || n->descsz % 16 || n->descsz / 16 > 4096)
        return -1;
    c->nauxv = n->descsz / 16;
    c->auxv = xmalloc(n->descsz ? n->descsz : 1);
    memcpy(c->auxv, n->desc, n->descsz);
    return 0;
}

static int parse_notes(struct core *c, const unsigned char *buf, size_t len, size_t align,
                       size_t *count, struct pserr *err)
{
    size_t pos = 0;
    struct note n;
    int r;
    while ((r = note_next(buf, len, align, &pos, &n)) == 1) {
        if (++*count > CORE_MAX_NOTES)
            return pserr_set(err, EINVAL, "core %s is corrupt: more than %d notes", c->path,
                             CORE_MAX_NOTES);
        int bad = 0;
        if (note_named(&n, "CORE")) {
            if (n.type == NT_PRSTATUS)
                bad = note_prstatus(c, &n);
            else if (n.type == NT_PRPSINFO)
                bad = note_prpsinfo(c, &n);
            else if (n.type == NT_FILE && !c->nnf)
                bad = note_file(c, &n);
            else if (n.type == NT_AUXV)
                bad = note_auxv(c, &n);
        }
        if (bad)
            return pserr_set(err, EINVAL, "core %s is corrupt: a bad note of type %u (%u bytes)",
                             c->path, n.type, n.descsz);
    }
    if (r < 0)
        return pserr_set(err, EINVAL, "core %s is corrupt: a note runs past its segment",
                         c->path);
    return 0;
}

/* ---- the ELF header and segments ---- */

static const char *machine_name(unsigned m)
{
    switch (m) {
    case EM_386: return "i386";
    case EM_ARM: return "arm";
    case EM_AARCH64: return "aarch64";
    case EM_PPC64: return "ppc64";
    case EM_S390: return "s390x";
    case EM_RISCV: return "riscv";
    case EM_MIPS: return "mips";
    default: return NULL;
    }
}

static int check_header(struct core *c, const Elf64_Ehdr *eh, struct pserr *err)
{
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
        return pserr_set(err, ENOEXEC, "%s is not a core file (not ELF): give a core written "
                         "by gcore or the kernel", c->path);
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
        eh->e_machine != EM_X86_64) {
        const Elf32_Ehdr *e32 = (const void *)eh;
        unsigned m = eh->e_ident[EI_CLASS] == ELFCLASS32 ? e32->e_machine : eh->e_machine;
        const char *name = machine_name(m);
        char num[32];
        snprintf(num, sizeof(num), "machine %u", m);
        return pserr_set(err, EXDEV, "core %s is from another architecture (%s%s): pystrobe "
                         "reads x86_64 cores", c->path, name ? name : num,
                         eh->e_ident[EI_CLASS] == ELFCLASS32 ? ", 32-bit" : "");
    }
    if (eh->e_type != ET_CORE)
        return pserr_set(err, ENOEXEC, "%s is an ELF file but not a core (type %u): give a "
                         "core written by gcore or the kernel", c->path, eh->e_type);
    if (eh->e_phentsize != sizeof(Elf64_Phdr))
        return pserr_set(err, EINVAL, "core %s is corrupt: program headers of %u bytes",
                         c->path, eh->e_phentsize);
    return 0;
}

/* e_phnum, or with PN_XNUM the real count from section header 0. */
static int segment_count(struct core *c, const Elf64_Ehdr *eh, size_t *n, struct pserr *err)
{
    *n = eh->e_phnum;
    if (eh->e_phnum != PN_XNUM)
        return 0;
    Elf64_Shdr sh;
    if (eh->e_shoff == 0 || eh->e_shoff > c->size || c->size - eh->e_shoff < sizeof(sh) ||
        core_read_at(c->fd, eh->e_shoff, &sh, sizeof(sh)) < 0)
        return pserr_set(err, EINVAL, "core %s is corrupt: no count of its segments", c->path);
    *n = sh.sh_info;
    return 0;
}

static int seg_cmp(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

static int nfile_cmp(const void *a, const void *b)
{
    const struct nfile *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int truncated(struct core *c, uint64_t need, struct pserr *err)
{
    return pserr_set(err, EIO, "core %s was cut short: %" PRIu64 " bytes are missing (the "
                     "file has %" PRIu64 " of %" PRIu64 "); the core is truncated, write it "
                     "again with room on the disk", c->path, need - c->size, c->size, need);
}

static int load_segments(struct core *c, const Elf64_Ehdr *eh, struct pserr *err)
{
    size_t n;
    int ret;
    if ((ret = segment_count(c, eh, &n, err)) < 0)
        return ret;
    if (n == 0 || n > CORE_MAX_SEGMENTS)
        return pserr_set(err, EINVAL, "core %s is corrupt: %zu segments", c->path, n);
    if (eh->e_phoff > c->size || (c->size - eh->e_phoff) / sizeof(Elf64_Phdr) < n)
        return truncated(c, eh->e_phoff + n * sizeof(Elf64_Phdr), err);
    Elf64_Phdr *ph = xmalloc(n * sizeof(*ph));
    unsigned char *notes = NULL;
    if ((ret = core_read_at(c->fd, eh->e_phoff, ph, n * sizeof(*ph))) < 0) {
        ret = pserr_set(err, -ret, "cannot read core %s: %s", c->path, strerror(-ret));
        goto out;
    }
    /* A core cut short is told by its last byte, before anything is read. */
    uint64_t need = 0;
    for (size_t i = 0; i < n; i++) {
        if (ph[i].p_type != PT_LOAD && ph[i].p_type != PT_NOTE)
            continue;
        if (ph[i].p_offset + ph[i].p_filesz < ph[i].p_offset) {
            ret = pserr_set(err, EINVAL, "core %s is corrupt: segment %zu overflows", c->path, i);
            goto out;
        }
        need = MAX(need, ph[i].p_offset + ph[i].p_filesz);
    }
    if (need > c->size) {
        ret = truncated(c, need, err);
        goto out;
    }
    c->segs = xcalloc(n, sizeof(*c->segs));
    size_t nnotes = 0, note_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const Elf64_Phdr *p = &ph[i];
        if (p->p_type == PT_LOAD && p->p_memsz > 0 && p->p_vaddr + p->p_memsz > p->p_vaddr) {
            c->segs[c->nsegs++] = (struct seg){p->p_vaddr, p->p_memsz, p->p_offset,
                MIN(p->p_filesz, p->p_memsz),
                (p->p_flags & PF_R ? MEM_R : 0) | (p->p_flags & PF_W ? MEM_W : 0) |
                (p->p_flags & PF_X ? MEM_X : 0)};
        } else if (p->p_type == PT_NOTE && p->p_filesz > 0) {
            note_bytes += p->p_filesz;
            if (note_bytes > CORE_MAX_NOTE_BYTES) {
                ret = pserr_set(err, EINVAL, "core %s is corrupt: notes of more than %u bytes",
                                c->path, CORE_MAX_NOTE_BYTES);
                goto out;
            }
            notes = xrealloc(notes, p->p_filesz);
            if ((ret = core_read_at(c->fd, p->p_offset, notes, p->p_filesz)) < 0) {
                ret = pserr_set(err, -ret, "cannot read core %s: %s", c->path, strerror(-ret));
                goto out;
            }
            if ((ret = parse_notes(c, notes, p->p_filesz, p->p_align == 8 ? 8 : 4, &nnotes,
                                   err)) < 0)
                goto out;
        }
    }
    qsort(c->segs, c->nsegs, sizeof(*c->segs), seg_cmp);
    if (c->nnf)
        qsort(c->nf, c->nnf, sizeof(*c->nf), nfile_cmp);
    ret = 0;
out:
    free(notes);
    free(ph);
    return ret;
}

/* ---- reading ---- */

/* The segment holding addr, or NULL. */
static const struct seg *find_seg(const struct core *c, uint64_t addr)
{
    size_t lo = 0, hi = c->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->segs[mid].vaddr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const struct seg *s = &c->segs[lo - 1];
    return addr - s->vaddr < s->memsz ? s : NULL;
}

const struct nfile *core_find_nfile(const struct core *c, uint64_t addr)
{
    size_t lo = 0, hi = c->nnf;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->nf[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const struct nfile *f = &c->nf[lo - 1];
    return addr < f->end ? f : NULL;
}

/* Reads bytes the core itself saved, in one segment only.  0 or -EFAULT. */
int core_saved_read(struct core *c, uint64_t addr, void *buf, size_t len)
{
    const struct seg *s = find_seg(c, addr);
    if (!s || addr - s->vaddr > s->filesz || len > s->filesz - (addr - s->vaddr))
        return -EFAULT;
    return core_read_at(c->fd, s->off + (addr - s->vaddr), buf, len) < 0 ? -EFAULT : 0;
}

/* The file's mapped bytes at off: past its end, within the last page, are zeros. */
static int file_read(const struct mfile *f, uint64_t off, void *buf, size_t len)
{
    if (off >= f->size) {
        if (off + len > align_up(f->size, PAGE))
            return -EFAULT;
        memset(buf, 0, len);
        return 0;
    }
    size_t have = (size_t)MIN((uint64_t)len, f->size - off);
    if (core_read_at(f->fd, off, buf, have) < 0)
        return -EFAULT;
    if (have < len) {
        if (off + len > align_up(f->size, PAGE))
            return -EFAULT;
        memset((char *)buf + have, 0, len - have);
    }
    return 0;
}


int core_read(struct core *c, uint64_t addr, void *buf, size_t len)
{
    unsigned char *p = buf;
    if (addr + len < addr)
        return -EFAULT;
    while (len > 0) {
        const struct seg *s = find_seg(c, addr);
        size_t n;
        if (s && addr - s->vaddr < s->filesz) {
            n = (size_t)MIN((uint64_t)len, s->filesz - (addr - s->vaddr));
            if (core_read_at(c->fd, s->off + (addr - s->vaddr), p, n) < 0)
                return -EFAULT;
        } else {
            /* Not saved: the file the process had mapped there. */
            const struct nfile *f = core_find_nfile(c, addr);
            if (!f)
                return -EFAULT;
            n = (size_t)MIN((uint64_t)len, f->end - addr);
            if (s)
                n = (size_t)MIN((uint64_t)n, s->vaddr + s->memsz - addr);
            struct mfile *mf = &c->files[f->file];
            if (mf->fd == -1)
                core_open_mfile(c, f->file, NULL);
            if (mf->fd < 0 || f->off + (addr - f->start) < f->off ||
                file_read(mf, f->off + (addr - f->start), p, n) < 0)
                return -EFAULT;
        }
        p += n;
        addr += n;
        len -= n;
    }
    return 0;
}

/* ---- opening ---- */

/* The executable: the mapping of its program headers (AT_PHDR), else the first file. */
static void find_exe(struct core *c)
{
    uint64_t phdr = core_auxv_get(c, AT_PHDR);
    const struct nfile *f = phdr ? core_find_nfile(c, phdr) : NULL;
    if (!f && c->nnf)
        f = &c->nf[0];
    c->exe_path = f ? c->files[f->file].path : NULL;
}

/* --exe must be the executable the core shows, when the core saved its build-id. */
static int check_exe(struct core *c, struct pserr *err)
{
    struct stat st;
    int fd = open_regular(c->exe, &st);
    if (fd == -EINVAL)
        return pserr_set(err, EINVAL, "--exe %s is %s, not a regular file: give the Python "
                         "executable the core's process ran", c->exe, file_kind(st.st_mode));
    if (fd < 0)
        return pserr_set(err, -fd, "cannot read --exe %s: %s", c->exe, strerror(-fd));
    close(fd);
    for (size_t i = 0; c->exe_path && i < c->nfiles; i++) {
        if (strcmp(c->files[i].path, c->exe_path) != 0)
            continue;
        fd = core_open_candidate(c, i, c->exe, err);
        if (fd < 0 && fd != -ESTALE)
            return pserr_set(err, -fd, "cannot read --exe %s: %s", c->exe, strerror(-fd));
        if (fd < 0)
            return fd;
        close(fd);
    }
    return 0;
}

const char *core_root(const struct core *c)
{
    return c->root;
}

int core_open_in(const char *path, const char *exe, const char *root, struct core **out,
                 struct pserr *err)
{
    struct core *c = xcalloc(1, sizeof(*c));
    c->path = xstrdup(path);
    c->exe = exe ? xstrdup(exe) : NULL;
    c->root = root ? xstrdup(root) : NULL;
    c->fd = -1;
    int ret;
    struct stat st;
    if (root && stat(root, &st) < 0) {
        int e = errno;
        ret = pserr_set(err, e, "cannot use --root %s: %s", root, strerror(e));
        goto fail;
    }
    if (root && !S_ISDIR(st.st_mode)) {
        ret = pserr_set(err, ENOTDIR, "--root %s is %s, not a directory: give the file system "
                        "the core's process saw", root, file_kind(st.st_mode));
        goto fail;
    }
    c->fd = open_regular(path, &st);
    if (c->fd == -EINVAL) {
        ret = pserr_set(err, ENOEXEC, "%s is not a core file (%s, not a regular file): give a "
                        "core written by gcore or the kernel", path, file_kind(st.st_mode));
        goto fail;
    }
    if (c->fd < 0) {
        ret = pserr_set(err, -c->fd, "cannot open core %s: %s", path, strerror(-c->fd));
        goto fail;
    }
    c->size = (uint64_t)st.st_size;
    Elf64_Ehdr eh;
    memset(&eh, 0, sizeof(eh));
    if (c->size < sizeof(eh) || core_read_at(c->fd, 0, &eh, sizeof(eh)) < 0) {
        if (c->size >= SELFMAG && core_read_at(c->fd, 0, &eh, SELFMAG) == 0 &&
            memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0)
            ret = truncated(c, sizeof(eh), err);
        else
            ret = pserr_set(err, ENOEXEC, "%s is not a core file (not ELF): give a core "
                            "written by gcore or the kernel", path);
        goto fail;
    }
    if ((ret = check_header(c, &eh, err)) < 0 || (ret = load_segments(c, &eh, err)) < 0)
        goto fail;
    if (c->nthreads == 0) {
        ret = pserr_set(err, EINVAL, "core %s holds no thread (no NT_PRSTATUS note)", path);
        goto fail;
    }
    find_exe(c);
    if (c->exe && (ret = check_exe(c, err)) < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    core_free(c);
    return ret;
}

void core_free(struct core *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    for (size_t i = 0; i < c->nfiles; i++) {
        if (c->files[i].fd >= 0)
            close(c->files[i].fd);
        free(c->files[i].path);
    }
    free(c->files);
    free(c->nf);
    free(c->root);
    free(c->segs);
    free(c->threads);
    free(c->auxv);
    free(c->path);
    free(c->exe);
    free(c);
}

/* ---- what the core knows ---- */

/*
 * The permissions of a file's mapping that the core kept no segment of
 * (gdb leaves read-only file mappings out, program headers and all): those
 * of the file's own PT_LOAD holding that offset (code is executable).
 * MEM_R when the file cannot say.
 */
static unsigned file_perms(struct core *c, size_t file, uint64_t off)
{
    struct pserr err;
    int fd = core_open_mfile(c, file, &err);
    Elf64_Ehdr eh;
    if (fd < 0 || pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256)
        return MEM_R;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) != (ssize_t)sizeof(ph))
            break;
        uint64_t lo = ph.p_offset & ~(uint64_t)0xfff;
        if (ph.p_type == PT_LOAD && off >= lo && off < ph.p_offset + ph.p_filesz)
            return MEM_R | ((ph.p_flags & PF_X) ? MEM_X : 0u) | ((ph.p_flags & PF_W) ? MEM_W : 0u);
    }
    return MEM_R;
}

static int region_cmp(const void *a, const void *b)
{
    const struct mem_region *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

int core_maps(struct core *c, struct mem_maps *maps)
{
    size_t cap = c->nsegs + c->nnf + 1, n = 0;
    struct mem_region *v = xcalloc(cap, sizeof(*v));
    /* Every segment, with the file NT_FILE says is mapped there; the inode
     * is the file's number in the core, so that one file's mappings match. */
    for (size_t i = 0; i < c->nsegs; i++) {
        const struct seg *s = &c->segs[i];
        const struct nfile *f = core_find_nfile(c, s->vaddr);
        struct mem_region *r = &v[n++];
        r->start = s->vaddr;
        r->end = s->vaddr + s->memsz;
        r->perms = s->perms;
        r->path = xstrdup(f ? c->files[f->file].path : "");
        if (f) {
            r->offset = f->off + (s->vaddr - f->start);
            r->inode = f->file + 1;
        }
    }
    /* Files mapped where the core has no segment at all. */
    for (size_t i = 0; i < c->nnf; i++) {
        const struct nfile *f = &c->nf[i];
        const struct seg *s = find_seg(c, f->start);
        if (s)
            continue;
        struct mem_region *r = &v[n++];
        *r = (struct mem_region){f->start, f->end, f->off, file_perms(c, f->file, f->off),
                                 f->file + 1, 0, 0, xstrdup(c->files[f->file].path)};
    }
    qsort(v, n, sizeof(*v), region_cmp);
    maps->v = v;
    maps->n = n;
    return 0;
}

const struct core_thread *core_threads(const struct core *c, size_t *n)
{
    *n = c->nthreads;
    return c->threads;
}

const struct core_psinfo *core_psinfo(const struct core *c)
{
    return c->has_ps ? &c->ps : NULL;
}

pid_t core_pid(const struct core *c)
{
    if (c->has_ps && c->ps.pid > 0)
        return c->ps.pid;
    return c->nthreads ? c->threads[0].tid : 0;
}

const uint64_t *core_auxv(const struct core *c, size_t *n)
{
    *n = c->nauxv;
    return c->auxv;
}

uint64_t core_auxv_get(const struct core *c, uint64_t type)
{
    for (size_t i = 0; i < c->nauxv; i++)
        if (c->auxv[2 * i] == type)
            return c->auxv[2 * i + 1];
    return 0;
}

const char *core_exe(const struct core *c)
{
    return c->exe_path;
}

int core_owner(const struct core *c, uid_t *uid, gid_t *gid)
{
    struct stat st;
    if (fstat(c->fd, &st) < 0)
        return -errno;
    *uid = st.st_uid;
    *gid = st.st_gid;
    return 0;
}

const char *core_path(const struct core *c)
{
    return c->path;
}
