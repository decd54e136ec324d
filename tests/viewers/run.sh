#!/bin/sh
# Opens pystrobe's outputs in the tools people read them with: go tool pprof,
# headless Chromium (the SVG flame graph), speedscope's schema and page.
# Each check_*.py exits 0 (pass), 1 (fail) or 77 (skip, saying why).
# Usage: tests/viewers/run.sh PYSTROBE [NAME...]
pystrobe=${1:?usage: run.sh PYSTROBE [NAME...]}
shift
py=${PYTHON:-python3}
dir=$(dirname "$0")
pass=0 fail=0 skip=0
for t in "$dir"/check_*.py; do
    name=$(basename "$t" .py)
    name=${name#check_}
    if [ $# -gt 0 ]; then
        case " $* " in *" $name "*) ;; *) continue ;; esac
    fi
    out=$("$py" "$t" "$pystrobe" 2>&1)
    rc=$?
    case $rc in
    0) echo "PASS viewers/$name"; pass=$((pass + 1)) ;;
    77) echo "SKIP viewers/$name: $(printf '%s\n' "$out" | tail -n 1)"; skip=$((skip + 1)) ;;
    *) echo "FAIL viewers/$name (exit status $rc):"; printf '%s\n' "$out" | sed 's/^/    /'
       fail=$((fail + 1)) ;;
    esac
done
echo "viewers: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
