# pystrobe: `make` builds ./pystrobe; `make check` runs every test;
# `make demo` records the bundled demo; `make bench` measures.

CC      ?= gcc
CFLAGS  ?= -O2 -g
PREFIX  ?= /usr/local
PYTHON  ?= python3

WARN     = -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes \
           -Wvla -Wwrite-strings -Wshadow -fno-common
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -I. $(WARN) $(CFLAGS) -MMD -MP
LIBS     = -ldw -lelf -lz -lm
SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

SRCS     := $(wildcard common/*.c profiler/*/*.c symbolizer/*.c output/*.c)
LIB_SRCS := $(filter-out profiler/commands/main.c,$(SRCS))
OBJS     := $(SRCS:%.c=build/%.o)
LIB_OBJS := $(LIB_SRCS:%.c=build/%.o)
SAN_OBJS := $(LIB_SRCS:%.c=build/asan/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/unit/%)
SAN_BINS  := $(UNIT_SRCS:tests/unit/%.c=build/asan/unit/%)

all: pystrobe

pystrobe: $(OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $(OBJS) $(LIBS)

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -c -o $@ $<

# pystrobe itself under AddressSanitizer and UBSan, for the stress tests.
build/asan/pystrobe: $(SAN_OBJS) build/asan/profiler/commands/main.o
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -o $@ $^ $(LIBS)

build/unit/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(LIB_OBJS) $(LIBS)

build/asan/unit/%: tests/unit/%.c $(SAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -Itests/unit -o $@ $< $(SAN_OBJS) $(LIBS)

unit: $(UNIT_BINS)
	@sh tests/run-unit.sh $(UNIT_BINS)

# The include graph against the stages of docs/architecture.md.
structure:
	@mkdir -p build
	@if $(PYTHON) tools/structure.py >build/structure.txt 2>&1; then \
	    echo "PASS structure: no include against the stages, no include cycle"; \
	else cat build/structure.txt; echo "FAIL structure: an include against the stages, or a cycle (above)"; exit 1; fi

unit-asan: $(SAN_BINS)
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    sh tests/run-unit.sh $(SAN_BINS)

e2e: pystrobe build/native-stack build/asan/pystrobe
	@$(PYTHON) tests/e2e/run.py

viewers: pystrobe
	@sh tests/viewers/run.sh ./pystrobe

FUZZ_SECONDS ?= 60
FUZZ_SAVE    ?= 0

# libFuzzer targets (clang): FUZZ_SECONDS each; FUZZ_SAVE=1 merges new coverage
# into tests/fuzz/corpus/.  Skipped (not failed) without clang's libFuzzer runtime.
fuzz:
	@FUZZ_SAVE=$(FUZZ_SAVE) sh tests/fuzz/run.sh $(FUZZ_SECONDS)

fuzz-quick:
	@sh tests/fuzz/run.sh 5

# pystrobe under ASan+UBSan recording churning targets at 10 kHz (tests/stress/):
# short in `make check`, 60 s per case in `make stress`.  STRESS_XFAIL names known
# pystrobe bugs as TAG:N: up to N cases failing only with TAG are reported XFAIL,
# more fail the run; until they are fixed (empty it to be strict; see
# tests/stress/run.py for what each checks).
STRESS_XFAIL ?= rootless:2,thread-labels:2
STRESS_ARGS  ?=

stress-short: build/asan/pystrobe
	@$(PYTHON) tests/stress/run.py --pystrobe build/asan/pystrobe --xfail '$(STRESS_XFAIL)' $(STRESS_ARGS)

stress: build/asan/pystrobe
	@$(PYTHON) tests/stress/run.py --long --pystrobe build/asan/pystrobe --xfail '$(STRESS_XFAIL)' $(STRESS_ARGS)

# The benchmark harness in a quick mode: it must run and keep no impossible stack
# (bench/stackcheck.py); nothing about timings is asserted.
bench-quick: pystrobe build/bench/readv_cost build/bench/tick_cost
	@BENCH_QUICK=1 $(PYTHON) bench/run.py

# Every part's output goes to build/check.log; then the run fails if a test
# skipped that tests/skips-allowed.txt does not allow (with CI=true:
# tests/skips.py), or if the golden files changed while it ran (a writer's
# output is compared, never taken: `make golden-update` rewrites them).
CHECK_PARTS = structure unit unit-asan e2e stress-short viewers fuzz-quick bench-quick

check: pystrobe
	@mkdir -p build
	@sha256sum tests/golden/* >build/golden.sums
	@{ $(MAKE) --no-print-directory $(CHECK_PARTS); echo $$? >build/check.status; } 2>&1 | tee build/check.log
	@st=$$(cat build/check.status); \
	if ! sha256sum --quiet --check build/golden.sums >/dev/null 2>&1; then \
	    echo "FAIL golden: tests/golden changed during make check (PYSTROBE_UPDATE_GOLDEN set?); use make golden-update and review the diff"; st=1; \
	fi; \
	$(PYTHON) tests/skips.py build/check.log || st=1; \
	exit $$st

# Rewrites tests/golden/ from the writers' output on the fixed profile; review
# the diff before committing.  Refused with CI=true.
GOLDEN_TESTS = build/unit/test_svg build/unit/test_speedscope build/unit/test_pprof

golden-update: $(GOLDEN_TESTS)
	@if [ "$$CI" = true ]; then echo "pystrobe: golden-update is refused with CI=true: CI compares against the committed files" >&2; exit 1; fi
	@PYSTROBE_UPDATE_GOLDEN=1 sh tests/run-unit.sh $(GOLDEN_TESTS)
	@git status --short tests/golden 2>/dev/null || true

demo: pystrobe
	@sh tests/demo.sh

# Each thread's native stack and its cost (tools/; tests/e2e/e2e_nativestack.py runs it).
build/native-stack: tools/native-stack.c $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_OBJS) $(LIBS)

build/bench/readv_cost: bench/readv_cost.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $<

build/bench/tick_cost: bench/tick_cost.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $<

build/bench/writers_cost: bench/writers_cost.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_OBJS) $(LIBS)

bench: pystrobe build/bench/readv_cost build/bench/tick_cost build/bench/writers_cost
	@$(PYTHON) bench/run.py
	@$(PYTHON) bench/writers.py

install: pystrobe
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 pystrobe $(DESTDIR)$(PREFIX)/bin/pystrobe

clean:
	rm -rf build pystrobe

# Keep the sanitizer objects between runs.
.SECONDARY:

.PHONY: all structure unit unit-asan e2e viewers fuzz fuzz-quick stress stress-short bench-quick check golden-update demo bench install clean

-include $(OBJS:.o=.d) $(SAN_OBJS:.o=.d)
-include $(UNIT_BINS:=.d) $(SAN_BINS:=.d)
