# carteiro — build, run, test.
#
#   make            build build/release/carteiro (CC=clang works too)
#   make run        install missing build dependencies, build, start the demo server
#   make test       build with ASan+UBSan and run every test (ends with "N passed, N failed")
#   make test TEST_ARGS=--long   also the long crash and load tests (minutes)
#   make fuzz       run every libFuzzer target for FUZZ_SECONDS each
#   make bench      carteiro against Postfix and Dovecot (as root; installs them, starts private
#                   instances on loopback; BENCH_QUICK=1 for a short run, BENCH_ARGS=--help)
#   make VARIANT=clang  the same with clang (make test builds with both compilers)
#
# Build variants live in build/<variant>/; objects mirror src/.

VARIANT ?= release
CC ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif

PKGS := libevent libevent_openssl libevent_pthreads openssl libcares zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral -Wvla -Wpointer-arith
BASE_CFLAGS := -std=c17 -D_GNU_SOURCE -Isrc $(WARN) $(PKG_CFLAGS) -pthread
LIBS := $(PKG_LIBS) -lcrypt -pthread

ifeq ($(VARIANT),release)
VARIANT_CFLAGS := -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
VARIANT_LDFLAGS := -pie -Wl,-z,relro,-z,now
else ifeq ($(VARIANT),asan)
VARIANT_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all -DCARTEIRO_SANITIZE=1
VARIANT_LDFLAGS := -fsanitize=address,undefined
else ifeq ($(VARIANT),clang)
CC := clang
VARIANT_CFLAGS := -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
VARIANT_LDFLAGS := -pie -Wl,-z,relro,-z,now
else ifeq ($(VARIANT),fuzz)
CC := clang
VARIANT_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=all -DCARTEIRO_FUZZ=1
VARIANT_LDFLAGS := -fsanitize=fuzzer,address,undefined
endif

CFLAGS ?=
LDFLAGS ?=
ALL_CFLAGS := $(BASE_CFLAGS) $(VARIANT_CFLAGS) $(CFLAGS)
ALL_LDFLAGS := $(VARIANT_LDFLAGS) $(LDFLAGS)

B := build/$(VARIANT)

LIB_SRC := $(sort $(wildcard src/*/*.c))
MAIN_SRC := src/main.c
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
MAIN_OBJ := $(MAIN_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
# Programs that scenario tests drive (not run bare by tests/run.py: no test_ prefix);
# dkim_tool is built by the tests/% rule from tests/unit/dkim_tool.c.
TOOL_BIN := $(B)/tests/spf_suite $(B)/tests/dkim_tool
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(B)/fuzz/%)
DEPS := $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_BIN:=.d) $(TOOL_BIN:=.d) $(FUZZ_BIN:=.d)

.PHONY: all build run test unit fuzz fuzz-build clean deps test-deps bench
.DEFAULT_GOAL := all

all: build
build: $(B)/carteiro

# V=1 shows the whole commands.
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-5s %s\n'
endif

$(B)/carteiro: $(MAIN_OBJ) $(B)/libcarteiro.a
	$(say) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/libcarteiro.a: $(LIB_OBJ)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(say) CC $(VARIANT)/$<
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/tests/%: tests/unit/%.c $(B)/libcarteiro.a tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(say) TEST $@
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit -MMD -MP -MF $@.d $(ALL_LDFLAGS) -o $@ $< \
		$(B)/libcarteiro.a $(LIBS)

$(B)/tests/spf_suite: tests/unit/spf_suite_driver.c $(B)/libcarteiro.a
	@mkdir -p $(dir $@)
	$(say) TOOL $@
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit -MMD -MP -MF $@.d $(ALL_LDFLAGS) -o $@ $< \
		$(B)/libcarteiro.a $(LIBS)

$(B)/fuzz/%: fuzz/%.c $(B)/libcarteiro.a
	@mkdir -p $(dir $@)
	$(say) FUZZ $@
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -MF $@.d $(ALL_LDFLAGS) -o $@ $< $(B)/libcarteiro.a $(LIBS)

unit: $(UNIT_BIN) $(TOOL_BIN)
fuzz-build: $(FUZZ_BIN)

-include $(DEPS)

# --- the README's two commands -------------------------------------------

deps:
	@scripts/deps.sh build

test-deps:
	@scripts/deps.sh test

run: deps
	@$(MAKE) --no-print-directory VARIANT=release build
	@scripts/demo.sh build/release/carteiro

test: test-deps
	@$(MAKE) --no-print-directory VARIANT=clang build unit
	@$(MAKE) --no-print-directory VARIANT=asan build unit
	@$(MAKE) --no-print-directory VARIANT=fuzz fuzz-build
	@/usr/bin/python3 tests/run.py --binary build/asan/carteiro --unit-dir build/asan/tests \
		--fuzz-dir build/fuzz/fuzz $(TEST_ARGS)

FUZZ_SECONDS ?= 180
fuzz: test-deps
	@$(MAKE) --no-print-directory VARIANT=fuzz fuzz-build
	@scripts/fuzz.sh build/fuzz/fuzz $(FUZZ_SECONDS)

# The release build, so that the numbers are the ones a user gets.
bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory VARIANT=release build
	@/usr/bin/python3 bench/bench.py $(BENCH_ARGS)

clean:
	rm -rf build
