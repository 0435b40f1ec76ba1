# clipadapt — plain Makefile. Targets: all (default), test, demo, bench, fuzz, clean.
# SAN=1 builds everything under AddressSanitizer + UBSan into build-san/.
# Every target first runs scripts/setup.sh, which installs missing Debian packages (as root).

CC      ?= cc
ARCH    ?= -march=native
OPT     ?= -O2
SAN     ?= 0
SHARED  ?= ../shared

ifeq ($(SAN),1)
BUILD   := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     := -O1
else
BUILD   := build
SANFLAGS :=
endif

CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter $(OPT) -g $(ARCH) -fopenmp $(SANFLAGS) \
           -Iinclude -Isrc -MMD -MP
LDLIBS  += -lopenblas -lcjson -lutf8proc -ljpeg -lpng -lwebpdemux -lwebp -lgif -lz -lm -fopenmp $(SANFLAGS)

LIB_SRC  := $(shell find src -name '*.c' | sort)
CLI_SRC  := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
EX_SRC   := $(wildcard examples/*.c)
BENCH_SRC:= $(wildcard bench/*.c)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libclipadapt.a
BIN      := $(BUILD)/clipadapt
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
EXAMPLES := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
DEPS_OK  := $(BUILD)/.deps-ok

.PHONY: all test demo bench fuzz clean deps
all: $(DEPS_OK) $(LIB) $(BIN) $(EXAMPLES)

deps: $(DEPS_OK)
$(DEPS_OK): scripts/setup.sh
	@mkdir -p $(BUILD)
	@bash scripts/setup.sh build
	@touch $@

$(BUILD)/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The optimiser steps' sqrtf only vectorises without errno handling (arguments are never
# negative; no value changes, no fast-math).
$(BUILD)/obj/src/adapt/train.o: CFLAGS += -fno-math-errno

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/harness.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# The header must compile as C++ too.
$(BUILD)/tests/header_cpp.o: include/clipadapt.h tests/header_cpp.cpp
	@mkdir -p $(dir $@)
	c++ -std=c++11 -Wall -Wextra -Werror -Iinclude -c tests/header_cpp.cpp -o $@

test: all $(TESTS) $(BUILD)/tests/header_cpp.o
	@bash scripts/setup.sh test
	@BUILD=$(BUILD) SHARED=$(SHARED) SAN=$(SAN) bash scripts/run_tests.sh

# Fuzz targets (libFuzzer via clang, library objects built once); run_tests.sh runs each briefly.
FUZZ_CC    := clang
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fopenmp -Iinclude -Isrc
FUZZ_LIBS  := -lopenblas -lcjson -lutf8proc -ljpeg -lpng -lwebpdemux -lwebp -lgif -lz -lm
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS    := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_OBJ   := $(LIB_SRC:%.c=$(BUILD)/fuzzobj/%.o)
fuzz: $(DEPS_OK) $(FUZZERS)
$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(FUZZ_CC) $(FUZZ_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) -o $@ $(FUZZ_LIBS)

demo: all
	@mkdir -p $(BUILD)/demo
	@echo "demo: one seed (1), trained methods at --epochs 20; bash scripts/results.sh runs seeds 1-3 at the defaults"
	$(BIN) fewshot --features $(SHARED)/features/stanford_cars.safetensors --method all --shots all \
	  --epochs 20 --json $(BUILD)/demo/results.json --plot $(BUILD)/demo/accuracy.svg

bench: all $(BENCHES)
	@bash scripts/setup.sh bench
	@BUILD=$(BUILD) SHARED=$(SHARED) bash bench/run.sh

clean:
	rm -rf build build-san

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d)
