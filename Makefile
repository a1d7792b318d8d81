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
