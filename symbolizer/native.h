/*
 * Native stacks: unwinding a thread's C stack from its registers with
 * libdw's CFI unwinder, reading memory through a memory source (a live
 * process or a core file), and naming the addresses found: the function and,
 * where debug information exists (the file's own, /usr/lib/debug/.build-id
 * of the target's file system or ours, or .gnu_debuglink), the source file and line; else `[libfoo.so+0x1234]`.
 *
 * libdw rather than libunwind: one library unwinds and symbolizes, it finds
 * separate debug information by build id, and its unwinder takes our own
 * memory reader, so a live process and a core file unwind the same way.
 *
 * Everything read is untrusted: unwinding stops at NATIVE_MAX_FRAMES, at a
 * pc of 0 or one outside every mapping, and at a stack pointer that does not
 * grow.
 */
#ifndef PYSTROBE_NATIVE_H
#define PYSTROBE_NATIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

#include "common/util.h"
#include "profiler/target/mem.h"

#define NATIVE_MAX_FRAMES 512

/*
 * Opens the file behind a mapping (a live process: through /proc; a core:
 * where the file was, or beside the executable given).  Returns an fd the
 * caller closes, or a negative errno.
 */
typedef int (*native_open_fn)(void *ctx, const struct mem_region *r);

struct unwinder;

/* An unwinder over mem's mappings (as mem_maps lists them).  NULL with err set. */
struct unwinder *unwinder_new(struct mem *mem, native_open_fn open_file, void *ctx,
                              struct pserr *err);
void unwinder_free(struct unwinder *u);
/*
 * The target's file system as a directory here (/proc/PID/root; a core's
 * --root), or NULL: debug files are looked for there first, by build-id
 * (ROOT/usr/lib/debug/.build-id/), its links resolved inside it, then here.
 * Before the first unwinder_symbolize.
 */
void unwinder_set_root(struct unwinder *u, const char *root);

/* Re-reads the mappings (new libraries loaded since): 0 or a negative errno. */
int unwinder_refresh(struct unwinder *u);

/*
 * Unwinds from a thread's registers: pcs[0] is the pc it stopped at, then
 * each caller's return address.  Returns 0 with *n set (frames found before
 * the unwinder could go no further), or a negative errno when not even the
 * first frame could be had.
 */
int unwinder_unwind(struct unwinder *u, const struct user_regs_struct *regs, uint64_t *pcs,
                    size_t max, size_t *n);

struct native_sym {
    const char *func;    /* symbol name, NULL when none; valid until unwinder_free */
    uint64_t func_off;   /* pc - the symbol's start */
    const char *module;  /* the mapped file's path, "" when anonymous */
    uint64_t module_off; /* pc - the module's load bias: the address as the ELF file numbers it */
    const char *file;    /* source file from debug information, NULL when none */
    int line;            /* its line, 0 when none */
};

/*
 * Names pc (cached).  leaf: pc is where the thread stopped, not a return
 * address (others are looked up at pc - 1, inside the call).  0, or -ENOENT
 * when pc is in no mapping (out filled with what is known).
 */
int unwinder_symbolize(struct unwinder *u, uint64_t pc, int leaf, struct native_sym *out);

/* Formats a symbol as a frame label: `func (file:line)`, `func`, or `[libfoo.so+0x1234]`. */
void native_label(const struct native_sym *s, struct strbuf *out);

#endif
