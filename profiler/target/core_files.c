#include "profiler/target/core.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profiler/target/core_impl.h"

/* ---- mapped files ---- */

/* The build-id the core saw in memory for file i (its ELF header page), or -ENOENT. */
static int saved_build_id(struct core *c, size_t i, unsigned char *id)
{
    const struct nfile *f = NULL;
    for (size_t k = 0; k < c->nnf && !f; k++)
        if (c->nf[k].file == i && c->nf[k].off == 0)
            f = &c->nf[k];
    Elf64_Ehdr eh;
    if (!f || core_saved_read(c, f->start, &eh, sizeof(eh)) < 0 ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
        eh.e_phnum == 0 || eh.e_phnum > ELF_PHNUM_MAX || eh.e_phoff > PAGE)
        return -ENOENT;
    Elf64_Phdr ph[ELF_PHNUM_MAX];
    if (core_saved_read(c, f->start + eh.e_phoff, ph, eh.e_phnum * sizeof(Elf64_Phdr)) < 0)
        return -ENOENT;
    uint64_t bias = 0;
    int based = 0;
    for (size_t k = 0; k < eh.e_phnum && !based; k++)
        if (ph[k].p_type == PT_LOAD && ph[k].p_offset == 0)
            bias = f->start - (ph[k].p_vaddr & ~(uint64_t)(PAGE - 1)), based = 1;
    unsigned char *buf = xmalloc(ELF_NOTE_MAX);
    int ret = -ENOENT;
    for (size_t k = 0; k < eh.e_phnum && based && ret < 0; k++) {
        if (ph[k].p_type != PT_NOTE || ph[k].p_filesz == 0 || ph[k].p_filesz > ELF_NOTE_MAX ||
            core_saved_read(c, bias + ph[k].p_vaddr, buf, ph[k].p_filesz) < 0)
            continue;
        ret = core_note_build_id(buf, ph[k].p_filesz, ph[k].p_align == 8 ? 8 : 4, id,
                                 BUILD_ID_MAX);
    }
    free(buf);
    return ret;
}

/* The build-id of the ELF file on fd, or -ENOENT. */
static int file_build_id(int fd, unsigned char *id)
{
    Elf64_Ehdr eh;
    if (core_read_at(fd, 0, &eh, sizeof(eh)) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
        eh.e_phnum == 0 || eh.e_phnum > ELF_PHNUM_MAX)
        return -ENOENT;
    Elf64_Phdr ph[ELF_PHNUM_MAX];
    if (core_read_at(fd, eh.e_phoff, ph, eh.e_phnum * sizeof(Elf64_Phdr)) < 0)
        return -ENOENT;
    unsigned char *buf = xmalloc(ELF_NOTE_MAX);
    int ret = -ENOENT;
    for (size_t k = 0; k < eh.e_phnum && ret < 0; k++) {
        if (ph[k].p_type != PT_NOTE || ph[k].p_filesz == 0 || ph[k].p_filesz > ELF_NOTE_MAX ||
            core_read_at(fd, ph[k].p_offset, buf, ph[k].p_filesz) < 0)
            continue;
        ret = core_note_build_id(buf, ph[k].p_filesz, ph[k].p_align == 8 ? 8 : 4, id,
                                 BUILD_ID_MAX);
    }
    free(buf);
    return ret;
}

static void hex(char *out, const unsigned char *id, int n)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < n; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[2 * (n > 0 ? n : 0)] = '\0';
}

/* The path NT_FILE names, without the " (deleted)" of a file removed since. */
static char *live_path(const char *path)
{
    static const char deleted[] = " (deleted)";
    size_t n = strlen(path), k = sizeof(deleted) - 1;
    if (n > k && strcmp(path + n - k, deleted) == 0)
        n -= k;
    return xstrndup(path, n);
}

/*
 * Opens candidate `path` for file i: an fd when its build-id is the one in
 * the core (or either is unknown), -ESTALE with err filled when it differs.
 */
int core_open_candidate(struct core *c, size_t i, const char *path, struct pserr *err)
{
    return core_open_candidate_in(c, i, NULL, path, err);
}

int core_open_candidate_in(struct core *c, size_t i, const char *root, const char *path,
                           struct pserr *err)
{
    struct stat st;
    int fd = root ? open_regular_in(root, path, &st) : open_regular(path, &st);
    if (fd < 0)
        return fd;
    unsigned char want[BUILD_ID_MAX], have[BUILD_ID_MAX];
    int nw = saved_build_id(c, i, want);
    if (nw < 0)
        return fd;
    int nh = file_build_id(fd, have);
    if (nh == nw && memcmp(want, have, (size_t)nw) == 0)
        return fd;
    close(fd);
    char w[2 * BUILD_ID_MAX + 1], h[2 * BUILD_ID_MAX + 1];
    hex(w, want, nw);
    hex(h, have, nh);
    return pserr_set(err, ESTALE, "%s%s%.300s is not the file that process %d had mapped as "
                     "%.300s (build-id %s in core %.300s, %s in the file): give the right "
                     "one with --exe%s", root ? root : "", root ? "/" : "",
                     path + (root && *path == '/'), (int)core_pid(c), c->files[i].path, w, c->path,
                     nh > 0 ? h : "none", c->root ? "" : ", or --root DIR for a process that saw "
                     "another file system (a container, a chroot)");
}

/* Opens file i of the core by the rules of core_open_mapped.  An fd or a negative errno. */
static int open_file_of(struct core *c, size_t i, struct pserr *err)
{
    const char *orig = c->files[i].path;
    if (c->exe && c->exe_path && strcmp(orig, c->exe_path) == 0)
        return core_open_candidate(c, i, c->exe, err);
    char *path = live_path(orig);
    int fd = -ENOENT;
    /* --root: where the process saw its files; as named (a gcore from outside names them so). */
    if (c->root && path[0] == '/')
        fd = core_open_candidate_in(c, i, c->root, path, err);
    if (fd < 0 && fd != -ESTALE && path[0] == '/')
        fd = core_open_candidate(c, i, path, err);
    if (fd < 0 && fd != -ESTALE && c->exe && path[0] == '/') {
        /* Not there any more: beside the executable given. */
        const char *base = path_base(c->exe);
        struct strbuf sb = STRBUF_INIT;
        sb_add(&sb, c->exe, (size_t)(base - c->exe));
        sb_adds(&sb, path_base(path));
        int alt = core_open_candidate(c, i, sb_str(&sb), err);
        if (alt >= 0 || alt == -ESTALE)
            fd = alt;
        sb_release(&sb);
    }
    if (fd < 0 && fd != -ESTALE)
        pserr_set(err, -fd, "cannot open %.300s, mapped by process %d of core %.300s: %s%s",
                  path, (int)core_pid(c), c->path,
                  fd == -EINVAL ? "not a regular file" : strerror(-fd),
                  c->root ? "" : c->exe ? " (with --root DIR, under the file system the process "
                  "saw)" : " (with --root DIR, under the file system the process saw; with "
                  "--exe, beside the executable)");
    free(path);
    return fd;
}

/* Opens file i once for core_read, keeping its fd. */
int core_open_mfile(struct core *c, size_t i, struct pserr *err)
{
    struct mfile *mf = &c->files[i];
    if (mf->fd != -1)
        return mf->fd;
    int fd = open_file_of(c, i, err);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) < 0) {
        close(fd);
        fd = -errno;
    }
    mf->fd = fd >= 0 ? fd : -2;
    if (fd >= 0)
        mf->size = (uint64_t)st.st_size;
    return fd;
}

int core_open_mapped(struct core *c, const struct mem_region *r, struct pserr *err)
{
    const struct nfile *f = core_find_nfile(c, r->start);
    if (!f || strcmp(c->files[f->file].path, r->path) != 0)
        return pserr_set(err, ENOENT, "core %s maps no file at 0x%" PRIx64, c->path, r->start);
    return open_file_of(c, f->file, err);
}

