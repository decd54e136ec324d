"""End-to-end tests of the shares a profile gives, against a measured truth,
on every interpreter.  Run by run.py: group(ctx, I, rt), where rt is run.py's
module.

The target is bench/workloads/truth.py: each thread works in 40 ms slices of
one kind after another (Python reached implicitly from C, a plain loop,
generators, deep recursion, fast recursion, C calls that let the GIL go) and
times its own slices.  A profile's share of a kind (its samples in
`slice_KIND` over its samples in any slice) must match the time the target
measured, attached and launched, from 100 Hz to 2 kHz, and with several
threads under --idle; and what the sampler drops as torn must stay under 1%
of its samples.  bench/truthcheck.py runs the target and compares.

Tolerances: a single thread's shares within 1 point.  Several threads wait
for the GIL in turn and are sampled every tick whatever they do (--idle),
which is exact for each, but the slices' phase against the ticks is less
regular: within 1 point or 2.5 standard deviations of a share of that many
samples, whichever is larger.
"""
import math

import truthcheck

TORN_MAX = 0.01       # torn drops, of samples
ONE_THREAD = 1.0      # points
RUNS = [
    # name, how, rate, kinds, seconds, threads, extra
    ('attach-100hz', 'attach', 100, ('implicit', 'plain', 'gen', 'deep'), 4.0, 1, ()),
    ('attach-1khz', 'attach', 1000, ('implicit', 'plain', 'gen', 'deep', 'fib', 'ccall'), 4.0, 1, ()),
    ('launch-2khz', 'launch', 2000, ('implicit', 'plain', 'fib'), 3.0, 1, ()),
    ('threads-idle', 'attach', 250, ('implicit', 'plain', 'ccall', 'fib'), 5.0, 3, ('--idle',)),
]


def tolerance(share, n, threads):
    if threads == 1:
        return ONE_THREAD
    sd = math.sqrt(share * (1 - share) / n) * 100 if n else 100.0
    return max(ONE_THREAD, 2.5 * sd)


def group(ctx, I, rt):
    R = ctx.runner
    pfx = I.label + '/truth-'

    def case(name, how, rate, kinds, seconds, threads, extra):
        def fn():
            P = rt.Problems()
            run = truthcheck.attach if how == 'attach' else truthcheck.launch
            try:
                r = run(rt.PYSTROBE, I.exe, rate, kinds=kinds, seconds=seconds, threads=threads,
                        extra=extra, timeout=rt.T_RECORD + int(seconds) * 2, tmp=ctx.tmp,
                        spawn=rt.spawn)
            except RuntimeError as e:
                raise rt.Failure(str(e))
            where = '\n    $ %s\n    stderr: %s' % (' '.join(r.argv), rt.clip(r.err, 1500).replace('\n', '\n            '))
            P.expect(r.rc == 0, 'exit status %s, expected 0' % r.rc)
            P.expect(r.counts, 'no sample in any slice')
            for name_, tid, kind, true, got, n in r.shares():
                tol = tolerance(true, n, threads)
                P.expect(abs(got - true) * 100 <= tol,
                         '%s %s: %.1f%% of %d samples, the truth %.1f%% (off by %.2f points, at most %.2f)'
                         % (name_, kind, got * 100, n, true * 100, abs(got - true) * 100, tol))
            P.expect(r.torn <= TORN_MAX * max(r.samples, 1),
                     '%d samples dropped as torn, of %d (at most %d%%)' % (r.torn, r.samples, TORN_MAX * 100))
            P.fail_if_any(where)
        R.case(pfx + name, fn)

    for spec in RUNS:
        case(*spec)
