/*
 * Native stacks: holding a thread with ptrace (a child of this test: asleep,
 * spinning, signalled, killed, traced by another, stuck in a vfork), then
 * unwinding it with libdw through a live memory source and naming its
 * frames; and unwinding garbage from a buffer source.
 */
#include "symbolizer/native.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <time.h>

#include "test.h"

#include "profiler/target/launch.h"
#include "profiler/target/proc.h"
#include "profiler/target/ptstop.h"

static int ready_fd = -1; /* the child writes 'r' before it sleeps, 'w' after */

/* Inlined into chain_c: the frame must still show chain_c's line, not this one's. */
static inline __attribute__((always_inline)) int sleep_inlined(const struct timespec *ts)
{
    return clock_nanosleep(CLOCK_MONOTONIC, 0, ts, NULL);
}

/* The line in chain_c whose (inlined) call to clock_nanosleep the unwinder must name. */
enum { CHAIN_C_LINE = __LINE__ + 6 };
__attribute__((noinline)) static int chain_c(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    if (write(ready_fd, "r", 1) != 1)
        return -1;
    int r = sleep_inlined(&ts); _Static_assert(__LINE__ == CHAIN_C_LINE, "CHAIN_C_LINE");
    /* Work after the call keeps it from becoming a tail call. */
    if (write(ready_fd, "w", 1) != 1)
        return -1;
    return r;
}

__attribute__((noinline)) static int chain_b(long ms)
{
    int r = chain_c(ms);
    __asm__ volatile("" ::: "memory");
    return r + 1;
}

__attribute__((noinline)) static int chain_a(long ms)
{
    int r = chain_b(ms);
    __asm__ volatile("" ::: "memory");
    return r + 1;
}

/* Spins until killed, counting in memory shared with the parent. */
__attribute__((noinline)) static void spin(volatile uint64_t *counter)
{
    for (;;)
        (*counter)++;
}

/* Reads one byte from fd within ms milliseconds: the byte, or -1. */
static int read_byte(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    char c;
    if (poll(&p, 1, ms) != 1 || read(fd, &c, 1) != 1)
        return -1;
    return (unsigned char)c;
}

/* fork, with the child killed when this test's process ends, however it ends. */
static pid_t fork_child(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
        _exit(9);
    return pid;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The TracerPid line of /proc/PID/status, or -1. */
static long tracer_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long t = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "TracerPid:", 10) == 0)
            t = strtol(line + 10, NULL, 10);
    fclose(f);
    return t;
}

/* The state letter of /proc/PID/stat, or '?'. */
static char state_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    char st = '?';
    if (f) {
        if (fgets(buf, sizeof(buf), f)) {
            char *p = strrchr(buf, ')');
            if (p && p[1] == ' ')
                st = p[2];
        }
        fclose(f);
    }
    return st;
}

static int open_mapped(void *ctx, const struct mem_region *r)
{
    return proc_open_mapped(*(pid_t *)ctx, r, 0);
}

/* Forks a child that runs chain_a(ms), then waits for it to say it sleeps. */
static pid_t fork_sleeper(long ms, int *fd)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork_child();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        ready_fd = p[1];
        chain_a(ms);
        for (;;)
            pause();
    }
    close(p[1]);
    *fd = p[0];
    REQUIRE(read_byte(p[0], 5000) == 'r');
    sleep_ms(20); /* into the sleep itself */
    return pid;
}

static void end_child(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    CHECK_INT(waitpid(pid, &st, 0), pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

struct frames {
    size_t n;
    uint64_t pcs[NATIVE_MAX_FRAMES];
    struct native_sym syms[NATIVE_MAX_FRAMES];
    char labels[NATIVE_MAX_FRAMES][256];
};

/* Unwinds pid (held, with regs) and names every frame. */
static void unwind_named(struct unwinder *u, const struct user_regs_struct *regs,
                         struct frames *f)
{
    REQUIRE(unwinder_unwind(u, regs, f->pcs, NATIVE_MAX_FRAMES, &f->n) == 0);
    for (size_t i = 0; i < f->n; i++) {
        struct strbuf sb = STRBUF_INIT;
        unwinder_symbolize(u, f->pcs[i], i == 0, &f->syms[i]);
        native_label(&f->syms[i], &sb);
        snprintf(f->labels[i], sizeof(f->labels[i]), "%s", sb_str(&sb));
        sb_release(&sb);
    }
}

/* Shows the frames when a check failed. */
static void print_frames(const struct frames *f)
{
    if (!test_failed_here)
        return;
    for (size_t i = 0; i < f->n; i++)
        fprintf(stderr, "      #%zu %s\n", i, f->labels[i]);
}

/* The index of the first frame whose function is func, or -1. */
static int frame_index(const struct frames *f, const char *func)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->syms[i].func && strcmp(f->syms[i].func, func) == 0)
            return (int)i;
    return -1;
}

/*
 * ptstop_hold gives a thread 100 ms to stop, which serves pystrobe's users; a
 * test's child on a loaded machine (both CPUs busy, ASan) can miss it.  The
 * test tries again, for up to HOLD_TRIES x 100 ms: ptstop_hold lets go of a
 * thread that stopped late at its next call.
 */
#define HOLD_TRIES 100

/* One ptstop_hold, for the tests of its timeout. */
static int held_once_or_skip(pid_t pid, struct user_regs_struct *regs)
{
    int r = ptstop_hold(pid, regs);
    if (r == -EPERM)
        SKIP("ptrace not permitted here (ptrace_scope or no CAP_SYS_PTRACE)");
    return r;
}

static int held_or_skip(pid_t pid, struct user_regs_struct *regs)
{
    int r = held_once_or_skip(pid, regs);
    for (int i = 1; i < HOLD_TRIES && r == -ETIMEDOUT; i++) {
        sleep_ms(100);
        r = held_once_or_skip(pid, regs);
    }
    return r;
}

TEST(sleeping_child_unwinds_through_chain)
{
    int fd;
    pid_t pid = fork_sleeper(400, &fd);
    struct mem *m = mem_new_pid(pid);
    struct pserr err = {0, ""};
    struct unwinder *u = unwinder_new(m, open_mapped, &pid, &err);
    REQUIRE(u);
    struct user_regs_struct regs;
    REQUIRE(held_or_skip(pid, &regs) == 0);
    CHECK_INT(tracer_of(pid), getpid());
    static struct frames f;
    unwind_named(u, &regs, &f);
    CHECK_INT(ptstop_release(pid), 0);
    CHECK_INT(tracer_of(pid), 0);
    /* libc's sleep first, then the chain and its callers, in order. */
    int c = frame_index(&f, "chain_c");
    if (c < 1 || (size_t)c + 5 >= f.n) {
        TEST_FAILF("no chain_c with five callers after libc's frames");
        print_frames(&f);
        exit(1);
    }
    CHECK_STR(f.syms[0].func, "clock_nanosleep");
    for (int i = 0; i < c; i++)
        CHECK(strstr(f.syms[i].module, "libc.so"));
    CHECK_STR(f.syms[c + 1].func, "chain_b");
    CHECK_STR(f.syms[c + 2].func, "chain_a");
    CHECK_STR(f.syms[c + 3].func, "fork_sleeper");
    CHECK_STR(f.syms[c + 4].func, "test_sleeping_child_unwinds_through_chain");
    CHECK_STR(f.syms[c + 5].func, "main");
    CHECK_STR(path_base(f.syms[c].file ? f.syms[c].file : ""), "test_native.c");
    CHECK_INT(f.syms[c].line, CHAIN_C_LINE);
    print_frames(&f);
    /* The child goes on: it wakes and says so. */
    CHECK_INT(read_byte(fd, 5000), 'w');
    unwinder_free(u);
    mem_free(m);
    end_child(pid);
}

/* Whether *counter goes past before within ms (a child let go runs when the
 * scheduler gives it a CPU: on a loaded machine, not within a fixed 20 ms). */
static int counts_again(volatile uint64_t *counter, uint64_t before, long ms)
{
    for (long waited = 0; waited < ms; waited += 10) {
        if (*counter > before)
            return 1;
        sleep_ms(10);
    }
    return *counter > before;
}

TEST(spinning_child_leaf_is_the_loop)
{
    volatile uint64_t *counter =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(counter != MAP_FAILED);
    pid_t pid = fork_child();
    REQUIRE(pid >= 0);
    if (pid == 0)
        spin(counter);
    while (*counter == 0)
        sleep_ms(1);
    CHECK_INT(state_of(pid), 'R');
    struct mem *m = mem_new_pid(pid);
    struct unwinder *u = unwinder_new(m, open_mapped, &pid, NULL);
    REQUIRE(u);
    struct user_regs_struct regs;
    REQUIRE(held_or_skip(pid, &regs) == 0);
    uint64_t before = *counter;
    sleep_ms(20);
    CHECK_U64(*counter, before); /* held: not counting */
    static struct frames f;
    unwind_named(u, &regs, &f);
    CHECK_INT(ptstop_release(pid), 0);
    CHECK(f.n >= 3);
    CHECK_STR(f.syms[0].func, "spin");
    CHECK_STR(f.syms[1].func, "test_spinning_child_leaf_is_the_loop");
    CHECK_STR(f.syms[2].func, "main");
    print_frames(&f);
    CHECK(counts_again(counter, before, 10000)); /* spinning again */
    CHECK_INT(tracer_of(pid), 0);
    unwinder_free(u);
    mem_free(m);
    end_child(pid);
}

__attribute__((noinline)) static void sleep_in_handler(int sig)
{
    (void)sig;
    chain_a(10000);
    __asm__ volatile("" ::: "memory"); /* not a tail call */
}

/* Through a signal handler's frame back to the code the signal interrupted. */
TEST(unwinds_through_a_signal_frame)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    volatile uint64_t *counter =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(counter != MAP_FAILED);
    pid_t pid = fork_child();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ready_fd = p[1];
        signal(SIGUSR1, sleep_in_handler);
        spin(counter);
    }
    while (*counter == 0)
        sleep_ms(1);
    CHECK_INT(kill(pid, SIGUSR1), 0);
    REQUIRE(read_byte(p[0], 5000) == 'r');
    sleep_ms(20);
    struct mem *m = mem_new_pid(pid);
    struct unwinder *u = unwinder_new(m, open_mapped, &pid, NULL);
    REQUIRE(u);
    struct user_regs_struct regs;
    REQUIRE(held_or_skip(pid, &regs) == 0);
    static struct frames f;
    unwind_named(u, &regs, &f);
    CHECK_INT(ptstop_release(pid), 0);
    int h = frame_index(&f, "sleep_in_handler");
    CHECK(h >= 4 && (size_t)h + 4 < f.n);
    if (h >= 4 && (size_t)h + 4 < f.n) {
        CHECK_STR(f.syms[h - 1].func, "chain_a");
        CHECK_STR(f.syms[h + 1].func, "__restore_rt");
        CHECK_STR(f.syms[h + 2].func, "spin");
        CHECK_STR(f.syms[h + 3].func, "test_unwinds_through_a_signal_frame");
        CHECK_STR(f.syms[h + 4].func, "main");
    }
    print_frames(&f);
    unwinder_free(u);
    mem_free(m);
    end_child(pid);
}

static volatile uint64_t *sig_count;
static int sig_fd = -1;

static void on_signal(int sig)
{
    (void)sig;
    (*sig_count)++;
    if (sig_fd >= 0 && write(sig_fd, "s", 1) != 1)
        _exit(3);
}

TEST(signal_sent_while_held_is_delivered_after)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    sig_count = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sig_count != MAP_FAILED);
    pid_t pid = fork_child();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        sig_fd = p[1];
        signal(SIGUSR1, on_signal);
        if (write(p[1], "r", 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    REQUIRE(read_byte(p[0], 5000) == 'r');
    struct user_regs_struct regs;
    REQUIRE(held_or_skip(pid, &regs) == 0);
    CHECK_INT(kill(pid, SIGUSR1), 0);
    CHECK_INT(read_byte(p[0], 50), -1); /* held: not handled yet */
    CHECK_INT(ptstop_release(pid), 0);
    CHECK_INT(read_byte(p[0], 5000), 's');
    CHECK_INT(tracer_of(pid), 0);
    end_child(pid);
}

/*
 * Signals sent just before each hold race with it: some arrive before the
 * interrupt (a signal-delivery-stop, whose signal ptstop hands back on
 * release; a fifth of the rounds here, by a varied delay), some after.
 * Real-time signals queue, so none may be missing.
 */
TEST(signals_racing_the_hold_are_never_lost)
{
    sig_count = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sig_count != MAP_FAILED);
    volatile uint64_t *counter = sig_count + 1;
    pid_t pid = fork_child();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        signal(SIGRTMIN, on_signal);
        spin(counter);
    }
    while (*counter == 0)
        sleep_ms(1);
    const int rounds = 400;
    int held = 0;
    for (int i = 0; i < rounds; i++) {
        struct user_regs_struct regs;
        REQUIRE(kill(pid, SIGRTMIN) == 0);
        for (volatile int k = 0; k < (i % 20) * 200; k++) /* a few microseconds */
            ;
        int r = held_or_skip(pid, &regs);
        if (r == 0) {
            held++;
            CHECK_INT(ptstop_release(pid), 0);
        }
    }
    CHECK_INT(held, rounds);
    for (int i = 0; i < 500 && *sig_count < (uint64_t)rounds; i++)
        sleep_ms(2);
    CHECK_U64(*sig_count, rounds);
    CHECK_INT(tracer_of(pid), 0);
    end_child(pid);
}

TEST(child_killed_while_held)
{
    int fd;
    pid_t pid = fork_sleeper(10000, &fd);
    struct user_regs_struct regs;
    REQUIRE(held_or_skip(pid, &regs) == 0);
    CHECK_INT(kill(pid, SIGKILL), 0);
    sleep_ms(20);
    CHECK_INT(ptstop_release(pid), -ESRCH);
    /* Its exit status is still its parent's to collect. */
    int st;
    CHECK_INT(waitpid(pid, &st, 0), pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void *sleeper_thread(void *arg)
{
    chain_a((long)(intptr_t)arg);
    return NULL;
}

/*
 * A thread other than the main one: its stack starts in libc's thread
 * start.  When its process is killed while it is held, the dead thread must
 * be collected by us, or the process's exit would never reach its parent.
 */
TEST(second_thread_unwinds_and_dies_while_held)
{
    int p[2], t[2];
    REQUIRE(pipe(p) == 0);
    REQUIRE(pipe(t) == 0);
    pid_t pid = fork_child();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ready_fd = p[1];
        pthread_t th;
        if (pthread_create(&th, NULL, sleeper_thread, (void *)(intptr_t)10000) != 0)
            _exit(2);
        for (;;)
            pause();
    }
    REQUIRE(read_byte(p[0], 5000) == 'r');
    sleep_ms(20);
    /* The thread is the task that is not the process itself. */
    pid_t tid = 0;
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    REQUIRE(d);
    for (struct dirent *e; (e = readdir(d));)
        if (atoi(e->d_name) > 0 && atoi(e->d_name) != pid)
            tid = atoi(e->d_name);
    closedir(d);
    REQUIRE(tid > 0);
    struct mem *m = mem_new_pid(pid);
    struct unwinder *u = unwinder_new(m, open_mapped, &pid, NULL);
    REQUIRE(u);
    struct user_regs_struct regs;
    REQUIRE(held_or_skip(tid, &regs) == 0);
    static struct frames f;
    unwind_named(u, &regs, &f);
    int c = frame_index(&f, "chain_c");
    CHECK(c >= 1 && (size_t)c + 4 < f.n);
    if (c >= 1 && (size_t)c + 4 < f.n) {
        CHECK_STR(f.syms[c + 1].func, "chain_b");
        CHECK_STR(f.syms[c + 2].func, "chain_a");
        CHECK_STR(f.syms[c + 3].func, "sleeper_thread");
        CHECK_STR(f.syms[c + 4].func, "start_thread");
    }
    print_frames(&f);
    CHECK_INT(kill(pid, SIGKILL), 0);
    sleep_ms(20);
    CHECK_INT(ptstop_release(tid), -ESRCH);
    int st = 0;
    pid_t r = 0;
    for (int i = 0; i < 500 && r == 0; i++) {
        r = waitpid(pid, &st, WNOHANG);
        if (r == 0)
            sleep_ms(10);
    }
    CHECK_INT(r, pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    unwinder_free(u);
    mem_free(m);
}

TEST(thread_traced_by_another_is_refused)
{
    int fd;
    pid_t pid = fork_sleeper(300, &fd);
    pid_t dbg = fork_child();
    REQUIRE(dbg >= 0);
    if (dbg == 0) {
        /* A debugger: traces the sleeper for a while, then exits. */
        if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0)
            _exit(1);
        sleep_ms(400);
        _exit(0);
    }
    for (int i = 0; i < 200 && tracer_of(pid) != dbg; i++)
        sleep_ms(1);
    CHECK_INT(tracer_of(pid), dbg);
    struct user_regs_struct regs;
    CHECK_INT(ptstop_hold(pid, &regs), -EPERM);
    CHECK_INT(tracer_of(pid), dbg);
    CHECK_INT(read_byte(fd, 5000), 'w'); /* untouched: it woke on time */
    int st;
    CHECK_INT(waitpid(dbg, &st, 0), dbg);
    end_child(pid);
}

/* A process stopped by SIGSTOP is held, read, and stays stopped until SIGCONT. */
TEST(group_stopped_child_stays_stopped)
{
    int fd;
    pid_t pid = fork_sleeper(200, &fd);
    CHECK_INT(kill(pid, SIGSTOP), 0);
    for (int i = 0; i < 500 && state_of(pid) != 'T'; i++)
        sleep_ms(1);
    CHECK_INT(state_of(pid), 'T');
    struct user_regs_struct regs;
    REQUIRE(held_or_skip(pid, &regs) == 0);
    CHECK(regs.rip != 0);
    CHECK_INT(ptstop_release(pid), 0);
    sleep_ms(300); /* past the end of its sleep */
    CHECK_INT(state_of(pid), 'T');
    CHECK_INT(tracer_of(pid), 0);
    CHECK_INT(read_byte(fd, 0), -1);
    CHECK_INT(kill(pid, SIGCONT), 0);
    CHECK_INT(read_byte(fd, 5000), 'w');
    end_child(pid);
}

/*
 * A child that writes 'r' to p[1], then vforks a child that sleeps ms and
 * exits: meanwhile it waits uninterruptibly, and cannot stop.  Then it
 * writes 'd' and pauses for good.
 */
static pid_t start_vfork_parent(int p[2], long ms)
{
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork_child();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (write(p[1], "r", 1) != 1)
            _exit(2);
        pid_t v = vfork();
        if (v == 0) {
            struct timespec ts = {0, ms * 1000000L};
            nanosleep(&ts, NULL);
            _exit(0);
        }
        waitpid(v, NULL, 0);
        if (write(p[1], "d", 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    REQUIRE(read_byte(p[0], 5000) == 'r');
    return pid;
}

/*
 * A vfork parent waits uninterruptibly for its child: it cannot stop until
 * the child exits.  The hold gives up; the next ptstop call lets it go.
 */
TEST(thread_that_cannot_stop_times_out_and_is_let_go)
{
    int p[2];
    pid_t pid = start_vfork_parent(p, 400);
    sleep_ms(50);
    CHECK_INT(state_of(pid), 'D');
    struct user_regs_struct regs;
    int r = held_once_or_skip(pid, &regs);
    CHECK_INT(r, -ETIMEDOUT);
    /* When the vfork child exits, the interrupt stops the parent... */
    sleep_ms(600);
    CHECK_INT(state_of(pid), 't');
    CHECK_INT(tracer_of(pid), getpid());
    /* ...until any ptstop call lets it go. */
    CHECK_INT(ptstop_release(pid), -ESRCH);
    CHECK_INT(read_byte(p[0], 1000), 'd');
    CHECK_INT(tracer_of(pid), 0);
    end_child(pid);
}

/*
 * ptstop_sweep alone, with no other thread held meanwhile (a sampler of
 * running threads never holds a stopped one again), lets a late stop go
 * and says how many are still to stop.
 */
TEST(ptstop_sweep_lets_a_late_stop_go_by_itself)
{
    int p[2];
    pid_t pid = start_vfork_parent(p, 300);
    sleep_ms(50);
    struct user_regs_struct regs;
    uint64_t late0 = ptstop_late_stops();
    int r = held_once_or_skip(pid, &regs);
    CHECK_INT(r, -ETIMEDOUT);
    CHECK_INT((int)ptstop_sweep(), 1);
    /* Bounded: the vfork child exits after 300 ms, a busy machine may take longer. */
    size_t left = 1;
    for (int i = 0; i < 1000 && left; i++) {
        sleep_ms(5);
        left = ptstop_sweep();
    }
    CHECK_INT((int)left, 0);
    CHECK_INT(read_byte(p[0], 1000), 'd');
    CHECK_INT(tracer_of(pid), 0);
    CHECK(state_of(pid) != 't');
    CHECK(ptstop_late_stops() == late0 + 1);
    end_child(pid);
}

/*
 * The same, with the launched command's end looked for while the thread
 * is interrupted (record's loop does so each tick): that look must not
 * take the thread's stop, or nothing would let it go.  At the end of a
 * recording, the thread is waited for and let go.
 */
TEST(a_late_stop_is_neither_taken_for_an_end_nor_left_behind)
{
    int p[2];
    pid_t pid = start_vfork_parent(p, 300);
    sleep_ms(50);
    struct user_regs_struct regs;
    int r = held_once_or_skip(pid, &regs);
    CHECK_INT(r, -ETIMEDOUT);
    int st = 0;
    CHECK_INT(launch_reap(pid, &st), -EAGAIN);
    sleep_ms(500);
    CHECK_INT(state_of(pid), 't');
    /* Stopped now: still not an end, and the stop stays for ptstop. */
    CHECK_INT(launch_reap(pid, &st), -EAGAIN);
    ptstop_let_go(2000000000ull);
    CHECK_INT(read_byte(p[0], 1000), 'd');
    CHECK_INT(tracer_of(pid), 0);
    CHECK_INT(launch_reap(pid, &st), -EAGAIN);
    kill(pid, SIGKILL);
    for (int i = 0; i < 200 && launch_reap(pid, &st) == -EAGAIN; i++)
        sleep_ms(10);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    close(p[0]);
    close(p[1]);
}

/* A child reading the clock in a loop is sometimes caught in the vDSO. */
__attribute__((noinline)) static void read_clock(volatile uint64_t *counter)
{
    struct timespec ts;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        (*counter)++;
    }
}

TEST(vdso_frames_are_named_and_unwound)
{
    volatile uint64_t *counter =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(counter != MAP_FAILED);
    pid_t pid = fork_child();
    REQUIRE(pid >= 0);
    if (pid == 0)
        read_clock(counter);
    while (*counter == 0)
        sleep_ms(1);
    struct mem *m = mem_new_pid(pid);
    struct unwinder *u = unwinder_new(m, open_mapped, &pid, NULL);
    REQUIRE(u);
    static struct frames f;
    int found = 0;
    for (int i = 0; i < 2000 && !found; i++) {
        struct user_regs_struct regs;
        REQUIRE(held_or_skip(pid, &regs) == 0);
        unwind_named(u, &regs, &f);
        CHECK_INT(ptstop_release(pid), 0);
        found = f.n > 0 && strcmp(f.syms[0].module, "[vdso]") == 0;
    }
    if (!found)
        SKIP("never caught in the vDSO in 2000 tries");
    /* The vDSO's own function, then libc's, (ASan's interceptor,) the loop and its callers. */
    CHECK_STR(f.syms[0].func, "__vdso_clock_gettime");
    CHECK_STR(f.syms[1].func, "clock_gettime");
    int r = frame_index(&f, "read_clock");
    CHECK(r >= 2);
    if (r >= 2) {
        CHECK((size_t)r + 2 < f.n);
        CHECK_STR(f.syms[r + 1].func, "test_vdso_frames_are_named_and_unwound");
        CHECK_STR(f.syms[r + 2].func, "main");
    }
    print_frames(&f);
    unwinder_free(u);
    mem_free(m);
    end_child(pid);
}

/* A library the child loads after the unwinder was made is found after a refresh. */
TEST(refresh_finds_libraries_loaded_later)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    int go[2];
    REQUIRE(pipe(go) == 0);
    pid_t pid = fork_child();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(2);
        void *h = dlopen("libcrypt.so.1", RTLD_NOW);
        uint64_t addr = h ? (uint64_t)(uintptr_t)dlsym(h, "crypt") : 0;
        if (write(p[1], &addr, sizeof(addr)) != sizeof(addr))
            _exit(2);
        if (read(go[0], &c, 1) != 1)
            _exit(2);
        dlclose(h);
        if (write(p[1], &addr, sizeof(addr)) != sizeof(addr))
            _exit(2);
        for (;;)
            pause();
    }
    struct mem *m = mem_new_pid(pid);
    struct unwinder *u = unwinder_new(m, open_mapped, &pid, NULL);
    REQUIRE(u);
    REQUIRE(write(go[1], "1", 1) == 1);
    uint64_t addr = 0;
    REQUIRE(read(p[0], &addr, sizeof(addr)) == sizeof(addr));
    if (addr == 0) {
        end_child(pid);
        SKIP("no libcrypt.so.1 to load");
    }
    struct native_sym s;
    CHECK_INT(unwinder_symbolize(u, addr + 4, 1, &s), -ENOENT); /* not yet known */
    CHECK_INT(unwinder_refresh(u), 0);
    CHECK_INT(unwinder_symbolize(u, addr + 4, 1, &s), 0);
    CHECK_STR(s.func, "crypt");
    CHECK_U64(s.func_off, 4);
    CHECK(strncmp(path_base(s.module), "libcrypt.so.1", 13) == 0); /* the file, not the link */
    REQUIRE(write(go[1], "2", 1) == 1);
    REQUIRE(read(p[0], &addr, sizeof(addr)) == sizeof(addr));
    CHECK_INT(unwinder_refresh(u), 0);
    CHECK_INT(unwinder_symbolize(u, addr + 4, 1, &s), -ENOENT); /* unloaded */
    unwinder_free(u);
    mem_free(m);
    end_child(pid);
}

/* ---- garbage ------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

#define NOISE_BASE 0x7f0000000000ull
#define NOISE_LEN (64 * 1024)

TEST(garbage_registers_and_memory_end_bounded)
{
    static uint64_t noise[NOISE_LEN / 8];
    for (int round = 0; round < 300; round++) {
        /* Noise, a third of it pointing back into the noise. */
        for (size_t i = 0; i < ARRAY_SIZE(noise); i++)
            noise[i] = rnd() % 3 == 0 ? NOISE_BASE + rnd() % NOISE_LEN : rnd();
        struct mem *m = mem_new_buffer();
        REQUIRE(mem_buffer_add(m, NOISE_BASE, noise, sizeof(noise)) == 0);
        struct unwinder *u = unwinder_new(m, NULL, NULL, NULL);
        REQUIRE(u);
        struct user_regs_struct regs;
        uint64_t *w = (uint64_t *)&regs;
        for (size_t i = 0; i < sizeof(regs) / 8; i++)
            w[i] = rnd() % 2 ? NOISE_BASE + rnd() % NOISE_LEN : rnd();
        uint64_t pcs[64];
        size_t n = 99;
        uint64_t calls = mem_read_calls(m);
        int r = unwinder_unwind(u, &regs, pcs, ARRAY_SIZE(pcs), &n);
        CHECK(r == 0 || r == -EFAULT);
        CHECK(n <= ARRAY_SIZE(pcs));
        CHECK(r != 0 || n >= 1);
        CHECK(mem_read_calls(m) - calls <= 64);
        for (size_t i = 0; i < n; i++) {
            struct native_sym s;
            CHECK_INT(unwinder_symbolize(u, pcs[i], i == 0, &s), 0);
            CHECK_STR(s.module, "");
        }
        unwinder_free(u);
        mem_free(m);
    }
}

/* Frame-pointer chains built by hand (no CFI: libdw falls back to rbp). */
static void fp_chain(uint64_t *stack, size_t words, uint64_t base, int loop)
{
    memset(stack, 0, words * 8);
    for (size_t i = 0; i + 4 < words; i += 4) {
        uint64_t next = base + (i + 4) * 8;
        stack[i] = loop ? base + i * 8 : next; /* saved rbp */
        stack[i + 1] = base + 0x100 + i;       /* return address (mapped) */
    }
}

TEST(frame_chains_stop_at_the_cap_and_on_loops)
{
    static uint64_t stack[8192];
    for (int loop = 0; loop <= 1; loop++) {
        fp_chain(stack, ARRAY_SIZE(stack), NOISE_BASE, loop);
        struct mem *m = mem_new_buffer();
        REQUIRE(mem_buffer_add(m, NOISE_BASE, stack, sizeof(stack)) == 0);
        struct unwinder *u = unwinder_new(m, NULL, NULL, NULL);
        REQUIRE(u);
        struct user_regs_struct regs;
        memset(&regs, 0, sizeof(regs));
        regs.rip = NOISE_BASE + 0x40;
        regs.rsp = NOISE_BASE;
        regs.rbp = NOISE_BASE;
        uint64_t pcs[NATIVE_MAX_FRAMES + 8];
        size_t n = 0;
        CHECK_INT(unwinder_unwind(u, &regs, pcs, ARRAY_SIZE(pcs), &n), 0);
        CHECK_U64(pcs[0], NOISE_BASE + 0x40);
        if (loop) {
            /* The second frame's sp did not move past the first's: the end. */
            CHECK_INT(n, 2);
        } else {
            CHECK_INT(n, NATIVE_MAX_FRAMES);
            CHECK_U64(pcs[1], NOISE_BASE + 0x100);
            CHECK_U64(pcs[2], NOISE_BASE + 0x104);
            /* 64 KiB of stack in reads of 8 pages. */
            CHECK(mem_read_calls(m) <= 4);
        }
        size_t n2 = 0;
        CHECK_INT(unwinder_unwind(u, &regs, pcs, 5, &n2), 0);
        CHECK_INT(n2, loop ? 2 : 5);
        unwinder_free(u);
        mem_free(m);
    }
}

TEST(leaf_pc_outside_every_mapping)
{
    static uint64_t stack[512];
    struct mem *m = mem_new_buffer();
    REQUIRE(mem_buffer_add(m, NOISE_BASE, stack, sizeof(stack)) == 0);
    struct unwinder *u = unwinder_new(m, NULL, NULL, NULL);
    REQUIRE(u);
    struct user_regs_struct regs;
    memset(&regs, 0, sizeof(regs));
    regs.rsp = NOISE_BASE;
    uint64_t pcs[8];
    size_t n = 9;
    regs.rip = 0;
    CHECK_INT(unwinder_unwind(u, &regs, pcs, 8, &n), -EFAULT);
    CHECK_INT(n, 0);
    regs.rip = 0x1234;
    CHECK_INT(unwinder_unwind(u, &regs, pcs, 8, &n), -EFAULT);
    CHECK_INT(n, 0);
    struct native_sym s;
    CHECK_INT(unwinder_symbolize(u, 0x1234, 1, &s), -ENOENT);
    CHECK(s.func == NULL && s.file == NULL && s.line == 0);
    CHECK_STR(s.module, "");
    struct strbuf sb = STRBUF_INIT;
    native_label(&s, &sb);
    CHECK_STR(sb_str(&sb), "[0x1234]");
    sb_release(&sb);
    unwinder_free(u);
    mem_free(m);
}

TEST(label_formats)
{
    struct strbuf sb = STRBUF_INIT;
    struct native_sym s = {"time_sleep", 0x42, "/usr/lib/libpython3.12.so.1.0", 0x1234,
                           "./Modules/timemodule.c", 371};
    native_label(&s, &sb);
    CHECK_STR(sb_str(&sb), "time_sleep (./Modules/timemodule.c:371)");
    sb_reset(&sb);
    s.file = NULL;
    s.line = 0;
    native_label(&s, &sb);
    CHECK_STR(sb_str(&sb), "time_sleep");
    sb_reset(&sb);
    s.func = NULL;
    native_label(&s, &sb);
    CHECK_STR(sb_str(&sb), "[libpython3.12.so.1.0+0x1234]");
    sb_reset(&sb);
    s.module = "[vdso]";
    s.module_off = 0xa1f;
    native_label(&s, &sb);
    CHECK_STR(sb_str(&sb), "[vdso+0xa1f]");
    sb_reset(&sb);
    /* C++ names are shown as the symbol table has them. */
    struct native_sym cxx = {"_ZN3foo3barEv", 0, "/x/libfoo.so", 0x10, NULL, 0};
    native_label(&cxx, &sb);
    CHECK_STR(sb_str(&sb), "_ZN3foo3barEv");
    sb_release(&sb);
}
