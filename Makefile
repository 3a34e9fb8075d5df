# mqc: asynchronous MongoDB client for C, and mqload.
# Plain GNU make. Dependencies come from pkg-config (libev has no .pc on Debian: see LIBEV_*).
#
#   make                 libmqc.a, libmqc.so, mqload, examples, the scripted server (build/tests/stubd)
#   make test            unit + spec + integration tests, plain build and ASan+UBSan build
#   make spec-test SPEC_TESTS=DIR   only the driver specification tests, from DIR (per-folder table)
#   make bench           benchmark against the peers (see bench/README.md)
#   make fuzz FUZZ_SECONDS=N        each libFuzzer target for N seconds (clang)
#   make demo            install deps, build, start FerretDB, run mqload, print the report
#   make install PREFIX=/usr/local DESTDIR=
#   make clean

PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
CC       ?= cc
SAN      ?=
V        ?=
SPEC_TESTS ?= ../shared/spec-tests
FUZZ_SECONDS ?= 10
TEST_ARGS ?=

# The version is written once, in include/mqc.h (MQC_VERSION_MAJOR/MINOR/PATCH, from which the
# header also makes the string MQC_VERSION): read it from there.
mqc_version_part = $(shell sed -n 's/^[#]define MQC_VERSION_$(1)  *\([0-9][0-9]*\) *$$/\1/p' include/mqc.h)
VERSION      := $(call mqc_version_part,MAJOR).$(call mqc_version_part,MINOR).$(call mqc_version_part,PATCH)
ifeq ($(shell echo '$(VERSION)' | grep -Ex '[0-9]+[.][0-9]+[.][0-9]+'),)
  $(error could not read the version from include/mqc.h (MQC_VERSION_MAJOR/MINOR/PATCH): got '$(VERSION)')
endif
# The ABI's version (the soname's number), raised when the ABI breaks; not the release's.
SOVERSION    := 0
SONAME       := libmqc.so.$(SOVERSION)

ifeq ($(V),)
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2)
else
  Q :=
  say = @true
endif

PKGS := libbson-1.0 libmongoc-1.0 openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ifeq ($(PKG_LIBS),)
  $(warning pkg-config could not find $(PKGS): run scripts/install-deps)
endif

# Debian ships libev without a pkg-config file: use one if present, else -lev, checked below.
LIBEV_CFLAGS := $(shell pkg-config --cflags libev 2>/dev/null)
LIBEV_LIBS   := $(shell pkg-config --libs libev 2>/dev/null || echo -lev)

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CSTD    := -std=c11 -D_GNU_SOURCE
OPT     ?= -O2 -g
ifneq ($(SAN),)
  OPT    := -O1 -g -fno-omit-frame-pointer
  # libbson declares bson_t 128-byte aligned, but malloc (and libbson's own bson_new) give
  # 16: every struct embedding a bson_t would trip UBSan's alignment check while x86-64 and
  # libbson are fine with it. Every other UBSan check stays on and fatal.
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize=alignment -fno-sanitize-recover=undefined
endif
CPPFLAGS_ALL := -Iinclude -Ilib $(PKG_CFLAGS) $(LIBEV_CFLAGS)
CFLAGS_ALL   := $(CSTD) $(OPT) $(WARN) -fPIC -MMD -MP $(SANFLAGS) $(CFLAGS)
# libmqc's objects hide every symbol but the public API, which include/mqc.h marks visible
# (#pragma GCC visibility): libmqc.so exports exactly what mqc.h declares (scripts/check-install
# checks it). Hidden symbols still link statically, so mqload and the tests, which link
# libmqc.a, reach the internals.
LIB_VISIBILITY := -fvisibility=hidden
LIBS_ALL     := $(PKG_LIBS) $(LIBEV_LIBS) -lpthread -lm -lresolv
LDFLAGS_ALL  := $(SANFLAGS) $(LDFLAGS)

LIB_SRC   := $(sort $(wildcard lib/*.c))
CLI_SRC   := $(filter-out cli/main.c,$(sort $(wildcard cli/*.c)))
# The scripted server (tests/server/) is linked into the test binary, and with stubd.c's main is
# the standalone stubd that the benchmark and the tests that kill a server run.
SRV_SRC   := $(filter-out tests/server/stubd.c,$(sort $(wildcard tests/server/*.c)))
TEST_SRC  := $(sort $(wildcard tests/*.c tests/spec/*.c tests/support/*.c tests/unified/*.c)) $(SRV_SRC)
EX_SRC    := $(sort $(wildcard examples/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
EX_BIN    := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
STUBD     := $(BUILD)/tests/stubd

STATIC := $(BUILD)/libmqc.a
SHARED := $(BUILD)/libmqc.so.$(VERSION)
MQLOAD := $(BUILD)/mqload
TESTBIN := $(BUILD)/mqc-test
CLILIB := $(BUILD)/libmqload.a

.PHONY: FORCE all lib test test-run test-bin spec-test bench fuzz demo install uninstall clean check-deps valgrind soak
all: check-deps lib $(MQLOAD) $(EX_BIN) $(BENCH_BIN) $(STUBD)
lib: $(STATIC) $(SHARED)

check-deps:
	@pkg-config --exists $(PKGS) || { echo "missing: $(PKGS) (pkg-config). Run: scripts/install-deps" >&2; exit 1; }
	@printf '#include <ev.h>\nint main(void){return ev_version_major() > 0 ? 0 : 1;}\n' | \
	  $(CC) -x c - -o /dev/null $(LIBEV_CFLAGS) $(LIBEV_LIBS) 2>/dev/null || \
	  { echo "missing: libev (ev.h, -lev). Run: scripts/install-deps" >&2; exit 1; }

# Objects are rebuilt when the compiler's flags change (a new warning, -fvisibility), not only
# when a source does: the stamp is rewritten only when its content differs.
FLAGS_STAMP := $(BUILD)/obj/flags.stamp
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(LIB_VISIBILITY)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(if $(filter $(BUILD)/obj/lib/%,$@),$(LIB_VISIBILITY)) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(call say,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(LDFLAGS_ALL) $(LIBS_ALL)
	$(Q)ln -sf libmqc.so.$(VERSION) $(BUILD)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(BUILD)/libmqc.so

$(CLILIB): $(CLI_OBJ)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(MQLOAD): $(BUILD)/obj/cli/main.o $(CLILIB) $(STATIC)
	$(call say,LD,$@)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIBS_ALL)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(STATIC)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIBS_ALL)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIBS_ALL)

# stubd is the core (srv.c, reply.c) and the canned mode only.
$(STUBD): $(addprefix $(BUILD)/obj/tests/server/,stubd.o srv.o reply.o canned.o)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIBS_ALL)

$(TESTBIN): $(TEST_OBJ) $(CLILIB) $(STATIC)
	$(call say,LD,$@)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIBS_ALL)

test-bin: check-deps $(TESTBIN) $(MQLOAD) $(EX_BIN) $(BENCH_BIN) $(STUBD)

# `make test` does the whole set-up on a fresh machine: Debian packages first (in a sub-make,
# since pkg-config is read when the Makefile is), then FerretDB (unless MQC_TEST_URI names a
# server). The plain build and the sanitizer build each run the whole suite; scripts/run-tests
# sums them into one closing line ("N passed, N failed, N skipped").
test:
	$(Q)scripts/install-deps
	$(Q)if [ -z "$$MQC_TEST_URI" ]; then scripts/ferretdb build; fi
	$(Q)$(MAKE) --no-print-directory test-run

test-run: test-bin
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SAN=1 test-bin
	$(Q)scripts/run-tests $(BUILD) $(BUILD)/asan -- $(TEST_ARGS)

# The spec runners (/spec/: no server) and the unified test format runner (/unified/: against
# FerretDB behind tests/failproxy.c, or MQC_TEST_URI; /unified-rs/: the files that need a replica
# set, against the replica-set-named FerretDB), then the per-folder table of passed, failed and
# skipped tests, skips split by kind (scripts/spec-summary).
spec-test: check-deps $(TESTBIN)
	$(Q)if [ -z "$$MQC_TEST_URI" ]; then scripts/ferretdb build; fi
	$(Q)log=$$(mktemp); { MQC_SPEC_TESTS="$(SPEC_TESTS)" $(TESTBIN) --spec-dir "$(SPEC_TESTS)" $(TEST_ARGS) /spec/ /unified/ /unified-rs/ \
	  2>&1; echo $$? > "$$log.rc"; } | tee "$$log"; rc=$$(cat "$$log.rc"); echo; \
	  scripts/spec-summary "$(SPEC_TESTS)" "$$log"; rm -f "$$log" "$$log.rc"; exit $$rc

valgrind: test-bin
	$(Q)scripts/run-tests --valgrind $(BUILD) -- $(TEST_ARGS)

bench: all
	$(Q)scripts/bench
	$(Q)BUILD=$(BUILD) scripts/bench-faults

soak: all
	$(Q)scripts/soak

fuzz:
	$(Q)scripts/fuzz $(FUZZ_SECONDS)

demo:
	$(Q)scripts/demo

# Written on every make that asks for it, from this make's PREFIX (rewritten only when that
# changes it): a second `make install PREFIX=...` installs a .pc naming the new prefix. Every path
# in it derives from ${prefix}, so `pkg-config --define-prefix` finds a DESTDIR-staged copy (see
# docs/library/install.md).
$(BUILD)/mqc.pc: FORCE
	@mkdir -p $(BUILD)
	$(Q)printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: mqc' 'Description: asynchronous MongoDB client for C (libev)' 'Version: $(VERSION)' \
	  'Requires: libbson-1.0 libmongoc-1.0 openssl' 'Cflags: -I$${includedir}/mqc' \
	  'Libs: -L$${libdir} -lmqc' 'Libs.private: $(LIBEV_LIBS) -lpthread -lm -lresolv' > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

FORCE:

install: all $(BUILD)/mqc.pc
	$(Q)install -d $(DESTDIR)$(PREFIX)/include/mqc $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	$(Q)install -m 644 include/*.h $(DESTDIR)$(PREFIX)/include/mqc/
	$(Q)install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	$(Q)install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	$(Q)ln -sf libmqc.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	$(Q)ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libmqc.so
	$(Q)install -m 644 $(BUILD)/mqc.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	$(Q)install -m 755 $(MQLOAD) $(DESTDIR)$(PREFIX)/bin/
	$(Q)install -m 644 docs/mqload/mqload.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	@echo "installed under $(DESTDIR)$(PREFIX)"

uninstall:
	$(Q)rm -rf $(DESTDIR)$(PREFIX)/include/mqc $(DESTDIR)$(PREFIX)/lib/libmqc.* \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/mqc.pc $(DESTDIR)$(PREFIX)/bin/mqload \
	  $(DESTDIR)$(PREFIX)/share/man/man1/mqload.1

clean:
	$(Q)rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
