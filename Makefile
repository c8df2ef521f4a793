# sysbus build. `make` builds every binary into build/bin/; `make test` runs
# every test; `make asan` builds into build/asan and runs the tests under
# AddressSanitizer + UndefinedBehaviorSanitizer. WERROR=1 turns warnings into
# errors (CI sets it). CHECK_INVARIANTS=1 makes sysbusd walk the engine's
# invariants at every turn of its loop and abort when one is broken
# (src/server/engine/check.c; slow, for debugging, never a release build).
# Dependencies come from Debian packages via pkg-config (scripts/deps.sh
# installs them).

BUILD   ?= build
CC      ?= cc
WERROR  ?= 0
SANITIZE ?= 0
CHECK_INVARIANTS ?= 0
OPT     ?= -O2

PKGS      := libmicrohttpd libcurl jansson sqlite3 libcrypto
# The PostgreSQL store (src/server/store/postgres/) is built when libpq is
# found (Debian: libpq-dev), or never with POSTGRES=0; store.c lists it under
# SBD_STORE_POSTGRES.
POSTGRES  ?= $(shell pkg-config --exists libpq && echo 1 || echo 0)
ifeq ($(POSTGRES),1)
PKGS      += libpq
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wno-format-nonliteral -Wvla -Wpointer-arith
ifeq ($(WERROR),1)
WARN    += -Werror
endif
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -pthread -fPIC $(WARN) -Iinclude -Isrc $(PKG_CFLAGS) \
           -DSB_VERSION=\"$(VERSION)\"
LDFLAGS += -pthread
ifeq ($(FUZZ),1)
CFLAGS  += -fsanitize=fuzzer-no-link
endif
ifeq ($(POSTGRES),1)
CFLAGS  += -DSBD_STORE_POSTGRES
endif
ifeq ($(CHECK_INVARIANTS),1)
CFLAGS  += -DSBD_CHECK_INVARIANTS
endif
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1.0)

COMMON_SRC := $(wildcard src/common/*.c)
# src/server/store/<backend>/ is one level deeper than the other folders
SERVER_SRC := $(wildcard src/server/*.c src/server/*/*.c src/server/store/*/*.c)
ifneq ($(POSTGRES),1)
SERVER_SRC := $(filter-out src/server/store/postgres/%,$(SERVER_SRC))
endif
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/obj/%.o)
COMMON_LIB := $(BUILD)/lib/libsbcommon.a
SDK_SRC    := $(wildcard src/sdk/*.c)
SDK_OBJ    := $(SDK_SRC:%.c=$(BUILD)/obj/%.o)
SDK_LIB    := $(BUILD)/lib/libsysbus.a
SDK_SO     := $(BUILD)/lib/libsysbus.so
WORKER_SRC := $(wildcard src/worker/*.c src/worker/*/*.c)
WORKER_OBJ := $(WORKER_SRC:%.c=$(BUILD)/obj/%.o)
CLI_SRC    := $(wildcard src/cli/*.c)
CLI_OBJ    := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
# secrets: the daemon and its client commands; client.c, proto.c and jscan.c are also
# linked into talon (it leases through the same code).
SECRETS_SRC := $(wildcard src/secrets/*.c)
SECRETS_OBJ := $(SECRETS_SRC:%.c=$(BUILD)/obj/%.o)
SECRETS_CLIENT_OBJ := $(BUILD)/obj/src/secrets/client.o $(BUILD)/obj/src/secrets/proto.o \
                      $(BUILD)/obj/src/secrets/jscan.o
TALON_SRC  := $(wildcard src/talon/*.c)
TALON_OBJ  := $(TALON_SRC:%.c=$(BUILD)/obj/%.o)
SLOG_SRC   := $(wildcard src/slog/*.c)
SLOG_OBJ   := $(SLOG_SRC:%.c=$(BUILD)/obj/%.o)
SODIUM_LIBS := $(shell pkg-config --libs libsodium)

BINS := $(BUILD)/bin/sysbusd $(BUILD)/bin/system-bus-worker $(BUILD)/bin/sysbus $(SDK_SO) \
        $(BUILD)/bin/secrets $(BUILD)/bin/talon $(BUILD)/bin/slog

UNIT_SRC  := $(wildcard tests/unit/*/*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all test unit integration integration-pg unit-pg compat asan fuzz fuzz-bins bench clean deps format
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(COMMON_LIB): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/sysbusd: $(SERVER_OBJ) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $(SERVER_OBJ) $(COMMON_LIB) $(PKG_LIBS) -lm

# libsysbus: the SDK with the common code it uses, as an archive (the
# worker links it) and a shared library exporting only sysbus_*.
$(SDK_LIB): $(SDK_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^

$(SDK_SO): $(SDK_OBJ) $(COMMON_OBJ) src/sdk/libsysbus.map
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -shared -Wl,--version-script=src/sdk/libsysbus.map -Wl,-soname,libsysbus.so.0 \
	  -o $@.0 $(SDK_OBJ) $(COMMON_OBJ) $(PKG_LIBS) -lm
	@ln -sf libsysbus.so.0 $@

$(BUILD)/bin/system-bus-worker: $(WORKER_OBJ) $(SDK_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $(WORKER_OBJ) $(SDK_LIB) $(PKG_LIBS) -lm

$(BUILD)/bin/sysbus: $(CLI_OBJ) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(COMMON_LIB) $(PKG_LIBS) -lm

$(BUILD)/bin/secrets: $(SECRETS_OBJ) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $(SECRETS_OBJ) $(COMMON_LIB) $(PKG_LIBS) $(SODIUM_LIBS) -lm

$(BUILD)/bin/talon: $(TALON_OBJ) $(SECRETS_CLIENT_OBJ) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $(TALON_OBJ) $(SECRETS_CLIENT_OBJ) $(COMMON_LIB) $(PKG_LIBS) \
	  $(SODIUM_LIBS) -lm

$(BUILD)/bin/slog: $(SLOG_OBJ) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $(SLOG_OBJ) $(COMMON_LIB) $(PKG_LIBS) -lm

# Unit tests: one cmocka program per file; they link every binary's objects
# (except each main.o) and the SDK's.
SERVER_LIB_OBJ := $(filter-out $(BUILD)/obj/src/server/main.o,$(SERVER_OBJ))
WORKER_LIB_OBJ := $(filter-out $(BUILD)/obj/src/worker/main.o,$(WORKER_OBJ))
TOOLS_LIB_OBJ  := $(filter-out %/main.o,$(SECRETS_OBJ) $(TALON_OBJ) $(SLOG_OBJ))
# A test whose name ends in _faults gets the fault injector's link: its calls
# to sqlite3_step from the store go to the test's __wrap_sqlite3_step (which
# calls __real_sqlite3_step until told to fail). Release builds never have it.
$(BUILD)/tests/%_faults: TEST_WRAP := -Wl,--wrap=sqlite3_step
# test_ingest counts the parses of an event's body: its calls to
# sb_json_parse from the server go to the test's __wrap_sb_json_parse.
$(BUILD)/tests/server/test_ingest: TEST_WRAP := -Wl,--wrap=sb_json_parse
$(BUILD)/tests/%: tests/unit/%.c $(SERVER_LIB_OBJ) $(SDK_OBJ) $(WORKER_LIB_OBJ) $(TOOLS_LIB_OBJ) \
                  $(COMMON_LIB)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(CFLAGS) $(shell pkg-config --cflags cmocka) -o $@ $< $(SERVER_LIB_OBJ) $(SDK_OBJ) \
	  $(WORKER_LIB_OBJ) $(TOOLS_LIB_OBJ) $(COMMON_LIB) $(LDFLAGS) $(TEST_WRAP) $(PKG_LIBS) \
	  $(SODIUM_LIBS) $(shell pkg-config --libs cmocka) -lm

# headers of a test's own (not in the objects' dependency files)
$(BUILD)/tests/server/test_views: tests/unit/server/test_views_expected.h
# The PostgreSQL store's tests run against SYSBUS_TEST_PG_URL's database and
# pass saying they were skipped without it (or without libpq).
$(BUILD)/tests/server/test_store_pg $(BUILD)/tests/server/test_store_pg_records: \
    tests/unit/server/pg_fixture.h

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: all
	SYSBUS_BIN_DIR=$(abspath $(BUILD)/bin) tests/run-integration.sh

# The integration suite against PostgreSQL: every sysbusd on its data dir's
# database of a throwaway cluster (SYSBUS_TEST_STORE=postgres;
# docs/internals/tests-postgres.md); SYSBUS_TESTS picks files as above.
integration-pg: all
	SYSBUS_TEST_STORE=postgres SYSBUS_BIN_DIR=$(abspath $(BUILD)/bin) tests/run-integration.sh

# The unit tests that open a store by URL, each given a fresh database of one
# throwaway cluster in SYSBUS_TEST_PG_URL (scripts/pg-test-cluster.sh),
# stopped however the run ends.
PG_UNIT_TESTS ?= server/test_store_pg server/test_store_pg_records server/test_views
unit-pg: $(PG_UNIT_TESTS:%=$(BUILD)/tests/%)
	@set -e; dir=$$(mktemp -d); trap 'scripts/pg-test-cluster.sh stop "$$dir"' EXIT; trap 'exit 130' INT TERM; \
	scripts/pg-test-cluster.sh start "$$dir" >/dev/null; \
	for t in $(PG_UNIT_TESTS); do \
	  url=$$(scripts/pg-test-cluster.sh url "$$dir" "t_$$(basename $$t)"); \
	  echo "== $(BUILD)/tests/$$t (SYSBUS_TEST_PG_URL=$$url)"; SYSBUS_TEST_PG_URL=$$url $(BUILD)/tests/$$t; \
	done

# (integration-pg and unit-pg are not in `test`: scripts/test.sh runs them once)
test: all unit integration

asan:
	$(MAKE) BUILD=build/asan SANITIZE=1 OPT=-O1 CHECK_INVARIANTS=1 test

# Fuzzing: libFuzzer targets (tests/fuzz/fuzz_*.c) built with clang, ASan
# and UBSan into build/fuzz; `make fuzz` runs each for FUZZ_SECONDS on its
# seed corpus (new inputs go to build/fuzz/corpus, the tree stays clean).
FUZZ_SECONDS ?= 15
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(SERVER_LIB_OBJ) $(SDK_OBJ) $(TOOLS_LIB_OBJ) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	@$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(SERVER_LIB_OBJ) $(SDK_OBJ) $(TOOLS_LIB_OBJ) \
	  $(COMMON_LIB) $(LDFLAGS) $(PKG_LIBS) $(SODIUM_LIBS) -lm
fuzz-bins: $(FUZZ_BINS)
# A finding fails the target: its exit status is kept (no pipe), its log's
# end is printed, and the input that found it is left in build/fuzz/crashes/
# (git-ignored).
fuzz:
	$(MAKE) BUILD=build/fuzz CC=clang SANITIZE=1 FUZZ=1 OPT=-O1 fuzz-bins
	@set -e; mkdir -p build/fuzz/crashes; failed=""; \
	for t in $(notdir $(basename $(FUZZ_SRC))); do \
	  mkdir -p build/fuzz/corpus/$$t; \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  if build/fuzz/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=0 -artifact_prefix=build/fuzz/crashes/$$t- \
	    build/fuzz/corpus/$$t tests/fuzz/corpus/$$t > build/fuzz/$$t.log 2>&1; then \
	    tail -n 1 build/fuzz/$$t.log; \
	  else \
	    tail -n 40 build/fuzz/$$t.log; failed="$$failed $$t"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then \
	  echo "fuzz targets with findings:$$failed (inputs in build/fuzz/crashes/)"; ls -l build/fuzz/crashes; exit 1; \
	fi

bench: all
	bench/run-sysbusd.sh
	bench/ingest.sh
	bench/rss.sh

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 'tests/unit/*.c' 'tests/fuzz/*.c')

clean:
	rm -rf build

deps:
	scripts/deps.sh

-include $(COMMON_OBJ:.o=.d) $(SERVER_OBJ:.o=.d) $(SDK_OBJ:.o=.d) $(WORKER_OBJ:.o=.d) $(CLI_OBJ:.o=.d) \
         $(SECRETS_OBJ:.o=.d) $(TALON_OBJ:.o=.d) $(SLOG_OBJ:.o=.d)
