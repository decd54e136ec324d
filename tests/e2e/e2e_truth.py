"""End-to-end tests of the shares a profile gives, against a measured truth,
on every interpreter.  Run by run.py: group(ctx, I, rt), where rt is harness.py.

The target is bench/workloads/truth.py: each thread works in 40 ms slices of
one kind after another (Python reached implicitly from C, a plain loop,
generators, deep recursion, fast recursion, C calls that let the GIL go) and
times its own slices.  A profile's share of a kind (its samples in
`slice_KIND` over its samples in any slice) must match the time the target
measured, attached and launched, from 100 Hz to 2 kHz, and with several
threads under --idle; and what the sampler drops as torn must stay under 1%
of its samples.  bench/truthcheck.py runs the target and compares.

Tolerances: a share within 1 point, or 2.5 standard deviations of a share
of that many samples, whichever is larger.  On a quiet machine a single
thread's ticks fall on its slices at a steady phase and come out well
within the point; with other work on the CPUs (or several threads taking
the GIL in turn) the phase is random, and a point is less than chance
allows at 100 Hz.  Torn drops likewise: at most 1% of the samples, or
2.5 standard deviations above it.  A run that fails is taken again, three
runs in all: a machine busy enough to starve the sampler for a while
skews one run, a bias of the profiler every one.
"""
import math

import truthcheck

TORN_MAX = 0.01       # torn drops, of samples
ATTEMPTS = 3          # runs, the first to pass passes
SHARE_POINTS = 1.0      # points
RUNS = [
    # name, how, rate, kinds, seconds, threads, extra
    ('attach-100hz', 'attach', 100, ('implicit', 'plain', 'gen', 'deep'), 4.0, 1, ()),
    ('attach-1khz', 'attach', 1000, ('implicit', 'plain', 'gen', 'deep', 'fib', 'ccall'), 4.0, 1, ()),
    ('launch-2khz', 'launch', 2000, ('implicit', 'plain', 'fib'), 3.0, 1, ()),
    ('threads-idle', 'attach', 250, ('implicit', 'plain', 'ccall', 'fib'), 5.0, 3, ('--idle',)),
]


def tolerance(share, n):
    sd = math.sqrt(share * (1 - share) / n) * 100 if n else 100.0
    return max(SHARE_POINTS, 2.5 * sd)


def torn_allowed(samples):
    return TORN_MAX * samples + 2.5 * math.sqrt(TORN_MAX * samples)


def group(ctx, I, rt):
    R = ctx.runner
    pfx = I.label + '/truth-'

    def attempt(how, rate, kinds, seconds, threads, extra):
        """The problems of one run, with where they were seen."""
        P = rt.Problems()
        run = truthcheck.attach if how == 'attach' else truthcheck.launch
        try:
            r = run(rt.PYSTROBE, I.exe, rate, kinds=kinds, seconds=seconds, threads=threads,
                    extra=extra, timeout=rt.T_RECORD + int(seconds) * 2, tmp=ctx.tmp,
                    spawn=rt.spawn)
        except RuntimeError as e:
            return [str(e)], ''
        where = '\n    $ %s\n    stderr: %s' % (' '.join(r.argv), rt.clip(r.err, 1500).replace('\n', '\n            '))
        P.expect(r.rc == 0, 'exit status %s, expected 0' % r.rc)
        P.expect(r.counts, 'no sample in any slice')
        for name_, tid, kind, true, got, n in r.shares():
            tol = tolerance(true, n)
            P.expect(abs(got - true) * 100 <= tol,
                     '%s %s: %.1f%% of %d samples, the truth %.1f%% (off by %.2f points, at most %.2f)'
                     % (name_, kind, got * 100, n, true * 100, abs(got - true) * 100, tol))
        P.expect(r.torn <= torn_allowed(r.samples),
                 '%d samples dropped as torn, of %d (at most %.1f: %d%% and chance)'
                 % (r.torn, r.samples, torn_allowed(r.samples), TORN_MAX * 100))
        return P.items, where

    def case(name, how, rate, kinds, seconds, threads, extra):
        def fn():
            # A busy machine can starve the sampler or the target for a
            # while (ticks behind schedule, a slice's phase): a run is
            # taken again, ATTEMPTS in all.  A bias of the profiler's
            # fails every one.
            seen = []
            for k in range(ATTEMPTS):
                items, where = attempt(how, rate, kinds, seconds, threads, extra)
                if not items:
                    return
                seen.append('run %d of %d:\n  - %s%s' % (k + 1, ATTEMPTS, '\n  - '.join(items), where))
            raise rt.Failure('\n' + '\n'.join(seen))
        R.case(pfx + name, fn)

    for spec in RUNS:
        case(*spec)
