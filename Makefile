# Canopy — build, test, demo, benchmark.
#
#   make            build canopyd, canopy-agent, canopyctl and canopy-sim
#   make check      install dependencies, build (normal + ASan/UBSan), run all tests
#   make demo       start a private PostgreSQL, a server and agents under ./var
#   make demo-stop  stop everything make demo started
#   make bench      run the benchmarks (figures go to docs/BENCHMARKS.md)
#   make fuzz       run every fuzz target for FUZZ_SECONDS each
#
# One non-recursive Makefile: every directory's *.c is picked up by wildcard.

CC       ?= cc
BUILD    ?= build
SAN      ?= 0
PREFIX   ?= /usr/local
FUZZ_SECONDS ?= 60

PKGS      = libevent libevent_openssl libevent_pthreads msgpack libpq jansson openssl \
            ldap krb5-gssapi krb5
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CURL_LIBS  := $(shell pkg-config --libs libcurl 2>/dev/null)

WARN = -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
       -Wshadow -Wpointer-arith -Wcast-qual -Wsign-compare -Wformat=2 \
       -Wno-unused-parameter

ifeq ($(SAN),1)
OPT    = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
         -fno-sanitize-recover=all
HARDEN = -fPIE
LDSAN  = -fsanitize=address,undefined
else
OPT    = -O2 -g
HARDEN = -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
LDSAN  =
endif

CPPFLAGS += -D_GNU_SOURCE -I. -iquote common -I$(BUILD)/gen
CFLAGS   += -std=c17 $(OPT) $(WARN) $(HARDEN) $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS  += -pie -Wl,-z,relro -Wl,-z,now $(LDSAN)
LDLIBS   += $(PKG_LIBS) -lpthread -lm

COMMON_SRCS := $(wildcard common/*.c)
SRV_SRCS    := $(filter-out srv/main.c,$(wildcard srv/*.c db/*.c auth/*.c \
               hierarchy/*.c directory/*.c))
AGENT_SRCS  := $(filter-out agent/main.c,$(wildcard agent/*.c))
CLI_SRCS    := $(wildcard cli/*.c)
UNIT_SRCS   := $(wildcard tests/unit/t_*.c)
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
TOOL_SRCS   := $(wildcard tests/tools/*.c)
MIGRATIONS  := $(sort $(wildcard db/migrations/*.sql))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBCOMMON = $(BUILD)/libcommon.a
LIBSRV    = $(BUILD)/libsrv.a
LIBAGENT  = $(BUILD)/libagent.a
GEN_MIGR  = $(BUILD)/gen/migrations.c

BINS  = $(BUILD)/canopyd $(BUILD)/canopy-agent $(BUILD)/canopyctl $(BUILD)/canopy-sim
UNITS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TOOLS = $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))

.PHONY: all check unit demo demo-stop bench fuzz fuzz-build install clean deps asan
.SUFFIXES:
# Keep objects of the test programs and tools: they are not throwaway.
.SECONDARY:

all: $(BINS) $(UNITS) $(TOOLS)

deps:
	@./deploy/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(GEN_MIGR): $(MIGRATIONS) deploy/embed-sql.sh
	@mkdir -p $(dir $@)
	./deploy/embed-sql.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/migrations.o: $(GEN_MIGR)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIBCOMMON): $(call obj,$(COMMON_SRCS))
	@rm -f $@; ar rcs $@ $^
$(LIBSRV): $(call obj,$(SRV_SRCS)) $(BUILD)/obj/gen/migrations.o
	@rm -f $@; ar rcs $@ $^
$(LIBAGENT): $(call obj,$(AGENT_SRCS))
	@rm -f $@; ar rcs $@ $^

$(BUILD)/canopyd: $(call obj,srv/main.c) $(LIBSRV) $(LIBCOMMON)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/canopy-agent: $(call obj,agent/main.c) $(LIBAGENT) $(LIBCOMMON)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/canopy-sim: $(call obj,bench/sim.c) $(LIBAGENT) $(LIBCOMMON)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/canopyctl: $(call obj,$(CLI_SRCS)) $(LIBCOMMON)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) $(CURL_LIBS) -o $@

$(BUILD)/tests/%: $(call obj,tests/unit/%.c) $(LIBSRV) $(LIBAGENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tools/%: $(call obj,tests/tools/%.c) $(LIBAGENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The sanitizer build lives beside the normal one.
asan:
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 all

# Fuzz targets: clang + libFuzzer, linked with the decoders only.
FUZZ_BUILD = build/fuzz
fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) SAN=1 CC=clang \
	    EXTRA_CFLAGS=-fsanitize=fuzzer-no-link $(FUZZ_BUILD)/libcommon.a
	@mkdir -p $(FUZZ_BUILD)/fuzz
	@for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); \
	    clang -std=c17 -g -O1 -D_GNU_SOURCE -I. -iquote common $(PKG_CFLAGS) \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	    $$f $(FUZZ_BUILD)/libcommon.a $(PKG_LIBS) -lpthread \
	    -o $(FUZZ_BUILD)/fuzz/$$n || exit 1; done

fuzz: deps fuzz-build
	@for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	    echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	    $(FUZZ_BUILD)/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) \
	        $(FUZZ_BUILD)/corpus/$$n tests/fuzz/corpus/$$n || exit 1; done

check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory fuzz-build
	@./tests/run.sh

unit: all
	@$(MAKE) --no-print-directory asan
	@./tests/run.sh unit

demo: deps all
	@./deploy/demo.sh start

demo-stop:
	@./deploy/demo.sh stop

bench: deps all
	@./bench/run.sh
	@./bench/policy.sh
	@./bench/tree.sh
	@./bench/directory.sh
	@./bench/ipscan.sh
	@./bench/auth.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/canopyd $(DESTDIR)$(PREFIX)/sbin/canopyd
	install -m 0755 $(BUILD)/canopy-agent $(DESTDIR)$(PREFIX)/sbin/canopy-agent
	install -m 0755 $(BUILD)/canopyctl $(DESTDIR)$(PREFIX)/bin/canopyctl
	install -d $(DESTDIR)/etc/canopy
	install -m 0640 deploy/canopyd.conf.example $(DESTDIR)/etc/canopy/canopyd.conf.example

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
