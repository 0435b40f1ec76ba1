# clipadapt — plain Makefile. Targets: all (default), test, demo, bench, bench-ort, fuzz, install, clean.
# SAN=1 builds everything under AddressSanitizer + UBSan into build-san/.
# TSAN=1 builds everything under ThreadSanitizer into build-tsan/, with clang and LLVM's OpenMP
# runtime (libomp): GCC's libgomp is not instrumented, so TSAN cannot see its barriers and
# reports every parallel region; libomp comes with Archer (libarcher.so), the OMPT tool that
# tells TSAN about OpenMP's synchronisation. tests/tsan.supp holds the few reports left inside
# the uninstrumented runtime itself (documented there); nothing in clipadapt is suppressed.
# Every target first runs scripts/setup.sh, which installs missing Debian packages (as root).
#
# The default build is portable: it runs on any x86-64, the model kernels being compiled once
# per SIMD path (generic, AVX2/FMA, AVX-512 + BF16) and chosen at run time from CPUID
# (src/model/cpu.c; CLIPADAPT_CPU=generic|avx2|avx512 forces one). ARCH=-march=native builds
# for this CPU only, without the choice (use another BUILD folder, e.g. BUILD=build-native).
# On other CPUs (aarch64) the portable C kernels are compiled once.

CC      ?= cc
ARCH    ?=
OPT     ?= -O2
SAN     ?= 0
TSAN    ?= 0
SHARED  ?= ../shared
PREFIX  ?= /usr/local
VERSION := $(shell sed -n 's/^\#define CA_VERSION "\([^"]*\)".*/\1/p' include/clipadapt.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))

ifeq ($(TSAN),1)
BUILD   ?= build-tsan
CC      := clang
# Open MPI's wrapper compiles build-tsan/clipadapt-mpi with clang too (libomp, not libgomp)
export OMPI_CC := clang
# -ffp-contract=off: clang would fuse a*b+c into FMAs where GCC (in ISO C mode) does not; the
# finite-difference gradient checks are tuned to GCC's rounding
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer -ffp-contract=off
OPT     := -O1
else ifeq ($(SAN),1)
BUILD   ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     := -O1
SO_LDFLAGS :=
else
BUILD   ?= build
SANFLAGS :=
SO_LDFLAGS := -Wl,--no-undefined
endif

# -fPIC: the same objects make the static and the shared library. -fvisibility=hidden: only
# what include/clipadapt.h marks CA_API is exported from libclipadapt.so.
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter $(OPT) -g $(ARCH) -fopenmp $(SANFLAGS) \
           -fPIC -fvisibility=hidden -Iinclude -Isrc -MMD -MP
LIBS    := -lopenblas -lcjson -lutf8proc -ljpeg -lpng -lwebpdemux -lwebp -lgif -ltiff -lz -lm
LDLIBS  += $(LIBS) -fopenmp $(SANFLAGS)
CLI_LIBS := -lmicrohttpd -lpthread    # clipadapt serve (cli/serve*.c) only

LIB_SRC  := $(shell find src -name '*.c' | sort)
CLI_SRC  := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
EX_SRC   := $(wildcard examples/*.c)
BENCH_SRC:= $(wildcard bench/*.c)

# Run-time dispatch: x86-64 and no ARCH given. The kernel files are compiled once per path into
# $(BUILD)/isa-raw/PATH/, their global symbols renamed name_PATH into $(BUILD)/isa/PATH/, and
# $(BUILD)/isa/stubs.S forwards each name to the path cpu.c picked (scripts/gen_isa_stubs.sh).
ISA_SRC   := $(addprefix src/model/,fast.c fastgemm.c fastops.c gemm.c kernels.c vmath.c) \
             src/adapt/search.c src/adapt/tc_rows.c src/core/convert.c src/adapt/clip_adapter_step.c
ISA_PATHS := generic avx2 avx512
ISA_FLAGS_generic :=
ISA_FLAGS_avx2    := -march=x86-64-v3
ISA_FLAGS_avx512  := -march=x86-64-v4 -mavx512bf16
DISPATCH := $(if $(strip $(ARCH)),0,$(if $(filter x86_64-%,$(shell $(CC) -dumpmachine)),1,0))

ifeq ($(DISPATCH),1)
ISA_RAW  := $(foreach p,$(ISA_PATHS),$(ISA_SRC:%.c=$(BUILD)/isa-raw/$(p)/%.o))
LIB_OBJ  := $(filter-out $(ISA_SRC:%.c=$(BUILD)/obj/%.o),$(LIB_SRC:%.c=$(BUILD)/obj/%.o)) \
            $(foreach p,$(ISA_PATHS),$(ISA_SRC:%.c=$(BUILD)/isa/$(p)/%.o)) $(BUILD)/isa/stubs.o
else
ISA_RAW  :=
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
endif
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libclipadapt.a
SO       := $(BUILD)/libclipadapt.so.$(VERSION)
BIN      := $(BUILD)/clipadapt
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
EXAMPLES := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
DEPS_OK  := $(BUILD)/.deps-ok

# Objects are rebuilt when the flags change (ARCH=..., OPT=...): the stamp is rewritten only then.
FLAGS_STAMP := $(BUILD)/.flags
$(shell mkdir -p $(BUILD) && echo '$(CC) $(CFLAGS) $(DISPATCH)' | cmp -s - $(FLAGS_STAMP) || \
        echo '$(CC) $(CFLAGS) $(DISPATCH)' > $(FLAGS_STAMP))

.PHONY: all test demo bench bench-bins bench-serve bench-bulk bench-fits bench-ort fuzz install clean deps check-aarch64
all: $(DEPS_OK) $(LIB) $(SO) $(BIN) $(EXAMPLES)

deps: $(DEPS_OK)
$(DEPS_OK): scripts/setup.sh
	@mkdir -p $(BUILD)
	@bash scripts/setup.sh $(if $(filter 1,$(TSAN)),tsan,build)
	@touch $@

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

ifeq ($(DISPATCH),1)
$(BUILD)/obj/src/model/cpu.o: CFLAGS += -DCA_DISPATCH
define ISA_RULES
$(BUILD)/isa-raw/$(1)/%.o: %.c $(FLAGS_STAMP) | $(DEPS_OK)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(ISA_FLAGS_$(1)) -c $$< -o $$@
$(BUILD)/isa/$(1)/%.o: $(BUILD)/isa-raw/$(1)/%.o $(BUILD)/isa/syms.txt
	@mkdir -p $$(dir $$@)
	@bash scripts/gen_isa_stubs.sh redefine $(1) $(BUILD)/isa/syms.txt >$$@.syms
	objcopy --redefine-syms=$$@.syms $$< $$@
endef
$(foreach p,$(ISA_PATHS),$(eval $(call ISA_RULES,$(p))))
$(BUILD)/isa/syms.txt: $(ISA_RAW) scripts/gen_isa_stubs.sh
	@mkdir -p $(dir $@)
	@bash scripts/gen_isa_stubs.sh syms $(ISA_RAW) >$@.tmp && mv $@.tmp $@
$(BUILD)/isa/stubs.S: $(BUILD)/isa/syms.txt
	@bash scripts/gen_isa_stubs.sh asm $< $(ISA_PATHS) >$@.tmp && mv $@.tmp $@
$(BUILD)/isa/stubs.o: $(BUILD)/isa/stubs.S
	$(CC) -c $< -o $@
endif

# The optimiser steps' sqrtf only vectorises without errno handling (arguments are never
# negative; no value changes, no fast-math).
$(BUILD)/obj/src/adapt/train.o: CFLAGS += -fno-math-errno

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# libclipadapt.so.X.Y.Z with SONAME libclipadapt.so.X and the usual two links beside it.
$(SO): $(LIB_OBJ) scripts/libclipadapt.map
	$(CC) -shared -Wl,-soname,libclipadapt.so.$(SOMAJOR) -Wl,--version-script=scripts/libclipadapt.map \
	    $(SO_LDFLAGS) -o $@ $(LIB_OBJ) $(LDLIBS)
	ln -sf libclipadapt.so.$(VERSION) $(BUILD)/libclipadapt.so.$(SOMAJOR)
	ln -sf libclipadapt.so.$(SOMAJOR) $(BUILD)/libclipadapt.so

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(CLI_LIBS) $(LDLIBS)

# build/clipadapt-mpi: the same program with main.c and mpi.c compiled by mpicc (-DCA_MPI), for
# `mpirun -np N`. Built by `make MPI=1`, and by `make test` when mpicc exists (Open MPI:
# libopenmpi-dev); build/clipadapt itself never links MPI.
MPICC    ?= mpicc
MPI_BIN  := $(BUILD)/clipadapt-mpi
MPI_OBJ  := $(BUILD)/obj-mpi/cli/main.o $(BUILD)/obj-mpi/cli/mpi.o
HAVE_MPI := $(shell command -v $(MPICC) >/dev/null 2>&1 && echo 1)
$(BUILD)/obj-mpi/%.o: %.c $(FLAGS_STAMP) cli/cli.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(MPICC) $(CFLAGS) -DCA_MPI -c $< -o $@
$(MPI_BIN): $(filter-out $(BUILD)/obj/cli/main.o $(BUILD)/obj/cli/mpi.o,$(CLI_OBJ)) $(MPI_OBJ) $(LIB)
	$(MPICC) $(CFLAGS) -o $@ $^ $(CLI_LIBS) $(LDLIBS)
ifeq ($(MPI),1)
all: $(MPI_BIN)
endif

$(BUILD)/tests/%: tests/%.c tests/harness.h tests/testmath.h $(LIB)
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

test: all $(TESTS) $(BUILD)/bench/peer $(BUILD)/tests/header_cpp.o $(if $(HAVE_MPI),$(MPI_BIN))
	@bash scripts/setup.sh $(if $(filter 1,$(TSAN)),tsan,test)
	@BUILD=$(BUILD) SHARED=$(SHARED) SAN=$(SAN) TSAN=$(TSAN) bash scripts/run_tests.sh

# Fuzz targets (libFuzzer via clang, library objects built once); run_tests.sh runs each briefly.
FUZZ_CC    := clang
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fopenmp -Iinclude -Isrc
FUZZ_LIBS  := -lopenblas -lcjson -lutf8proc -ljpeg -lpng -lwebpdemux -lwebp -lgif -ltiff -lz -lm
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

# What an x86-64 machine can check of the aarch64 build: every source compiled with Debian's
# cross compiler (portable kernels), the library linked, its undefined symbols all from the
# linked libraries; the script's output says what it does not cover (no arm64 libraries to link
# the program against, nothing run).
check-aarch64:
	@bash scripts/setup.sh aarch64
	@BUILD=$(BUILD) bash scripts/check_aarch64.sh

# make demo stays under a minute on 2 cores: one method per family (the CLIP-Adapter text/both
# variants and ZS-LP, which is CLAP without its penalty, are left to results.sh), K = 1, 4, 16.
DEMO_METHODS = zero-shot,tip-adapter,tip-adapter-f,tip-cache,ape,proker,clip-adapter,lp++,clap,taskres,linear-probe,prototype,gda,gda-zs
demo: all
	@mkdir -p $(BUILD)/demo
	@echo "demo: one seed (1), K = 1, 4, 16, trained methods at --epochs 10, 14 of the 17 methods (not clip-adapter-text/-both, zs-lp); bash scripts/results.sh runs all 17, every K, seeds 1-3, at the defaults"
	$(BIN) fewshot --features $(SHARED)/features/stanford_cars.safetensors --method $(DEMO_METHODS) --shots 1,4,16 \
	  --epochs 10 --json $(BUILD)/demo/results.json --plot $(BUILD)/demo/accuracy.svg

# make bench also builds build-native/ (ARCH=-march=native, no dispatch) and times its encoders
# beside the portable build's, which should stay within 3 %.
NATIVE_BUILD ?= build-native
bench-bins: all $(BENCHES) $(BUILD)/tests/test_grow
bench: bench-bins
	@bash scripts/setup.sh bench
	@$(MAKE) --no-print-directory BUILD=$(NATIVE_BUILD) ARCH=-march=native bench-bins
	@BUILD=$(BUILD) NATIVE_BUILD=$(NATIVE_BUILD) SHARED=$(SHARED) bash bench/run.sh

# make install PREFIX=/usr/local [DESTDIR=...]: header, both libraries, the program, pkg-config.
LIBDIR        ?= $(PREFIX)/lib
INCLUDEDIR    ?= $(PREFIX)/include
BINDIR        ?= $(PREFIX)/bin
PKGCONFIGDIR  ?= $(LIBDIR)/pkgconfig
install: all
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/clipadapt.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libclipadapt.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libclipadapt.so.$(SOMAJOR)
	ln -sf libclipadapt.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libclipadapt.so
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|; s|@LIBS@|$(LIBS) -fopenmp|' scripts/clipadapt.pc.in \
	    >$(DESTDIR)$(PKGCONFIGDIR)/clipadapt.pc

# Only the load test of `clipadapt serve` (also the last part of make bench).
bench-serve: all $(BENCHES) $(BUILD)/tests/test_grow
	@bash scripts/setup.sh bench
	@BUILD=$(BUILD) bash bench/serve.sh

# Only the bulk-predict throughput (issue 14): predict on a JPEG folder vs encode on the same
# images preprocessed (bench/bulk.sh; BULK_BEFORE=older/clipadapt times its predict beside).
bench-bulk: all $(BUILD)/bench/gen_jpegs
	@BUILD=$(BUILD) SHARED=$(SHARED) bash bench/bulk.sh

# Only the Tip-Adapter and tip-cache fits at ImageNet size (issue 14), 3 runs each beside the
# figures before (bench/fits.sh; BEFORE=older/clipadapt times that binary in the same loop).
bench-fits: all $(BUILD)/bench/gen_features
	@BUILD=$(BUILD) bash bench/fits.sh

# Only the ONNX Runtime comparison (also a block of make bench): bench/ort.sh.
bench-ort: all $(BUILD)/bench/peer $(BUILD)/bench/gen_weights
	@bash scripts/setup.sh bench
	@$(BUILD)/bench/gen_weights $(BUILD)/bench-weights
	@BUILD=$(BUILD) bash bench/ort.sh

clean:
	rm -rf build build-san build-tsan build-native

-include $(LIB_OBJ:.o=.d) $(ISA_RAW:.o=.d) $(CLI_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d)
