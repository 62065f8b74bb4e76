# omnirouter: `make` builds every program; `make test`, `make test-faults`, `make run`, `make bench`, `make fuzz`,
# `make install`, `make clean`.
# Sources are found by folder, so a new file or connector needs no edit here:
#   libomni/*.c -> libomni.a    daemon/*.c -> omnirouted    ctl/*.c -> omnictl    tools/X.c -> X
#   libomni/*.cc -> libomni.a too, built with $(CXX): phone_shim.cc, libphonenumber's C side (the rest is C11)
#   connectors/N/*.c -> omni-N (N/main.c holds main(); the rest is libconn-N.a, which its tests link)
#   webhooks/*.c -> omni-webhooks (main.c; the rest is libwebhooks.a, linked with libdaemon.a for the scripts)
#   tests/unit/D/test_X.c -> a cmocka binary linking libomni.a, plus libdaemon.a (D=daemon), libconn-D.a
#                            or libwebhooks.a and libdaemon.a (D=webhooks)
#   api/*.c -> omni-api (api/main.c holds main(); the rest is libapi.a, which the fuzz targets link)
#   bench/X.c -> a bench program
#   fuzz/X.c -> a libFuzzer target (make fuzz, clang) and BUILD/tests/fuzz/test_X replaying its inputs (gcc)
PREFIX  ?= /usr/local
BUILD   ?= build/release
SAN     ?=
PKGS    := libzmq hiredis yaml-0.1 jansson libcurl libsystemd libmicrohttpd gmime-3.0 libcrypto libidn2 libpcre2-8
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT     := $(if $(SAN),-O1 -g $(SANFLAGS),-O2 -g)
CFLAGS  += -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror $(OPT) -fPIC \
           -Iinclude -Ilibomni -Idaemon -Iwebhooks -Iapi -I$(BUILD)/gen $(shell pkg-config --cflags $(PKGS))
# The C++ shim (libphonenumber) without UBSan's vptr check: its runtime is C++'s, which clang does not link
# into programs linked as C.
CXXFLAGS += -std=c++17 -Wall -Wextra -Werror $(OPT) -fPIC $(if $(SAN),-fno-sanitize=vptr) -Ilibomni -Iinclude
LDFLAGS += $(if $(SAN),$(SANFLAGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lphonenumber -lstdc++ -lm
# mimalloc is the allocator of the programs built here (README, "Dependencies": why), first in their list of
# libraries so it serves every malloc; not under the sanitizers, which bring their own, nor in libomni.so.
ALLOC   := $(if $(SAN),,-Wl,--push-state,--no-as-needed -lmimalloc -Wl,--pop-state)

LIB_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard libomni/*.c)) $(patsubst %.cc,$(BUILD)/%.o,$(wildcard libomni/*.cc))
DMN_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(filter-out daemon/main.c,$(wildcard daemon/*.c))) $(BUILD)/gen/scripts.o
WH_OBJ    := $(patsubst %.c,$(BUILD)/%.o,$(filter-out webhooks/main.c,$(wildcard webhooks/*.c)))
CONNS     := $(notdir $(patsubst %/,%,$(wildcard connectors/*/)))
TOOLS     := $(basename $(notdir $(wildcard tools/*.c)))
API_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(filter-out api/main.c,$(wildcard api/*.c)))
PROGS     := $(addprefix $(BUILD)/bin/,omnirouted omnictl omni-api omni-webhooks $(addprefix omni-,$(CONNS)) $(TOOLS))
FUZZ      := $(basename $(notdir $(wildcard fuzz/*.c)))
UNIT      := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/*/test_*.c)) \
             $(FUZZ:%=$(BUILD)/tests/fuzz/test_%)
BENCH     := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

# Pattern rules each need their own recipe (make does not merge them as it does explicit rules).
LINK = @mkdir -p $(@D) && echo "  LD  $@" && $(CC) $(LDFLAGS) -o $@ $(ALLOC) $^ $(LDLIBS)

all: $(PROGS) $(BUILD)/libomni.so.1
.PHONY: all deps test test-faults check run bench soak fuzz install clean
.SECONDARY: # keep intermediate objects: no rebuild on the next make

$(BUILD)/%.o: %.c $(wildcard include/omni/*.h libomni/*.h daemon/*.h api/*.h) $(BUILD)/gen/lua_contract.h | deps-ok
	@mkdir -p $(@D)
	@echo "  CC  $<"
	@$(CC) $(CFLAGS) -MMD -c -o $@ $<
$(BUILD)/%.o: %.cc | deps-ok
	@mkdir -p $(@D)
	@echo "  CXX $<"
	@$(CXX) $(CXXFLAGS) -MMD -c -o $@ $<
# The Lua scripts: C for the daemon, their contract as a header, and each as Redis runs it for the tests.
$(BUILD)/gen/scripts.c: $(wildcard daemon/lua/*.lua) daemon/lua/keys.def scripts/embed-lua
	@mkdir -p $(@D)
	@scripts/embed-lua c $(wildcard daemon/lua/*.lua) > $@
	@scripts/embed-lua lua $(BUILD)/gen/lua $(wildcard daemon/lua/*.lua)
$(BUILD)/gen/lua_contract.h: $(wildcard daemon/lua/*.lua) daemon/lua/keys.def scripts/embed-lua
	@mkdir -p $(@D)
	@scripts/embed-lua h $(wildcard daemon/lua/*.lua) > $@
$(BUILD)/gen/scripts.o: $(BUILD)/gen/scripts.c daemon/scripts.h
	@$(CC) $(CFLAGS) -c -o $@ $<
$(BUILD)/libomni.a: $(LIB_OBJ)
	@$(AR) rcs $@ $^
# libomni as a shared library too, with a soname, for integrators (make install); the programs here link it
# statically. Objects are built -fPIC for it.
$(BUILD)/libomni.so.1: $(LIB_OBJ)
	@echo "  LD  $@" && $(CC) $(LDFLAGS) -shared -Wl,-soname,libomni.so.1 -o $@ $^ $(LDLIBS)
$(BUILD)/libdaemon.a: $(DMN_OBJ)
	@$(AR) rcs $@ $^
# omni-webhooks' own headers matter only to its objects and tests (not to every object, as daemon/*.h do).
$(WH_OBJ) $(BUILD)/webhooks/main.o $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/unit/webhooks/*.c)): $(wildcard webhooks/*.h)
$(BUILD)/libwebhooks.a: $(WH_OBJ)
	@$(AR) rcs $@ $^
$(BUILD)/bin/omni-webhooks: $(BUILD)/webhooks/main.o $(BUILD)/libwebhooks.a $(BUILD)/libdaemon.a $(BUILD)/libomni.a
	$(LINK)
$(BUILD)/tests/webhooks/%: $(BUILD)/tests/unit/webhooks/%.o $(BUILD)/libwebhooks.a $(BUILD)/libdaemon.a $(BUILD)/libomni.a
	$(LINK) -lcmocka
$(BUILD)/libapi.a: $(API_OBJ)
	@$(AR) rcs $@ $^
$(BUILD)/bin/omnirouted: $(BUILD)/daemon/main.o $(BUILD)/libdaemon.a $(BUILD)/libomni.a
$(BUILD)/bin/omnictl: $(patsubst %.c,$(BUILD)/%.o,$(wildcard ctl/*.c)) $(BUILD)/libdaemon.a $(BUILD)/libomni.a
$(BUILD)/bin/omni-api: $(BUILD)/api/main.o $(BUILD)/libapi.a $(BUILD)/libdaemon.a $(BUILD)/libomni.a
$(BUILD)/bin/%: $(BUILD)/tools/%.o $(BUILD)/libomni.a
	$(LINK)
define CONNECTOR
$(BUILD)/libconn-$(1).a: $(patsubst %.c,$(BUILD)/%.o,$(filter-out connectors/$(1)/main.c,$(wildcard connectors/$(1)/*.c)))
	@$$(AR) rcs $$@ $$^
$(BUILD)/bin/omni-$(1): $(BUILD)/connectors/$(1)/main.o $(BUILD)/libconn-$(1).a $(BUILD)/libomni.a
	$$(LINK)
$(BUILD)/tests/$(1)/%: $(BUILD)/tests/unit/$(1)/%.o $(BUILD)/libconn-$(1).a $(BUILD)/libomni.a
	$$(LINK) -lcmocka
endef
$(foreach c,$(CONNS),$(eval $(call CONNECTOR,$(c))))
$(BUILD)/tests/lib/%: $(BUILD)/tests/unit/lib/%.o $(BUILD)/libomni.a
	$(LINK) -lcmocka
$(BUILD)/tests/daemon/%: $(BUILD)/tests/unit/daemon/%.o $(BUILD)/libdaemon.a $(BUILD)/libomni.a
	$(LINK) -lcmocka
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libdaemon.a $(BUILD)/libomni.a
	$(LINK)
$(BUILD)/bin/omnirouted $(BUILD)/bin/omnictl $(BUILD)/bin/omni-api:
	$(LINK)
FUZZ_LIBS  = $(BUILD)/libapi.a $(BUILD)/libdaemon.a $(CONNS:%=$(BUILD)/libconn-%.a) $(BUILD)/libomni.a
$(BUILD)/tests/fuzz/test_%: $(BUILD)/fuzz/%.o $(BUILD)/tests/fuzz/replay.o $(FUZZ_LIBS)
	$(LINK) -lcmocka
$(BUILD)/fuzz/bin/%: $(BUILD)/fuzz/%.o $(FUZZ_LIBS)
	$(LINK) -fsanitize=fuzzer

deps:
	@scripts/install-deps
deps-ok:
	@pkg-config --exists $(PKGS) && [ -f /usr/include/phonenumbers/phonenumberutil.h ] && [ -f /usr/include/mimalloc.h ] || { echo "missing build packages: run scripts/install-deps (as root)"; exit 1; }

# Tests build everything with AddressSanitizer and UBSan into build/asan and run against real servers.
test: deps
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 check
check: $(PROGS) $(BUILD)/libomni.so.1 $(UNIT)
	@tests/run $(BUILD) $(PYTEST_ARGS)
# The fault suite alone (tests/integration/test_faults.py, marked `faults`); `make test` runs it too, once.
test-faults: deps
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 check PYTEST_ARGS="-m faults"
run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run-demo $(BUILD)
bench: deps
	@$(MAKE) --no-print-directory all $(BENCH)
	@bench/run $(BUILD)
# 30 minutes at 1,000 msg/s with retention cycling: memory that stops growing (bench/soak; not run by CI).
soak: deps
	@$(MAKE) --no-print-directory all $(BENCH)
	@bench/soak $(BUILD)
# Each target in fuzz/ for FUZZ_SECONDS under libFuzzer (clang; docs/fuzzing.md). FUZZ="mime cdr" picks some.
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/install-deps fuzz
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang CXX=clang++ SAN=1 SANFLAGS='$(SANFLAGS) -fsanitize=fuzzer-no-link' \
	    $(FUZZ:%=build/fuzz/fuzz/bin/%)
	@fuzz/run build/fuzz $(FUZZ_SECONDS) $(FUZZ)
install: all
	@scripts/install $(BUILD) "$(DESTDIR)" $(PREFIX)
clean:
	rm -rf build
-include $(shell find build -name '*.d' 2>/dev/null)
