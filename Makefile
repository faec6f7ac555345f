# scone - one top-level build.
#
#   make                 build/bin/scone, scone-cas, scone-las, build/lib/libscone.so
#   make test            install deps, build, unit tests under ASan+UBSan,
#                        integration tests, fuzzers briefly on their corpora
#   make bench           benchmarks (BENCH=volume for one group)
#   make fuzz            build the libFuzzer targets (clang)
#   make demo            the main job, end to end
#   make install PREFIX=/usr/local
#   knobs: CC=clang, SANITIZE=address, BUILD=dir

CC ?= cc
BUILD ?= build
PREFIX ?= /usr/local
SANITIZE ?=

WARN := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Werror
# libpq's headers live in their own directory (Debian: /usr/include/postgresql).
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
CFLAGS_BASE := -std=c17 -D_GNU_SOURCE -g $(WARN) -fstack-protector-strong -fPIC -Isrc $(PQ_CFLAGS) -MMD -MP
ifeq ($(SANITIZE),)
CFLAGS_BASE += -O2 -D_FORTIFY_SOURCE=2
else
CFLAGS_BASE += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS_SAN := -fsanitize=address,undefined
endif
CFLAGS ?=
LDFLAGS_BASE := -Wl,-z,relro,-z,now $(LDFLAGS_SAN)
LIBS := -lcrypto -lpthread
# Everything beyond the runtime's libc+libcrypto+libssl: policy, CAS, CLI.
EXT_LIBS := -lsqlite3 -lpq -ljansson -levent_openssl -levent_pthreads -levent -lyaml -lssl
ALL_LIBS := $(EXT_LIBS) $(LIBS)

# The runtime's interposers go only into libscone.so, never into a binary.
RUNTIME_ONLY_SRC := src/runtime/start.c src/runtime/inject.c src/runtime/shield.c src/runtime/shield_io.c src/runtime/shield_meta.c src/runtime/shield_path.c src/runtime/vops.c src/runtime/vserver.c src/runtime/vshared.c src/runtime/async_io.c src/runtime/exec.c src/runtime/fd_volume.c src/runtime/io_rw.c src/runtime/io_file.c src/runtime/io_fd.c src/runtime/io_syscall.c src/runtime/shield_report.c src/runtime/shield_mount.c src/runtime/shield_cwd.c src/runtime/shield_stat.c src/runtime/shield_ns.c src/runtime/shield_dir.c src/runtime/shield_stdio.c src/runtime/attest_rt.c src/runtime/io_ids.c src/runtime/io_temp.c src/runtime/proc_vfork.c src/runtime/shield_map.c
# SCONE sessions: an image's own injection files, filled at start.
RUNTIME_ONLY_SRC += src/runtime/image_files.c
# The network shield: its TLS kind of fd and the socket calls.
RUNTIME_ONLY_SRC += src/runtime/netshield.c src/runtime/fd_tls.c src/runtime/io_net.c
CORE_SRC := $(wildcard src/lib/*.c) $(wildcard src/volume/*.c) $(wildcard src/policy/*.c) $(wildcard src/attest/*.c) \
	$(filter-out $(RUNTIME_ONLY_SRC),$(wildcard src/runtime/*.c))
# libscone.so: only what may enter an unmodified program (libc; libcrypto and libssl linked in).
RUNTIME_SRC := $(wildcard src/lib/*.c) $(wildcard src/volume/*.c) $(wildcard src/attest/*.c) $(wildcard src/runtime/*.c) src/policy/template.c
CAS_LIB_SRC := $(filter-out src/cas/main.c,$(wildcard src/cas/*.c))
CLI_SRC := $(wildcard src/cli/*.c)
LAS_LIB_SRC := $(filter-out src/las/main.c,$(wildcard src/las/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
BENCH_SRC := $(wildcard bench/*.c)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)

OBJ := $(BUILD)/obj
CORE_OBJ := $(CORE_SRC:%.c=$(OBJ)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(OBJ)/%.o)
CORE_LIB := $(BUILD)/lib/libscone-core.a
CAS_OBJ := $(CAS_LIB_SRC:%.c=$(OBJ)/%.o)
CAS_LIB := $(BUILD)/lib/libscone-cas.a
SCONE := $(BUILD)/bin/scone
SCONE_CAS := $(BUILD)/bin/scone-cas
SCONE_LAS := $(BUILD)/bin/scone-las
LAS_OBJ := $(LAS_LIB_SRC:%.c=$(OBJ)/%.o)
LAS_LIB := $(BUILD)/lib/libscone-las.a
RUNTIME_SO := $(BUILD)/lib/libscone.so
RUNTIME_OBJ := $(RUNTIME_SRC:%.c=$(OBJ)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)

.PHONY: all tools deps test test-containers unit-tests bench fuzz demo install clean format

all: $(SCONE) $(SCONE_CAS) $(SCONE_LAS) $(RUNTIME_SO)

deps:
	@scripts/install-deps.sh

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(CAS_LIB): $(CAS_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(LAS_LIB): $(LAS_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# scone-las needs libcrypto only (and the pthread workers).
$(SCONE_LAS): $(OBJ)/src/las/main.o $(LAS_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) -o $@ $< $(LAS_LIB) $(CORE_LIB) $(LIBS)

# The CLI reads CAS's audit log (scone cas verify-audit-log): only the reader, not the CAS.
CLI_CAS_OBJ := $(OBJ)/src/cas/audit_log.o
$(SCONE): $(CLI_OBJ) $(CLI_CAS_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) -o $@ $(CLI_OBJ) $(CLI_CAS_OBJ) $(CORE_LIB) $(ALL_LIBS)

# OpenSSL is linked in statically: loading libcrypto.so (BIND_NOW, thousands of
# symbol lookups) was 0.6 ms of every start, and the program's own OpenSSL, if
# any, stays a separate instance. Nothing of it is exported (the version script).
$(RUNTIME_SO): $(RUNTIME_OBJ) src/runtime/libscone.map
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS_BASE) -Wl,--version-script=src/runtime/libscone.map -Wl,--no-undefined \
		-Wl,--gc-sections -Wl,--exclude-libs,ALL -o $@ $(RUNTIME_OBJ) \
		-Wl,-Bstatic -lssl -lcrypto -Wl,-Bdynamic -lpthread -ldl

$(SCONE_CAS): $(OBJ)/src/cas/main.o $(CAS_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_BASE) -o $@ $< $(CAS_LIB) $(CORE_LIB) $(ALL_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(CAS_LIB) $(LAS_LIB) $(CORE_LIB) tests/unit/helpers.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -Itests/unit -o $@ $< $(CAS_LIB) $(LAS_LIB) $(CORE_LIB) $(LDFLAGS_BASE) -lcmocka $(ALL_LIBS)

$(BUILD)/bench/%: bench/%.c $(CAS_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(CAS_LIB) $(CORE_LIB) $(LDFLAGS_BASE) $(ALL_LIBS) -lm

# Helper programs that integration tests drive (tests/tools/*.c).
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
$(BUILD)/tools/%: tests/tools/%.c $(CAS_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(CAS_LIB) $(CORE_LIB) $(LDFLAGS_BASE) $(ALL_LIBS)

# The fault injector, preloaded after libscone.so by test_runtime_faults.sh
# (libc only: it enters the program under test), and the workload it runs.
FAULT_SO := $(BUILD)/tools/libscone-fault.so
FAULT_SO_SRC := tests/tools/fault/fault.c tests/tools/fault/fault_spec.c
FAULT_WORKLOAD := $(BUILD)/tools/fault_workload
$(FAULT_SO): $(FAULT_SO_SRC) tests/tools/fault/fault_spec.h
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS_BASE)) $(CFLAGS) -fvisibility=hidden -fno-delete-null-pointer-checks -shared -o $@ $(FAULT_SO_SRC) \
		$(LDFLAGS_BASE) -Wl,--no-undefined -ldl -lpthread
$(FAULT_WORKLOAD): tests/tools/fault/fault_workload.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS_BASE)) $(CFLAGS) -o $@ $< $(LDFLAGS_BASE)

tools: $(TOOL_BIN) $(FAULT_SO) $(FAULT_WORKLOAD)

unit-tests: $(UNIT_BIN)

# Fuzzers: clang + libFuzzer + ASan/UBSan. The library sources are compiled
# once (with coverage, without libFuzzer's main) and linked into each target.
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -Isrc $(PQ_CFLAGS) -Wall -Wextra -Werror -MMD -MP $(FUZZ_SAN)
FUZZ_LIB_OBJ := $(patsubst %.c,build/fuzz/obj/%.o,$(CORE_SRC) $(CAS_LIB_SRC) $(LAS_LIB_SRC))
build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
build/fuzz/%: fuzz/%.c $(FUZZ_LIB_OBJ) $(wildcard fuzz/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) $(ALL_LIBS)

fuzz: deps
	$(MAKE) $(FUZZ_BIN)

# make test runs the container tests too: it installs their engines (each
# container case reports itself skipped, with the reason, where no engine can start).
test: deps
	@scripts/install-deps.sh --containers
	$(MAKE) all tools
	$(MAKE) BUILD=build/asan SANITIZE=address unit-tests
	$(MAKE) $(FUZZ_BIN)
	tests/run.sh

# The container tests alone (a private dockerd, podman): images from deploy/,
# sconify, compose, swarm, Kubernetes manifests (make test runs them too).
test-containers:
	@scripts/install-deps.sh --containers
	$(MAKE) all tools
	tests/run.sh --only 'test_containers*'

bench: deps
	$(MAKE) all $(BENCH_BIN)
	bench/run.sh $(BENCH)

demo: deps
	$(MAKE) all
	examples/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(SCONE) $(DESTDIR)$(PREFIX)/bin/scone
	install -m 0755 $(SCONE_CAS) $(DESTDIR)$(PREFIX)/bin/scone-cas
	install -m 0755 $(SCONE_LAS) $(DESTDIR)$(PREFIX)/bin/scone-las
	install -d $(DESTDIR)$(PREFIX)/lib
	install -m 0755 $(RUNTIME_SO) $(DESTDIR)$(PREFIX)/lib/libscone.so

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj build/fuzz/obj -name '*.d' 2>/dev/null)
