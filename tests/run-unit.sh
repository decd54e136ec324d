#!/bin/sh
# Runs each unit-test program given as an argument and sums their counts.
pass=0 fail=0 skip=0 status=0
for t in "$@"; do
    out=$("$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -v '^PASS '
    line=$(printf '%s\n' "$out" | tail -n 1)
    p=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9]*\) passed.*/\1/p')
    f=$(printf '%s\n' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    s=$(printf '%s\n' "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
    if [ -z "$p" ]; then
        echo "FAIL $t: exited with status $rc before reporting"
        fail=$((fail + 1)); status=1; continue
    fi
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    [ "$rc" -eq 0 ] || status=1
done
echo "unit tests: $pass passed, $fail failed, $skip skipped"
exit $status
