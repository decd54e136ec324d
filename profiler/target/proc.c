#include "profiler/target/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* Reads up to len-1 bytes of a small file, NUL-terminated.  Bytes read, or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got + 1 < len) {
        ssize_t r = read(fd, buf + got, len - 1 - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

int proc_check(pid_t pid)
{
    char path[64];
    struct stat st;
    if (pid <= 0)
        return -ESRCH;
    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    if (stat(path, &st) < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    return 0;
}

void proc_cmdline(pid_t pid, struct strbuf *out)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    ssize_t n = read_small(path, buf, sizeof(buf));
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        sb_addc(out, c == 0 ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c);
    }
}

int proc_comm(pid_t pid, pid_t tid, char *buf, size_t len)
{
    char path[80];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
    ssize_t n = read_small(path, buf, len);
    if (n < 0)
        return (int)n;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0'))
        buf[--n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20)
            buf[i] = '?';
    return 0;
}

/* The last NSpid value in a status file, or fallback. */
static pid_t last_nspid(const char *path, pid_t fallback)
{
    char buf[8192];
    pid_t pid = fallback;
    if (read_small(path, buf, sizeof(buf)) < 0)
        return pid;
    const char *p = strstr(buf, "\nNSpid:");
    if (!p)
        return pid;
    p += 7;
    long last = pid;
    for (;;) {
        char *end;
        while (*p == ' ' || *p == '\t')
            p++;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        last = v;
        p = end;
    }
    return (pid_t)last;
}

pid_t proc_ns_pid(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    return last_nspid(path, pid);
}

pid_t proc_task_ns_tid(pid_t pid, pid_t tid)
{
    char path[80];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
    return last_nspid(path, tid);
}

int proc_tid_from_ns(pid_t pid, pid_t ns_tid, pid_t *tid)
{
    pid_t *tasks = NULL;
    int n = proc_tasks(pid, &tasks), ret = -ENOENT;
    for (int i = 0; i < n && ret < 0; i++) {
        if (proc_task_ns_tid(pid, tasks[i]) == ns_tid) {
            *tid = tasks[i];
            ret = 0;
        }
    }
    free(tasks);
    return ret;
}

int proc_tasks(pid_t pid, pid_t **tids)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? -ESRCH : -errno;
    pid_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long t;
        if (de->d_name[0] == '.' || parse_long(de->d_name, &t) < 0 || t <= 0)
            continue;
        GROW(v, cap, n + 1);
        v[n++] = (pid_t)t;
    }
    closedir(d);
    *tids = v;
    return (int)n;
}

int proc_children(pid_t pid, pid_t **pids, size_t *n, size_t *cap, size_t max)
{
    pid_t *tids;
    int nt = proc_tasks(pid, &tids);
    if (nt < 0)
        return nt;
    size_t before = *n;
    for (int i = 0; i < nt && *n < max; i++) {
        char path[96], buf[4096];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)tids[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = '\0';
        /* A full buffer may end in a cut number: it is left out. */
        char *end = len == (ssize_t)sizeof(buf) - 1 ? strrchr(buf, ' ') : buf + len;
        for (char *p = buf; end && p < end && *n < max;) {
            char *q;
            long v = strtol(p, &q, 10);
            if (q == p)
                break;
            if (v > 0 && v <= INT32_MAX) {
                GROW(*pids, *cap, *n + 1);
                (*pids)[(*n)++] = (pid_t)v;
            }
            p = q;
        }
    }
    free(tids);
    return (int)(*n - before);
}

/* Field 22 of a stat file, starttime, from the ')' that ends the name. */
static int stat_start_time(const char *close_paren, uint64_t *start_time)
{
    /* The 20th field after the state. */
    unsigned long long st = 0;
    const char *p = close_paren + 2;
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p || sscanf(p, "%llu", &st) != 1)
        return -EINVAL;
    *start_time = st;
    return 0;
}

int proc_identity(pid_t pid, uint64_t *start_time, char *comm, size_t len)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -ESRCH;
    buf[n] = '\0';
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    if (!open_paren || !close_paren || close_paren < open_paren)
        return -EINVAL;
    if (comm && len) {
        size_t cl = (size_t)(close_paren - open_paren - 1);
        if (cl >= len)
            cl = len - 1;
        memcpy(comm, open_paren + 1, cl);
        comm[cl] = '\0';
    }
    return stat_start_time(close_paren, start_time);
}

int proc_state(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    int st = proc_stat_state(fd, NULL);
    close(fd);
    return st;
}

/* Opens /proc/PID/task/TID/NAME: an fd or a negative errno. */
static int open_task_file(pid_t pid, pid_t tid, const char *name)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)pid, (int)tid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Reads an open /proc file again from its start into buf (NUL-terminated):
 * its length, or a negative errno (-ESRCH when empty: the task is gone). */
static ssize_t reread(int fd, char *buf, size_t cap)
{
    ssize_t n = pread(fd, buf, cap - 1, 0);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -ESRCH;
    buf[n] = '\0';
    return n;
}

int proc_open_stat(pid_t pid, pid_t tid)
{
    return open_task_file(pid, tid, "stat");
}

int proc_stat_state(int fd, uint64_t *cpu_ticks)
{
    char buf[1024];
    ssize_t n = reread(fd, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    /* The name may hold spaces and parentheses: the state follows the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2])
        return -EINVAL;
    int state = (unsigned char)p[2];
    if (cpu_ticks) {
        /* Fields after the state: ppid pgrp session tty_nr tpgid flags minflt
         * cminflt majflt cmajflt utime stime. */
        unsigned long long ut = 0, st = 0;
        if (sscanf(p + 3, " %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
            *cpu_ticks = ut + st;
        else
            *cpu_ticks = 0;
    }
    return state;
}

uint64_t proc_boot_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int proc_stat_started_before(int fd, uint64_t boot_ns)
{
    char buf[1024];
    uint64_t st;
    long hz = sysconf(_SC_CLK_TCK);
    if (fd < 0 || boot_ns == 0 || hz <= 0 || hz > 1000000000L || reread(fd, buf, sizeof(buf)) < 0)
        return 0;
    const char *p = strrchr(buf, ')');
    if (!p || stat_start_time(p, &st) < 0)
        return 0;
    /* The kernel rounds down to a tick: the task started before tick st + 1,
     * which must not be later than boot_ns ((st + 1) * tick <= boot_ns). */
    uint64_t tick = 1000000000u / (uint64_t)hz;
    return st < boot_ns / tick;
}

int proc_open_schedstat(pid_t pid, pid_t tid)
{
    return open_task_file(pid, tid, "schedstat");
}

int proc_schedstat_read(int fd, uint64_t *run_ns, uint64_t *switches)
{
    char buf[96];
    ssize_t n = reread(fd, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    /* "RUN_NS WAIT_NS SWITCHES" */
    unsigned long long run, wait, sw;
    if (sscanf(buf, "%llu %llu %llu", &run, &wait, &sw) != 3)
        return -EINVAL;
    *run_ns = run;
    *switches = sw;
    return 0;
}

int proc_open_syscall(pid_t pid, pid_t tid)
{
    return open_task_file(pid, tid, "syscall");
}

int proc_syscall_parse(const char *buf, size_t n, long *nr, uint64_t *arg0)
{
    char tmp[64];
    if (n >= sizeof(tmp))
        n = sizeof(tmp) - 1;
    memcpy(tmp, buf, n);
    tmp[n] = '\0';
    if (strncmp(tmp, "running", 7) == 0)
        return 1;
    /* "NR ARG0 ARG1 ... SP PC", numbers in hex after the first; "-1 SP PC"
     * outside a system call. */
    char *end;
    errno = 0;
    long v = strtol(tmp, &end, 10);
    if (end == tmp || errno || (*end != ' ' && *end != '\n'))
        return -EINVAL;
    *nr = v;
    *arg0 = 0;
    if (v >= 0) {
        char *p = end;
        unsigned long long a = strtoull(p, &end, 16);
        if (end == p)
            return -EINVAL;
        *arg0 = a;
    }
    return 0;
}

int proc_syscall_read(int fd, long *nr, uint64_t *arg0)
{
    char buf[64];
    ssize_t n = reread(fd, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    return proc_syscall_parse(buf, (size_t)n, nr, arg0);
}

static int same_file(int fd, const struct mem_region *r)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return 0;
    return st.st_ino == r->inode && major(st.st_dev) == r->dev_major &&
           minor(st.st_dev) == r->dev_minor;
}

int proc_open_mapped(pid_t pid, const struct mem_region *r, int is_exe)
{
    char path[4200];
    struct stat st;
    int fd, err = -ENOENT;
    static const char deleted[] = " (deleted)";
    size_t plen = strlen(r->path);
    int is_deleted = plen > sizeof(deleted) - 1 &&
                     strcmp(r->path + plen - (sizeof(deleted) - 1), deleted) == 0;
    if (r->path[0] == '/' && !is_deleted) {
        snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid, r->path);
        fd = open_regular(path, &st);
        if (fd >= 0) {
            if (same_file(fd, r))
                return fd;
            close(fd);
        } else {
            err = fd;
        }
    }
    snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, r->start,
             r->end);
    fd = open_regular(path, &st);
    if (fd >= 0) {
        if (same_file(fd, r))
            return fd;
        close(fd);
    } else if (err == -ENOENT) {
        err = fd;
    }
    if (is_exe) {
        snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
        fd = open_regular(path, &st);
        if (fd >= 0) {
            if (same_file(fd, r))
                return fd;
            close(fd);
        }
    }
    return err;
}

int proc_is_exe(pid_t pid, const char *path)
{
    char link[64], target[4096];
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n < 0)
        return 0;
    target[n] = '\0';
    return strcmp(target, path) == 0;
}

int proc_ptrace_scope(void)
{
    char buf[32];
    if (read_small("/proc/sys/kernel/yama/ptrace_scope", buf, sizeof(buf)) <= 0)
        return -1;
    return atoi(buf);
}
