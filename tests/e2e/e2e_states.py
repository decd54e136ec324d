"""End-to-end tests of thread states, sampling modes, thread filters and
--subprocesses, on every interpreter.  Run by run.py: group(ctx, I, rt),
where rt is run.py's module (its helpers: Problems, record, parse_folded...).
"""


def group(ctx, I, rt):
    pass
