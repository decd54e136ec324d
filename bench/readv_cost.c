/*
 * The baseline of `make bench`: the cost of one process_vm_readv of 8 bytes
 * from a target, on this machine, now.  Usage: readv_cost PID ADDRESS [N]
 * (ADDRESS in hex, readable in PID).  Prints microseconds per call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: readv_cost PID ADDRESS [N]\n");
        return 2;
    }
    pid_t pid = (pid_t)atoi(argv[1]);
    unsigned long long addr = strtoull(argv[2], NULL, 16);
    long n = argc > 3 ? atol(argv[3]) : 20000;
    char buf[8];
    struct iovec local = {buf, sizeof(buf)};
    struct iovec remote = {(void *)(unsigned long)addr, sizeof(buf)};
    double t0 = now_us();
    for (long i = 0; i < n; i++) {
        if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t)sizeof(buf)) {
            fprintf(stderr, "readv_cost: %s\n", strerror(errno));
            return 1;
        }
    }
    printf("%.3f\n", (now_us() - t0) / (double)n);
    return 0;
}
