/* Thread states and process trees: /proc parsing, the GIL's spans, thread
 * filters, and process roots in profiles. */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <sys/syscall.h>
#include <time.h>

#include "test.h"

#include "common/util.h"
#include "output/agg.h"
#include "output/folded.h"
#include "output/profile.h"
#include "profiler/cpython/layout.h"
#include "profiler/target/mem.h"
#include "profiler/target/proc.h"
#include "profiler/cpython/pyrt.h"
#include "profiler/sampling/snapshot.h"

/* ---- /proc/PID/task/TID/syscall ------------------------------------------------------ */

TEST(syscall_parse)
{
    long nr = 0;
    uint64_t arg0 = 0;
    static const char futex[] = "202 0x55ad2db0d9a0 0x189 0x0 0x0 0x0 0x0 0x7ffc 0x7f12\n";
    CHECK_INT(proc_syscall_parse(futex, strlen(futex), &nr, &arg0), 0);
    CHECK_INT(nr, 202);
    CHECK_U64(arg0, 0x55ad2db0d9a0u);
    static const char outside[] = "-1 0x7ffd1234 0x7f00aa\n";
    CHECK_INT(proc_syscall_parse(outside, strlen(outside), &nr, &arg0), 0);
    CHECK_INT(nr, -1);
    CHECK_U64(arg0, 0);
    CHECK_INT(proc_syscall_parse("running\n", 8, &nr, &arg0), 1);
    CHECK_INT(proc_syscall_parse("", 0, &nr, &arg0), -EINVAL);
    CHECK_INT(proc_syscall_parse("futex 0x1\n", 10, &nr, &arg0), -EINVAL);
    CHECK_INT(proc_syscall_parse("202\n", 4, &nr, &arg0), -EINVAL);
    CHECK_INT(proc_syscall_parse("202 zz\n", 7, &nr, &arg0), -EINVAL);
    CHECK_INT(proc_syscall_parse("99999999999999999999999 0x1\n", 28, &nr, &arg0), -EINVAL);
    /* A long line is read in part: what matters comes first. */
    char big[200];
    memset(big, 'x', sizeof(big));
    memcpy(big, "230 0x1 ", 8);
    CHECK_INT(proc_syscall_parse(big, sizeof(big), &nr, &arg0), 0);
    CHECK_INT(nr, 230);
    CHECK_U64(arg0, 1);
}

static pthread_mutex_t wait_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cond = PTHREAD_COND_INITIALIZER;
static int wait_done;
static volatile pid_t waiter_tid;

static void *waiter(void *arg)
{
    (void)arg;
    waiter_tid = (pid_t)syscall(SYS_gettid);
    pthread_mutex_lock(&wait_mutex);
    while (!wait_done)
        pthread_cond_wait(&wait_cond, &wait_mutex);
    pthread_mutex_unlock(&wait_mutex);
    return NULL;
}

/* What the kernel says of a thread blocked in a condition variable: a futex
 * on an address inside it, which is how a GIL wait is told apart. */
TEST(syscall_of_a_waiting_thread)
{
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, waiter, NULL) == 0);
    long nr = 0;
    uint64_t arg0 = 0;
    int ret = -1, found = 0;
    for (int i = 0; i < 2000 && !found; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        if (!waiter_tid)
            continue;
        int fd = proc_open_syscall(getpid(), waiter_tid);
        if (fd < 0) {
            pthread_mutex_lock(&wait_mutex);
            wait_done = 1;
            pthread_cond_signal(&wait_cond);
            pthread_mutex_unlock(&wait_mutex);
            pthread_join(th, NULL);
            SKIP("cannot open the syscall file: %s", strerror(-fd));
        }
        ret = proc_syscall_read(fd, &nr, &arg0);
        close(fd);
        uint64_t lo = (uint64_t)(uintptr_t)&wait_cond;
        found = ret == 0 && nr == SYS_futex && arg0 >= lo && arg0 < lo + sizeof(wait_cond);
    }
    CHECK(found);
    /* A thread reading its own file is in the read. */
    int fd = proc_open_syscall(getpid(), (pid_t)syscall(SYS_gettid));
    REQUIRE(fd >= 0);
    CHECK_INT(proc_syscall_read(fd, &nr, &arg0), 0);
    CHECK_INT(nr, SYS_pread64);
    CHECK_U64(arg0, (uint64_t)fd);
    close(fd);
    pthread_mutex_lock(&wait_mutex);
    wait_done = 1;
    pthread_cond_signal(&wait_cond);
    pthread_mutex_unlock(&wait_mutex);
    pthread_join(th, NULL);
}

/* A task's start (its stat file, to a clock tick) against CLOCK_BOOTTIME. */
TEST(task_started_before)
{
    uint64_t t0 = proc_boot_ns();
    REQUIRE(t0 > 0);
    int fd = proc_open_stat(getpid(), getpid());
    REQUIRE(fd >= 0);
    /* This process started before now, but maybe not a tick before. */
    usleep(30000);
    CHECK_INT(proc_stat_started_before(fd, proc_boot_ns()), 1);
    /* A thread started after t0 did not start before it. */
    wait_done = 0;
    waiter_tid = 0;
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, waiter, NULL) == 0);
    for (int k = 0; k < 2000 && !waiter_tid; k++)
        usleep(1000);
    REQUIRE(waiter_tid > 0);
    int tfd = proc_open_stat(getpid(), waiter_tid);
    REQUIRE(tfd >= 0);
    CHECK_INT(proc_stat_started_before(tfd, t0), 0);
    usleep(30000);
    CHECK_INT(proc_stat_started_before(tfd, proc_boot_ns()), 1);
    pthread_mutex_lock(&wait_mutex);
    wait_done = 1;
    pthread_cond_signal(&wait_cond);
    pthread_mutex_unlock(&wait_mutex);
    pthread_join(th, NULL);
    /* Gone, unknown, nothing to read: not known to have started before.
     * pthread_join returns once the kernel cleared the thread's tid, which
     * it does before the task is released: on a busy machine its stat may
     * be read a little longer (up to 2 s waited here). */
    int gone = proc_stat_started_before(tfd, proc_boot_ns());
    for (int k = 0; k < 2000 && gone != 0; k++) {
        usleep(1000);
        gone = proc_stat_started_before(tfd, proc_boot_ns());
    }
    CHECK_INT(gone, 0);
    CHECK_INT(proc_stat_started_before(fd, 0), 0);
    CHECK_INT(proc_stat_started_before(-1, proc_boot_ns()), 0);
    close(tfd);
    close(fd);
}

/* ---- process tree -------------------------------------------------------------------- */

TEST(identity_and_children)
{
    uint64_t start = 0;
    char comm[64];
    CHECK_INT(proc_identity(getpid(), &start, comm, sizeof(comm)), 0);
    CHECK(start > 0);
    CHECK_STR(comm, "test_threads");
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        pause();
        _exit(0);
    }
    pid_t *pids = NULL;
    size_t n = 0, cap = 0;
    int ret = proc_children(getpid(), &pids, &n, &cap, 16);
    int seen = 0;
    for (size_t i = 0; i < n; i++)
        seen |= pids[i] == child;
    uint64_t cstart = 0;
    CHECK_INT(proc_identity(child, &cstart, comm, sizeof(comm)), 0);
    CHECK(cstart >= start);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    if (ret < 0)
        SKIP("no /proc/PID/task/TID/children here: %s", strerror(-ret));
    CHECK(ret >= 1);
    CHECK(seen);
    /* The bound holds. */
    n = 0;
    CHECK_INT(proc_children(getpid(), &pids, &n, &cap, 0), 0);
    CHECK_INT(proc_identity(0x7ffffff0, &cstart, comm, sizeof(comm)), -ESRCH);
    free(pids);
}

/* ---- the GIL's spans ----------------------------------------------------------------- */

/* A 3.7-3.11 runtime over a buffer: the GIL inside _PyRuntime, at 0x100000. */
static void runtime_rt(struct pyrt *rt)
{
    memset(rt, 0, sizeof(*rt));
    rt->mem = mem_new_buffer();
    rt->layout.gil = GIL_RUNTIME;
    rt->layout.rt_gil_last_holder = 1272;
    rt->layout.rt_gil_locked = 1280;
    /* struct _gil_runtime_state, as the table has it: interval, last_holder, locked, ... */
    rt->layout.gil_last_holder = 8;
    rt->layout.gil_locked = 16;
    rt->layout.gil_state_size = 208;
    rt->runtime = 0x100000;
}

TEST(gil_spans_runtime_and_interp)
{
    struct pyrt rt;
    struct gil_span sp[GIL_SPANS_MAX];
    /* 3.7-3.11: inside _PyRuntime, last_holder 8 bytes in. */
    runtime_rt(&rt);
    CHECK_INT(pyrt_gil_spans(&rt, 0, sp), 1);
    CHECK_U64(sp[0].start, 0x100000 + 1264);
    CHECK_U64(sp[0].end, 0x100000 + 1264 + 208);
    /* 3.12+: the interpreter points at it. */
    rt.layout.gil = GIL_INTERP;
    rt.layout.is_ceval_gil = 384;
    rt.layout.gil_last_holder = 8;
    uint64_t gil = 0x7f0000001000;
    REQUIRE(mem_buffer_add(rt.mem, 0x200000 + 384, &gil, 8) == 0);
    CHECK_INT(pyrt_gil_spans(&rt, 0x200000, sp), 1);
    CHECK_U64(sp[0].start, gil);
    CHECK_U64(sp[0].end, gil + 208);
    /* Unreadable, or not there yet. */
    CHECK(pyrt_gil_spans(&rt, 0x300000, sp) < 0);
    uint64_t none = 0;
    REQUIRE(mem_buffer_add(rt.mem, 0x400000 + 384, &none, 8) == 0);
    CHECK_INT(pyrt_gil_spans(&rt, 0x400000, sp), 0);
    mem_free(rt.mem);
}

/* The holder in one read, the same as field by field. */
TEST(gil_holder_in_one_read)
{
    struct pyrt rt;
    struct gil_span sp[GIL_SPANS_MAX];
    runtime_rt(&rt);
    uint64_t holder = 0x7f0000abc000;
    int32_t locked = 1;
    unsigned char gil[16] = {0};
    memcpy(gil, &holder, 8);
    memcpy(gil + 8, &locked, 4);
    REQUIRE(mem_buffer_add(rt.mem, 0x100000 + 1272, gil, sizeof(gil)) == 0);
    REQUIRE(pyrt_gil_spans(&rt, 0, sp) == 1);
    uint64_t a = 0, b = 0;
    uint64_t before = mem_read_calls(rt.mem);
    CHECK_INT(pyrt_gil_holder_in(&rt, &sp[0], &a), 0);
    CHECK_U64(mem_read_calls(rt.mem) - before, 1);
    CHECK_INT(pyrt_gil_holder(&rt, 0, &b), 0);
    CHECK_U64(a, holder);
    CHECK_U64(b, holder);
    /* Released: nobody holds it, whatever last_holder says. */
    locked = 0;
    REQUIRE(mem_buffer_write(rt.mem, 0x100000 + 1280, &locked, 4) == 0);
    CHECK_INT(pyrt_gil_holder_in(&rt, &sp[0], &a), 0);
    CHECK_U64(a, 0);
    /* A layout where the two are not 8 bytes apart: not this way. */
    rt.layout.gil_locked = 24;
    CHECK_INT(pyrt_gil_holder_in(&rt, &sp[0], &a), -ENOENT);
    rt.layout.gil = GIL_TSTATE_CURRENT;
    CHECK_INT(pyrt_gil_holder_in(&rt, &sp[0], &a), -ENOENT);
    mem_free(rt.mem);
}

TEST(gil_spans_statics)
{
    struct pyrt rt;
    struct gil_span sp[GIL_SPANS_MAX];
    memset(&rt, 0, sizeof(rt));
    rt.mem = mem_new_buffer();
    rt.layout.gil = GIL_TSTATE_CURRENT;
    /* 3.6: the symbols' own ranges. */
    rt.ngil_statics = 2;
    rt.gil_statics[0][0] = 0x5000;
    rt.gil_statics[0][1] = 0x5030;
    rt.gil_statics[1][0] = 0x6000;
    rt.gil_statics[1][1] = 0x6028;
    CHECK_INT(pyrt_gil_spans(&rt, 0, sp), 2);
    CHECK_U64(sp[1].start, 0x6000);
    CHECK_U64(sp[1].end, 0x6028);
    /* 2.7: interpreter_lock points at a semaphore, once threads started. */
    rt.gil_lock_ptr = 0x7000;
    uint64_t sem = 0;
    REQUIRE(mem_buffer_add(rt.mem, 0x7000, &sem, 8) == 0);
    CHECK_INT(pyrt_gil_spans(&rt, 0, sp), 0);
    sem = 0x9000;
    REQUIRE(mem_buffer_write(rt.mem, 0x7000, &sem, 8) == 0);
    CHECK_INT(pyrt_gil_spans(&rt, 0, sp), 1);
    CHECK_U64(sp[0].start, 0x9000);
    CHECK_U64(sp[0].end, 0x9000 + 32);
    mem_free(rt.mem);
}

/* ---- thread filters ------------------------------------------------------------------ */

TEST(thread_filter)
{
    regex_t res[2];
    pid_t tids[1] = {4242};
    REQUIRE(regcomp(&res[0], "^worker-[0-9]+$", REG_EXTENDED | REG_NOSUB) == 0);
    REQUIRE(regcomp(&res[1], "é", REG_EXTENDED | REG_NOSUB) == 0);
    struct thread_filter f = {res, 2, tids, 1};
    CHECK_INT(thread_filter_match(NULL, "x", 1), 1);
    CHECK_INT(thread_filter_match(&(struct thread_filter){0}, NULL, 0), 1);
    CHECK_INT(thread_filter_match(&f, "worker-12", 7), 1);
    CHECK_INT(thread_filter_match(&f, "worker-12b", 7), 0);
    CHECK_INT(thread_filter_match(&f, "café", 7), 1);
    CHECK_INT(thread_filter_match(&f, NULL, 7), 0);
    CHECK_INT(thread_filter_match(&f, "MainThread", 4242), 1);
    CHECK_INT(thread_filter_match(&f, NULL, 4242), 1);
    /* A tid alone: names do not matter; an unknown tid never matches. */
    struct thread_filter g = {NULL, 0, tids, 1};
    CHECK_INT(thread_filter_match(&g, "worker-1", 4243), 0);
    CHECK_INT(thread_filter_match(&g, "worker-1", 0), 0);
    regfree(&res[0]);
    regfree(&res[1]);
}

TEST(thread_state_names)
{
    CHECK_STR(thread_state_name(TS_RUNNING), "running");
    CHECK_STR(thread_state_name(TS_IDLE), "idle");
    CHECK_STR(thread_state_name(TS_GIL_WAIT), "gil wait");
    CHECK_STR(thread_state_name(TS_UNKNOWN), "unknown");
}

/* ---- process roots ------------------------------------------------------------------- */

static char *folded_of(const struct agg *a, const struct names *n, int threads, int *roots)
{
    char *text = NULL;
    size_t len = 0;
    struct profile p;
    profile_init(&p);
    profile_from_agg(&p, a, n, threads);
    *roots = p.thread_roots;
    FILE *f = open_memstream(&text, &len);
    REQUIRE(f != NULL);
    CHECK_INT(folded_write(f, &p), 0);
    fclose(f);
    profile_release(&p);
    return text;
}

TEST(process_roots)
{
    struct names n;
    struct agg a;
    names_init(&n);
    agg_init(&a);
    uint32_t file = names_str(&n, "app.py", 6);
    uint32_t fa = names_frame(&n, names_func(&n, names_str(&n, "serve", 5), file, 1), 3);
    uint32_t fb = names_frame(&n, names_func(&n, names_str(&n, "work", 4), file, 10), 12);
    uint32_t idle = names_label_frame(&n, "[idle]");
    uint32_t p0 = agg_process(&a, 100, "python3 app.py"), p1 = agg_process(&a, 101, "w;1\n");
    uint32_t p2 = agg_process(&a, 102, NULL);
    CHECK_INT(p0, 0);
    CHECK_INT(p1, 1);
    /* The same tid and ident in two processes: two threads. */
    uint32_t t0 = agg_thread_in(&a, p0, 100, 0x7f01), t1 = agg_thread_in(&a, p1, 100, 0x7f01);
    CHECK(t0 != t1);
    CHECK_INT(agg_thread_in(&a, p1, 100, 0x7f01), t1);
    uint32_t t2 = agg_thread_in(&a, p2, 102, 0x7f02);
    agg_thread_name(&a, t0, "MainThread");
    agg_thread_name(&a, t1, "MainThread");
    uint32_t s0[] = {fa, fb}, s1[] = {fa, idle};
    agg_add(&a, t0, s0, 2, 3);
    agg_add(&a, t1, s1, 2, 2);
    agg_add(&a, t2, s0, 1, 1);
    int roots = -1;
    char *text = folded_of(&a, &n, 0, &roots);
    CHECK_INT(roots, 0);
    CHECK_STR(text, "process 100 (python3 app.py);serve (app.py:3);work (app.py:12) 3\n"
                    "process 101 (w?1?);serve (app.py:3);[idle] 2\n"
                    "process 102;serve (app.py:3) 1\n");
    free(text);
    /* With threads, the thread frame comes second and is not a root. */
    text = folded_of(&a, &n, 1, &roots);
    CHECK_INT(roots, 0);
    CHECK_STR(text, "process 100 (python3 app.py);thread MainThread (100);serve (app.py:3);"
                    "work (app.py:12) 3\n"
                    "process 101 (w?1?);thread MainThread (100);serve (app.py:3);[idle] 2\n"
                    "process 102;thread (102);serve (app.py:3) 1\n");
    free(text);
    agg_release(&a);
    names_release(&n);
}
