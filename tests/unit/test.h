/*
 * A tiny unit-test harness.  Each test_*.c file is its own program:
 *
 *     #include "test.h"
 *     TEST(adds) { CHECK_INT(1 + 1, 2); }
 *
 * test.h supplies main(), which runs every TEST in a forked child with a
 * timeout (so a crash or a hang fails one test, not the run), prints
 * "PASS name", "FAIL name: why" or "SKIP name: why", then a count line.
 * Arguments filter tests by substring.  TEST_TIMEOUT_S overrides the timeout.
 */
#ifndef PYSTROBE_TEST_H
#define PYSTROBE_TEST_H

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (*test_fn)(void);
struct test_case {
    const char *name;
    test_fn fn;
};

#define TEST_MAX 512
static struct test_case test_cases[TEST_MAX];
static int test_count;
static int test_failed_here;

static inline void test_register(const char *name, test_fn fn)
{
    if (test_count < TEST_MAX)
        test_cases[test_count++] = (struct test_case){name, fn};
}

#define TEST(name)                                                       \
    static void test_##name(void);                                       \
    __attribute__((constructor)) static void test_reg_##name(void)      \
    {                                                                    \
        test_register(#name, test_##name);                               \
    }                                                                    \
    static void test_##name(void)

/* Exit code a child uses to report a skip. */
#define TEST_SKIP_CODE 77

#define TEST_FAILF(...)                                                  \
    do {                                                                 \
        fprintf(stderr, "    %s:%d: ", __FILE__, __LINE__);              \
        fprintf(stderr, __VA_ARGS__);                                    \
        fputc('\n', stderr);                                             \
        test_failed_here = 1;                                            \
    } while (0)

/* CHECK* record a failure and continue; REQUIRE* stop the test. */
#define CHECK(cond)                                                      \
    do {                                                                 \
        if (!(cond))                                                     \
            TEST_FAILF("CHECK(%s) failed", #cond);                       \
    } while (0)
#define REQUIRE(cond)                                                    \
    do {                                                                 \
        if (!(cond)) {                                                   \
            TEST_FAILF("REQUIRE(%s) failed", #cond);                     \
            exit(1);                                                     \
        }                                                                \
    } while (0)
#define CHECK_INT(a, b)                                                  \
    do {                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);             \
        if (a_ != b_)                                                    \
            TEST_FAILF("%s == %lld, expected %s == %lld", #a, a_, #b, b_); \
    } while (0)
#define CHECK_U64(a, b)                                                  \
    do {                                                                 \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                 \
        if (a_ != b_)                                                    \
            TEST_FAILF("%s == 0x%" PRIx64 ", expected 0x%" PRIx64, #a, a_, b_); \
    } while (0)
#define CHECK_STR(a, b)                                                  \
    do {                                                                 \
        const char *a_ = (a), *b_ = (b);                                 \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                           \
            TEST_FAILF("%s == \"%s\", expected \"%s\"", #a,              \
                       a_ ? a_ : "(null)", b_ ? b_ : "(null)");          \
    } while (0)
#define SKIP(...)                                                        \
    do {                                                                 \
        fprintf(stderr, "    skip: ");                                   \
        fprintf(stderr, __VA_ARGS__);                                    \
        fputc('\n', stderr);                                             \
        fflush(stderr);                                                  \
        _exit(TEST_SKIP_CODE);                                           \
    } while (0)

static int test_selected(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i]))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int pass = 0, fail = 0, skip = 0;
    int timeout = 60;
    const char *t = getenv("TEST_TIMEOUT_S");
    if (t && atoi(t) > 0)
        timeout = atoi(t);
    const char *prog = strrchr(argv[0], '/');
    prog = prog ? prog + 1 : argv[0];
    for (int i = 0; i < test_count; i++) {
        if (!test_selected(test_cases[i].name, argc, argv))
            continue;
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            alarm((unsigned)timeout);
            test_cases[i].fn();
            fflush(stdout);
            fflush(stderr);
            _exit(test_failed_here ? 1 : 0);
        }
        int st = 0;
        while (waitpid(pid, &st, 0) < 0)
            ;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            pass++;
            printf("PASS %s/%s\n", prog, test_cases[i].name);
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == TEST_SKIP_CODE) {
            skip++;
            printf("SKIP %s/%s\n", prog, test_cases[i].name);
        } else {
            fail++;
            if (WIFSIGNALED(st))
                printf("FAIL %s/%s: killed by signal %d%s\n", prog, test_cases[i].name,
                       WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
            else
                printf("FAIL %s/%s\n", prog, test_cases[i].name);
        }
    }
    printf("%s: %d passed, %d failed, %d skipped\n", prog, pass, fail, skip);
    return fail ? 1 : 0;
}

#endif
