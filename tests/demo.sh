#!/bin/sh
# `make demo`: records the bundled demo program into a flame graph and shows where its time went.
set -eu
PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "pystrobe demo: needs $PYTHON to run the demo program (apt-get install python3)" >&2
    exit 1
fi
./pystrobe record -r 200 --threads -o demo.folded -- "$PYTHON" bench/workloads/demo.py 3
./pystrobe convert demo.folded --rate 200 --title "demo.py (make demo)" -o demo.svg
echo
echo "Hottest functions (leaf frames, share of samples):"
awk '{ n = $NF; total += n; sub(/ [0-9]+$/, ""); k = split($0, f, ";"); leaf[f[k]] += n }
     END { for (l in leaf) printf "%6.1f%%  %s\n", 100 * leaf[l] / total, l }' demo.folded |
    sort -rn | head -8
echo
echo "Flame graph: demo.svg (open it in a browser); folded stacks: demo.folded"
