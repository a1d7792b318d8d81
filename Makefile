# gatehouse — top-level build.
#
#   make            build/libgatehouse.a, build/ngx_http_gatehouse_module.so, build/gatehouse
#   make deps       install the Debian packages the build and the tests need
#   make run        deps + build + start the demo gateway (see README.md)
#   make test       deps + sanitizer build (ASan + UBSan) + every test
#
# Two build trees: build/ (release, -O2) and build/san/ (ASan + UBSan, what the tests run).

SHELL      := /bin/bash
CC         ?= gcc
PKGS       := libsodium jansson lmdb libcrypto yaml-0.1 libjwt glib-2.0 liboath libqrencode lasso gobject-2.0 libxml-2.0
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lsodium -ljansson -llmdb -lcrypto -lyaml -ljwt -lglib-2.0 -loath -lqrencode -llasso -lgobject-2.0 -lxml2)
LIBS       := $(PKG_LIBS) -lpthread

WARN       := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wformat=2 -Wno-unused-parameter
BASE       := -std=gnu11 -fPIC -g -Iinclude $(WARN) $(PKG_CFLAGS)
REL_CFLAGS := $(BASE) -O2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong
SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_CFLAGS := $(BASE) -O1 $(SAN_FLAGS)

LIB_SRC    := $(sort $(wildcard core/*.c authn/*.c authz/*.c))
CLI_SRC    := $(sort $(wildcard cli/*.c))
GW_SRC     := $(sort $(wildcard gateway/*.c gateway/*.h gateway/config))
HDRS       := $(sort $(wildcard include/gatehouse/*.h))
UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))

REL_OBJ    := $(LIB_SRC:%.c=build/obj/%.o)
SAN_OBJ    := $(LIB_SRC:%.c=build/san/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=build/san/tests/%)

.PHONY: all san deps run test unit integration bench clean
all: build/libgatehouse.a build/ngx_http_gatehouse_module.so build/gatehouse

san: build/san/libgatehouse.a build/san/ngx_http_gatehouse_module.so build/san/gatehouse $(UNIT_BIN)

build/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -c $< -o $@

build/san/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -c $< -o $@

build/libgatehouse.a: $(REL_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

build/san/libgatehouse.a: $(SAN_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

build/gatehouse: $(CLI_SRC) build/libgatehouse.a $(HDRS)
	$(CC) $(REL_CFLAGS) $(CLI_SRC) build/libgatehouse.a $(LIBS) -o $@

build/san/gatehouse: $(CLI_SRC) build/san/libgatehouse.a $(HDRS)
	$(CC) $(SAN_CFLAGS) $(CLI_SRC) build/san/libgatehouse.a $(LIBS) -o $@

build/ngx_http_gatehouse_module.so: $(GW_SRC) build/libgatehouse.a scripts/build-module.sh
	scripts/build-module.sh build "-O2 -g"

build/san/ngx_http_gatehouse_module.so: $(GW_SRC) build/san/libgatehouse.a scripts/build-module.sh
	scripts/build-module.sh build/san "-O1 -g $(SAN_FLAGS)"

build/san/tests/%: tests/unit/%.c build/san/libgatehouse.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -Itests/unit $< build/san/libgatehouse.a $(LIBS) -lcmocka -o $@

deps:
	@scripts/deps.sh

run: deps all
	@scripts/run.sh

unit: $(UNIT_BIN)
	@scripts/test.sh unit

integration: build/san/ngx_http_gatehouse_module.so build/san/gatehouse
	@scripts/test.sh integration

test: deps
	@$(MAKE) --no-print-directory all san
	@scripts/test.sh all

# The benchmark: gatehouse vs plain nginx vs auth_request (bench/README.md).
build/decide_bench: bench/decide_bench.c build/libgatehouse.a $(HDRS)
	$(CC) $(REL_CFLAGS) bench/decide_bench.c build/libgatehouse.a $(LIBS) -o $@

bench: deps all build/decide_bench
	@bench/run.sh

clean:
	rm -rf build

# ---- fuzzing (tests/fuzz/README.md) -------------------------------------------
# libFuzzer drivers, built with clang into build/fuzz/ over a clang build of
# the library (coverage-instrumented, ASan + UBSan). Drivers that include a
# gateway .c file compile against the configured nginx tree of the sanitizer
# build. `make test` replays the committed corpora (scripts/test.sh fuzz);
#   make fuzz SECONDS=N   runs each driver for N seconds (default 60), one
#                         after the other, growing build/fuzz/corpus/<driver>/
#                         from the seeds; crashes land in build/fuzz/findings/.
FUZZ_CC      := clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -Iinclude $(WARN) -Wno-unused-parameter $(PKG_CFLAGS) $(FUZZ_SAN)
FUZZ_NGX     := build/san/nginx
FUZZ_NGX_INC := $(addprefix -I$(FUZZ_NGX)/,src/core src/event src/event/modules src/os/unix objs src/http src/http/modules src/http/v2)
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_NGX_DRV := build/fuzz/fuzz_form build/fuzz/fuzz_headers
FUZZ_OBJ     := $(LIB_SRC:%.c=build/fuzz/obj/%.o)
SECONDS      ?= 60

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BIN)

build/fuzz/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz/libgatehouse.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h build/fuzz/libgatehouse.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< build/fuzz/libgatehouse.a $(LIBS) -o $@

# these include a gateway .c file: nginx's headers, and nginx's own symbols
# (never called by the code under test) left unresolved
$(FUZZ_NGX_DRV): build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h tests/fuzz/ngx_stub.h $(GW_SRC) build/fuzz/libgatehouse.a build/san/ngx_http_gatehouse_module.so
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-missing-field-initializers -Wno-sign-compare -Wno-shadow $(FUZZ_NGX_INC) -fsanitize=fuzzer $< build/fuzz/libgatehouse.a $(LIBS) -no-pie -Wl,--unresolved-symbols=ignore-all -o $@

fuzz: fuzz-build
	@scripts/fuzz.sh $(SECONDS)
