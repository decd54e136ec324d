/*
 * ELF core files (gdb's gcore, or the kernel's): the memory, mappings,
 * threads and registers of a process as it was when the core was written.
 * The memory source in mem.c reads through this; nothing else needs it.
 *
 * A core is untrusted input: every count, size and string in it is bounded
 * and checked, and nothing is read outside the file.  Bytes the core did not
 * save (read-only file mappings left out, p_filesz < p_memsz) come from the
 * file named in the NT_FILE note, when that file is the one the process had
 * mapped (same GNU build-id, when the core saved the ELF header page).
 */
#ifndef PYSTROBE_CORE_H
#define PYSTROBE_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "common/util.h"
#include "profiler/target/maps.h"

/* Bounds on what a core may hold. */
#define CORE_MAX_SEGMENTS (1u << 20)
#define CORE_MAX_NOTES 200000
#define CORE_MAX_THREADS 65536
#define CORE_MAX_FILES (1u << 20)
#define CORE_MAX_NOTE_BYTES (256u << 20)

/* One thread (NT_PRSTATUS), its registers exactly as the core holds them. */
struct core_thread {
    pid_t tid;
    int signo;                      /* pr_cursig (the signal it was stopped by), 0 none */
    struct user_regs_struct regs;
};

/* The process (NT_PRPSINFO). */
struct core_psinfo {
    pid_t pid, ppid;
    uid_t uid;
    char state;         /* 'R', 'S', ... */
    char fname[17];     /* its name (comm), NUL-terminated */
    char args[81];      /* the start of its command line, NUL-terminated */
};

struct core;

/*
 * Opens and checks the core at path.  exe, when not NULL, stands for the
 * executable and is where missing mapped files are looked for (same base
 * name, same folder).  root, when not NULL, is the file system the process
 * saw (a container's, a chroot's) as a directory here: each file the core
 * names is looked for under it first (links on the way resolved inside it),
 * then as named.  Returns 0 with *out set, or a negative errno with err
 * saying what is wrong: -ENOEXEC not an ELF core, -EXDEV another
 * architecture, -EIO a truncated core, -EINVAL a corrupt one, -ENOTDIR a
 * root that is no directory, or the errno of opening the file.
 */
int core_open_in(const char *path, const char *exe, const char *root, struct core **out,
                 struct pserr *err);
/* The root given to core_open_in, or NULL. */
const char *core_root(const struct core *c);
/* Closes the core and every file it opened; core_free(NULL) does nothing. */
void core_free(struct core *c);

/* Reads len bytes at addr as the process had them: 0, or -EFAULT. */
int core_read(struct core *c, uint64_t addr, void *buf, size_t len);

/* The mappings (sorted by address; paths owned by maps).  0 or a negative errno. */
int core_maps(struct core *c, struct mem_maps *maps);

/* The threads, in the core's order (the first one is the one that was signalled). */
const struct core_thread *core_threads(const struct core *c, size_t *n);
/* The process; NULL when the core has no NT_PRPSINFO. */
const struct core_psinfo *core_psinfo(const struct core *c);

/* The owner of the core file as opened (fstat: not its name again).  0 or -errno. */
int core_owner(const struct core *c, uid_t *uid, gid_t *gid);
/* The process's id: NT_PRPSINFO's, else the first thread's. */
pid_t core_pid(const struct core *c);
/* NT_AUXV as (type, value) pairs: *n pairs, NULL when absent. */
const uint64_t *core_auxv(const struct core *c, size_t *n);
/* The value of auxv entry type, or 0. */
uint64_t core_auxv_get(const struct core *c, uint64_t type);

/* The executable's path as mapped (from AT_PHDR, else the first NT_FILE entry), or NULL. */
const char *core_exe(const struct core *c);
/* The core's own path. */
const char *core_path(const struct core *c);

/*
 * Opens the file behind mapping r: --exe for the executable, else the path
 * the core names (under --root first), else the same base name beside
 * --exe; the file must carry
 * the build-id the core saw in memory for it.  Returns an fd (the caller
 * closes it), or a negative errno with err filled (-ENOENT: not found;
 * -ESTALE: the file found is another build).
 */
int core_open_mapped(struct core *c, const struct mem_region *r, struct pserr *err);

/*
 * Finds the GNU build-id note in notes[0..len) (a note segment's bytes, with
 * its alignment, 4 or 8).  Copies up to max bytes to id and returns the id's
 * length, or -ENOENT.  (Exposed for tests.)
 */
int core_note_build_id(const unsigned char *notes, size_t len, size_t align, unsigned char *id,
                       size_t max);

#endif
