/*
 * Memory sources: where the bytes of a Python process come from.  Everything
 * that decodes interpreter structures reads through this interface, so the
 * decoders run the same on a live process (process_vm_readv), on a core file
 * and on a plain buffer (unit tests, fuzzing).
 *
 * Every read is all-or-nothing: it returns 0 when all bytes were copied, or a
 * negative errno (-EFAULT for an address that is not mapped, -ESRCH when the
 * process is gone, -EPERM/-EACCES when the kernel refuses).
 */
#ifndef PYSTROBE_MEM_H
#define PYSTROBE_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "profiler/target/maps.h"

/* One piece of a vectored read. */
struct mem_iov {
    uint64_t addr;
    void *buf;
    size_t len;
    int ok; /* set by mem_readv: 1 when all len bytes were copied */
};

struct mem;
struct core;
struct core_thread;
struct core_psinfo;
struct strbuf;
struct pserr;

/* A live process: reads with process_vm_readv. */
struct mem *mem_new_pid(pid_t pid);
/*
 * A core file (profiler/target/core.h): exe, when not NULL, stands for the
 * executable and is where missing mapped files are looked for.  0 with *out
 * set, or a negative errno with err saying what is wrong with the core.
 */
int mem_open_core(const char *path, const char *exe, struct mem **out, struct pserr *err);
/* The same, the process's files looked for under root first (core_open_in). */
int mem_open_core_in(const char *path, const char *exe, const char *root, struct mem **out,
                     struct pserr *err);
/* The core behind the source (owned by it), or NULL; its threads are in task.h. */
struct core *mem_core(struct mem *m);
/* A core's NT_PRPSINFO, or NULL (another source, or none in the core). */
const struct core_psinfo *mem_core_psinfo(struct mem *m);
/* The process's id: the live pid, or the core's; 0 for a buffer. */
pid_t mem_pid(const struct mem *m);
/* Appends the process's command line (a core's: as NT_PRPSINFO kept it); nothing if unknown. */
void mem_cmdline(struct mem *m, struct strbuf *out);
/* 1 when path (as the maps show it) is the process's executable. */
int mem_is_exe(struct mem *m, const char *path);
/*
 * Opens the file behind mapping r, read-only: for a live process as
 * proc_open_mapped does; for a core, --exe for the executable, the path the
 * core names, else the same base name beside --exe, which must carry the
 * build-id the core saw for it.  An fd (the caller closes it), or a negative
 * errno; mem_mapped_error then says why, for a core.
 */
int mem_open_mapped(struct mem *m, const struct mem_region *r);
/* Why a core's last mem_open_mapped failed (one line), or NULL. */
const char *mem_mapped_error(const struct mem *m);

/* An in-process image made of segments added with mem_buffer_add. */
struct mem *mem_new_buffer(void);
/* Copies len bytes to appear at addr (read-write, anonymous).  0 or -EINVAL on overlap. */
int mem_buffer_add(struct mem *m, uint64_t addr, const void *data, size_t len);
/*
 * A buffer that changes while it is read, as a running target does: fn runs
 * after every read call (calls: the count so far) and may change the image
 * with mem_buffer_write (0, or -EFAULT outside the segments).
 */
void mem_buffer_on_read(struct mem *m, void (*fn)(void *ctx, struct mem *m, uint64_t calls),
                        void *ctx);
/* The same after each piece i of n of a mem_readv (a read that moves under it). */
void mem_buffer_on_piece(struct mem *m, void (*fn)(void *ctx, struct mem *m, size_t i, size_t n),
                         void *ctx);
int mem_buffer_write(struct mem *m, uint64_t addr, const void *data, size_t len);
/* Frees the source and its maps; mem_free(NULL) does nothing. */
void mem_free(struct mem *m);

int mem_read(struct mem *m, uint64_t addr, void *buf, size_t len);
/*
 * Reads every piece it can in as few system calls as it can (one per
 * IOV_MAX pieces when all are readable).  Sets each piece's ok flag.  Returns
 * the number of pieces read, or a negative errno when the source itself
 * failed (-ESRCH, -EPERM): unreadable pieces alone are not an error.
 */
int mem_readv(struct mem *m, struct mem_iov *iov, size_t n);

static inline int mem_read_u64(struct mem *m, uint64_t addr, uint64_t *out)
{
    return mem_read(m, addr, out, sizeof(*out));
}

/*
 * Re-reads the list of mappings (for a live process, /proc/PID/maps) and
 * returns it; the list stays owned by m and is valid until the next call.
 */
int mem_refresh_maps(struct mem *m, const struct mem_maps **out);
/* The mappings as last read (refreshing once if never read). */
const struct mem_maps *mem_maps(struct mem *m);
/* The mapping holding addr, or NULL. */
const struct mem_region *mem_find_region(struct mem *m, uint64_t addr);
/* 1 when [addr, addr+len) lies in readable mappings (per the last maps read). */
int mem_readable(struct mem *m, uint64_t addr, size_t len);

/*
 * How many read system calls this source made (a buffer source counts each
 * mem_read and each mem_readv as one, as a live process would need).
 */
uint64_t mem_read_calls(const struct mem *m);

/* Parses the text of /proc/PID/maps into maps (for tests).  0 or -EINVAL. */
int mem_parse_maps(const char *text, struct mem_maps *maps);
void mem_maps_release(struct mem_maps *maps);

#endif
