/*
 * Inside the core reader: what core.c (notes, segments, reading, opening)
 * and core_files.c (the files a core maps) share.  Not for other modules.
 */
#ifndef PYSTROBE_CORE_IMPL_H
#define PYSTROBE_CORE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "profiler/target/core.h"

/* Bound on a PT_NOTE segment of a mapped ELF file, and on its program headers. */
#define ELF_NOTE_MAX 65536
#define ELF_PHNUM_MAX 512
#define BUILD_ID_MAX 64
#define PAGE 4096u

struct seg {
    uint64_t vaddr, memsz, off, filesz;
    unsigned perms;
};

/* An NT_FILE entry: [start, end) maps file `file` from byte `off`. */
struct nfile {
    uint64_t start, end, off;
    size_t file;
};

/* A distinct mapped file, opened on first use. */
struct mfile {
    char *path;     /* as NT_FILE names it */
    int fd;         /* -1 not opened yet, -2 could not be */
    uint64_t size;
};

struct core {
    int fd;
    char *path, *exe;
    char *root;           /* --root: the file system the process saw, or NULL */
    uint64_t size;
    struct seg *segs;
    size_t nsegs;
    struct nfile *nf;
    size_t nnf, nfcap;
    struct mfile *files;
    size_t nfiles, filecap;
    struct core_thread *threads;
    size_t nthreads, threadcap;
    struct core_psinfo ps;
    int has_ps;
    uint64_t *auxv;
    size_t nauxv;
    const char *exe_path; /* one of files[].path */
};

/* pread of exactly len bytes at off: 0, or a negative errno (-EIO when short). */
int core_read_at(int fd, uint64_t off, void *buf, size_t len);
/* Bytes the core itself saved at addr: 0, or -EFAULT. */
int core_saved_read(struct core *c, uint64_t addr, void *buf, size_t len);
/* The NT_FILE entry mapping addr, or NULL. */
const struct nfile *core_find_nfile(const struct core *c, uint64_t addr);
/* Opens mapped file i (once): 0, or a negative errno with err filled. */
int core_open_mfile(struct core *c, size_t i, struct pserr *err);

/*
 * Opens candidate path for mapped file i: an fd when its build-id is the one
 * the core saw (or either is unknown), -ESTALE with err filled when it differs.
 */
int core_open_candidate(struct core *c, size_t i, const char *path, struct pserr *err);
/* The same for path under root (core_open_in), or as named when root is NULL. */
int core_open_candidate_in(struct core *c, size_t i, const char *root, const char *path,
                           struct pserr *err);

#endif
