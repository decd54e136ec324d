/* Reading /proc: the process, its threads, and files it has mapped. */
#ifndef PYSTROBE_PROC_H
#define PYSTROBE_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"
#include "profiler/target/maps.h"

/* 0 when /proc/PID exists, else a negative errno (-ESRCH). */
int proc_check(pid_t pid);

/* The command line, arguments joined by spaces (control bytes as '?'); "" if unreadable. */
void proc_cmdline(pid_t pid, struct strbuf *out);

/* The thread's name (/proc/PID/task/TID/comm) into buf; 0 or a negative errno. */
int proc_comm(pid_t pid, pid_t tid, char *buf, size_t len);

/* The process's id inside its own PID namespace (last NSpid value), or pid. */
pid_t proc_ns_pid(pid_t pid);
/* The id of a task of pid inside pid's own PID namespace (its last NSpid value). */
pid_t proc_task_ns_tid(pid_t pid, pid_t tid);
/*
 * Translates ns_tid, a thread id as pid's own PID namespace numbers it, into
 * ours by searching pid's tasks.  0 with *tid set, or -ENOENT.
 */
int proc_tid_from_ns(pid_t pid, pid_t ns_tid, pid_t *tid);

/*
 * Lists /proc/PID/task into *tids (allocated, caller frees).  Returns the
 * number of threads, or a negative errno.
 */
int proc_tasks(pid_t pid, pid_t **tids);

/*
 * Appends the children of every thread of pid (/proc/PID/task/TID/children)
 * to *pids, up to max in all.  Returns how many were appended, or a
 * negative errno (-ESRCH: pid is gone).
 */
int proc_children(pid_t pid, pid_t **pids, size_t *n, size_t *cap, size_t max);

/*
 * A process's start time (clock ticks after boot: with the pid, it tells a
 * process from a later one with the same pid) and name (comm).  0 or a
 * negative errno.
 */
int proc_identity(pid_t pid, uint64_t *start_time, char *comm, size_t len);

/* The process's state letter ('R', 'S', 'Z'...), or a negative errno (-ESRCH). */
int proc_state(pid_t pid);

/* Opens /proc/PID/task/TID/stat for repeated proc_stat_state calls. */
int proc_open_stat(pid_t pid, pid_t tid);
/*
 * Re-reads an open stat file: returns the state letter ('R', 'S', 'D', ...),
 * or a negative errno (-ESRCH once the thread is gone).  *cpu_ticks, if not
 * NULL, receives utime + stime.
 */
int proc_stat_state(int fd, uint64_t *cpu_ticks);

/* CLOCK_BOOTTIME now in nanoseconds (the clock of a task's start time in
 * its stat file), or 0 when it cannot be read. */
uint64_t proc_boot_ns(void);
/*
 * 1 when the task of an open stat file (proc_open_stat) started before
 * boot_ns (proc_boot_ns), as told by its start time, which the kernel gives
 * in clock ticks; 0 when it started later, within a tick before, or when
 * that cannot be read (boot_ns 0, the task gone).
 */
int proc_stat_started_before(int fd, uint64_t boot_ns);

/* Opens /proc/PID/task/TID/schedstat for repeated proc_schedstat_read calls. */
int proc_open_schedstat(pid_t pid, pid_t tid);
/*
 * Re-reads an open schedstat file: the thread's time on a CPU (ns) and how
 * many times it was switched in.  0 or a negative errno.
 */
int proc_schedstat_read(int fd, uint64_t *run_ns, uint64_t *switches);

/* Opens /proc/PID/task/TID/syscall for repeated proc_syscall_read calls. */
int proc_open_syscall(pid_t pid, pid_t tid);
/*
 * Re-reads an open syscall file: 1 when the thread is running (no syscall to
 * tell), 0 with *nr and *arg0 set when it is blocked (*nr -1: blocked outside
 * a system call), or a negative errno.
 */
int proc_syscall_read(int fd, long *nr, uint64_t *arg0);
/* Parses the text of a syscall file (n bytes); the same results. */
int proc_syscall_parse(const char *buf, size_t n, long *nr, uint64_t *arg0);

/*
 * Opens the file behind a mapping of pid, such that containers (another mount
 * namespace) and deleted files work: /proc/PID/root/PATH when it is the same
 * file (device and inode match the mapping), else /proc/PID/map_files/START-END,
 * else, for the main executable, /proc/PID/exe.  The target controls what
 * its names lead to: only regular files are opened (never a FIFO or a device
 * put in the file's place).  Returns an fd or a negative errno.
 */
int proc_open_mapped(pid_t pid, const struct mem_region *r, int is_exe);

/* 1 when path is the process's executable (compares with /proc/PID/exe's target). */
int proc_is_exe(pid_t pid, const char *path);

/* Kernel.yama.ptrace_scope, or -1 when Yama is absent. */
int proc_ptrace_scope(void);

#endif
