"""End-to-end tests of `pystrobe top` under a pseudo-terminal.  Run by
run.py: group(ctx, interps, rt), where rt is run.py's module.
"""


def group(ctx, interps, rt):
    pass
