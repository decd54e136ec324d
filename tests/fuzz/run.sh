#!/bin/sh
# Builds the libFuzzer targets with clang, replays every saved reproducer,
# then fuzzes each target for SECONDS:
#
#   sh tests/fuzz/run.sh SECONDS [TARGET...]     (targets: walk asyncio linetable pystr folded core)
#
# Each target fuzzes from a fresh copy of its seeds (tests/fuzz/corpus/T, copied
# to build/fuzz/corpus-T), so the committed corpus does not grow; with
# FUZZ_SAVE=1 the inputs that found new coverage are merged back into it.
# A crash, a hang (-timeout) or running out of memory (-rss_limit_mb) is a
# failure; its input is kept in tests/fuzz/crashes/T/, which is replayed (and
# must pass) on every run.  A target is skipped, not failed, when clang or its
# libFuzzer runtime is missing.  CLANG picks the compiler (default clang).
# Prints PASS/FAIL/SKIP per target and a summary; exits 1 on any failure.

usage() {
    echo "usage: sh tests/fuzz/run.sh SECONDS [walk|asyncio|linetable|pystr|folded|core ...]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
secs=$1
shift
case $secs in '' | *[!0-9]*) usage ;; esac
[ "$secs" -gt 0 ] || usage

cd "$(dirname "$0")/../.." || exit 1
targets=${*:-walk asyncio linetable pystr folded core}
CLANG=${CLANG:-clang}
OUT=build/fuzz
CFLAGS_FUZZ="-std=c11 -D_GNU_SOURCE -I. -g -O1 -Wall -Wextra \
-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# Reports with symbols and stacks; UBSan findings end the run like ASan's.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

pass=0 fail=0 skip=0

# The sources and options of each target.
# shellcheck disable=SC2046
srcs() {
    case $1 in
    walk) echo tests/fuzz/fuzz_walk.c $(find common profiler symbolizer output -name '*.c' ! -name main.c | sort) ;;
    asyncio) echo tests/fuzz/fuzz_asyncio.c $(find common profiler symbolizer output -name '*.c' ! -name main.c | sort) ;;
    linetable) echo tests/fuzz/fuzz_linetable.c symbolizer/linetable.c ;;
    pystr) echo tests/fuzz/fuzz_pystr.c symbolizer/pystr.c profiler/target/mem.c profiler/target/core.c profiler/target/core_files.c profiler/target/proc.c \
        profiler/cpython/layout.c profiler/cpython/opcodes.c common/util.c ;;
    core) echo tests/fuzz/fuzz_core.c profiler/target/mem.c profiler/target/core.c profiler/target/core_files.c profiler/target/proc.c \
        profiler/target/task.c profiler/target/ptstop.c common/util.c ;;
    folded) echo tests/fuzz/fuzz_folded.c output/foldedin.c output/profile.c output/folded.c \
        output/diff.c output/label.c symbolizer/names.c common/util.c common/htab.c ;;
    esac
}
extra() {
    case $1 in
    walk | asyncio) echo "-Itests/unit" ;;
    esac
}
libs() {
    case $1 in
    walk | asyncio) echo "-ldw -lelf -lz -lm" ;;
    folded) echo "-lm" ;;
    esac
}
# Longest input: walk's and asyncio's edits are 8 bytes each; a line table fits in 2 KiB;
# pystr needs room for PYSTR_MAX_CHARS UCS-4 characters and their header.
max_len() {
    case $1 in
    walk | asyncio) echo 512 ;;
    linetable) echo 2048 ;;
    pystr) echo 18432 ;;
    folded) echo 4096 ;;
    core) echo 16384 ;;
    esac
}

# The sanitizer's or libFuzzer's report in a log (not the input's bytes,
# which are in the file), for the FAIL message.
show_log() {
    sed -n '/ERROR\|runtime error\|ALARM\|out-of-memory\|fuzz_[a-z]*: \|deadly signal/,$p' "$1" |
        awk '/^0x/ { skip = 2 } skip { skip--; next } !/^(MS:|#[0-9]|INFO|Done|stat::|Base64)/' |
        head -n 40 | sed 's/^/    /'
}

# Whether clang can build and link a libFuzzer target at all.
probe() {
    if ! command -v "$CLANG" >/dev/null 2>&1; then
        echo "$CLANG not found (Debian 12: apt-get install clang libclang-rt-14-dev)"
        return 1
    fi
    mkdir -p "$OUT"
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
        >"$OUT/probe.c"
    if ! $CLANG -fsanitize=fuzzer,address,undefined -o "$OUT/probe" "$OUT/probe.c" >"$OUT/probe.log" 2>&1; then
        major=$($CLANG -dumpversion 2>/dev/null | cut -d. -f1)
        echo "$CLANG cannot link -fsanitize=fuzzer,address,undefined: its libFuzzer/sanitizer runtime is missing" \
            "(Debian/Ubuntu: apt-get install libclang-rt-${major:-N}-dev; see $OUT/probe.log)"
        return 1
    fi
    return 0
}

# Builds $OUT/fuzz_T unless it is newer than every source it depends on.
build() {
    t=$1 bin=$OUT/fuzz_$1
    if [ -x "$bin" ] && [ -z "$(find common profiler symbolizer output tests/fuzz tests/unit \
        \( -name '*.c' -o -name '*.h' -o -name run.sh \) -newer "$bin" 2>/dev/null | head -n 1)" ]; then
        return 0
    fi
    # shellcheck disable=SC2046,SC2086
    $CLANG $CFLAGS_FUZZ $(extra "$t") -o "$bin" $(srcs "$t") $(libs "$t") >"$OUT/$t-build.log" 2>&1
}

# Symbolized stacks need llvm-symbolizer (Debian: llvm-N); clang knows where its own is.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && ! command -v llvm-symbolizer >/dev/null 2>&1; then
    sym=$($CLANG -print-prog-name=llvm-symbolizer 2>/dev/null)
    [ -x "$sym" ] && export ASAN_SYMBOLIZER_PATH="$sym"
fi

if ! why=$(probe); then
    for t in $targets; do
        echo "SKIP fuzz/$t: $why"
        skip=$((skip + 1))
    done
    echo "fuzz: $pass passed, $fail failed, $skip skipped"
    exit 0
fi

for t in $targets; do
    if [ -z "$(srcs "$t")" ]; then
        echo "FAIL fuzz/$t: no such target (walk, asyncio, linetable, pystr, folded, core)"
        fail=$((fail + 1))
        continue
    fi
    bin=$OUT/fuzz_$t
    crashes=tests/fuzz/crashes/$t
    opts="-timeout=10 -rss_limit_mb=2048 -max_len=$(max_len "$t")"
    if ! build "$t"; then
        echo "FAIL fuzz/$t: build failed ($OUT/$t-build.log)"
        sed 's/^/    /' "$OUT/$t-build.log" | head -n 30
        fail=$((fail + 1))
        continue
    fi

    # Every saved reproducer must now pass.
    repros=$(find "$crashes" -type f ! -name '.*' 2>/dev/null | sort)
    if [ -n "$repros" ]; then
        # shellcheck disable=SC2086
        if ! timeout -k 10 300 "$bin" $opts $repros >"$OUT/$t-replay.log" 2>&1; then
            echo "FAIL fuzz/$t: a reproducer in $crashes/ fails again ($OUT/$t-replay.log)"
            show_log "$OUT/$t-replay.log"
            fail=$((fail + 1))
            continue
        fi
    fi

    # Fuzz from a fresh copy of the seeds.
    corpus=$OUT/corpus-$t
    artifacts=$OUT/artifacts-$t
    rm -rf "$corpus" "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    [ -d "tests/fuzz/corpus/$t" ] && cp tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null
    start=$(date +%s)
    # shellcheck disable=SC2086
    timeout -k 10 $((secs + 120)) "$bin" $opts -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$corpus" >"$OUT/$t.log" 2>&1
    rc=$?
    elapsed=$(($(date +%s) - start))
    runs=$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$OUT/$t.log" | tail -n 1)
    [ -n "$runs" ] || runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$OUT/$t.log" | tail -n 1)

    found=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \
        -o -name 'leak-*' \) | sort)
    if [ -n "$found" ] || [ "$rc" -ne 0 ]; then
        mkdir -p "$crashes"
        saved=
        for f in $found; do
            cp "$f" "$crashes/"
            saved="$saved $crashes/$(basename "$f")"
        done
        if [ -n "$saved" ]; then
            echo "FAIL fuzz/$t: found a failing input after ${runs:-?} runs, saved as$saved" \
                "(replay: $bin$saved; log $OUT/$t.log)"
        elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "FAIL fuzz/$t: libFuzzer did not finish within $((secs + 120)) s (log $OUT/$t.log)"
        else
            echo "FAIL fuzz/$t: libFuzzer exited with status $rc (log $OUT/$t.log)"
        fi
        show_log "$OUT/$t.log"
        fail=$((fail + 1))
        continue
    fi

    if [ "${FUZZ_SAVE:-0}" = 1 ]; then
        # shellcheck disable=SC2086
        if ! "$bin" $opts -merge=1 "tests/fuzz/corpus/$t" "$corpus" >"$OUT/$t-merge.log" 2>&1; then
            echo "FAIL fuzz/$t: merging into tests/fuzz/corpus/$t failed ($OUT/$t-merge.log)"
            fail=$((fail + 1))
            continue
        fi
    fi
    echo "PASS fuzz/$t (${runs:-?} runs in $elapsed s)"
    pass=$((pass + 1))
done

echo "fuzz: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
