/*
 * The other baseline of `make bench`: what a sampling loop costs with nothing
 * to sample.  It wakes at absolute deadlines RATE times a second, reads the
 * clock as pystrobe's loop does, and does nothing else.  On a virtual machine
 * the wake-ups alone take several microseconds of CPU each.
 * Usage: tick_cost RATE [TICKS].  Prints microseconds of CPU per tick.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2 || atof(argv[1]) <= 0) {
        fprintf(stderr, "usage: tick_cost RATE [TICKS]\n");
        return 2;
    }
    uint64_t period = (uint64_t)(1e9 / atof(argv[1]));
    long ticks = argc > 2 ? atol(argv[2]) : 2000;
    if (period == 0 || ticks <= 0) {
        fprintf(stderr, "tick_cost: bad rate or tick count\n");
        return 2;
    }
    uint64_t cpu0 = ns(CLOCK_PROCESS_CPUTIME_ID), next = ns(CLOCK_MONOTONIC);
    for (long i = 0; i < ticks; i++) {
        next += period;
        struct timespec ts = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        (void)ns(CLOCK_MONOTONIC);
    }
    printf("%.3f\n", (double)(ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / 1e3 / (double)ticks);
    return 0;
}
