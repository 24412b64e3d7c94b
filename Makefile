# rotor: `make` builds build/rotor and build/librotor.a; `make test` builds and runs the tests.
# SANITIZE=1 builds into build-san/ with AddressSanitizer + UndefinedBehaviorSanitizer.
# `make test-neon` cross-builds the kernel tests for AArch64 and runs them under qemu-user;
# `make test` does too when the cross compiler and qemu are installed (`make deps`).

CXX      ?= g++
SHARED   ?= $(abspath ../shared)
SANITIZE ?= 0

# No FMA contraction: the scalar reference kernels must round alike on every architecture.
CXXFLAGS := -std=c++17 -O2 -g -Wall -Wextra -Wshadow -ffp-contract=off -I. -MMD -MP
LDLIBS   := -lsentencepiece -lopenblas -lcpp-httplib -lpthread
ifeq ($(SANITIZE),1)
  BUILD    := build-san
  CXXFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS  += -fsanitize=address,undefined
else
  BUILD    := build
endif

DEPS_PACKAGES := g++ make libopenblas-dev libsentencepiece-dev doctest-dev libbenchmark-dev \
                 nlohmann-json3-dev libcpp-httplib-dev tmux curl

# Kernels for one ISA are compiled with that ISA's flags and only for their architecture;
# which one runs is decided at start-up (engine/kernels/dispatch.cpp).
ARCH      := $(shell $(CXX) -dumpmachine)
X86_KERNELS  := engine/kernels/avx2.cpp engine/kernels/avx2_vnni.cpp engine/kernels/avx512.cpp \
                engine/kernels/kv_avx2.cpp engine/kernels/kv_avx512.cpp
NEON_KERNELS := engine/kernels/neon.cpp engine/kernels/kv_neon.cpp
X86_KERNELS  += engine/kernels/hadamard_avx2.cpp engine/kernels/hadamard_avx512.cpp
NEON_KERNELS += engine/kernels/hadamard_neon.cpp
ifneq (,$(findstring x86_64,$(ARCH)))
  ISA_KERNELS := $(X86_KERNELS)
  # The AArch64 cross compiler and qemu-user test the NEON kernels here (test-neon).
  DEPS_PACKAGES += g++-aarch64-linux-gnu qemu-user
else ifneq (,$(findstring aarch64,$(ARCH)))
  ISA_KERNELS := $(NEON_KERNELS)
endif
KERNEL_SRC := $(filter-out $(X86_KERNELS) $(NEON_KERNELS),$(wildcard engine/kernels/*.cpp)) $(ISA_KERNELS)
LIB_SRC   := $(wildcard engine/*.cpp engine/import/*.cpp engine/format/*.cpp quant/*.cpp tokenizer/*.cpp) $(KERNEL_SRC)
TOOL_SRC  := $(wildcard tools/*.cpp)
TEST_SRC  := $(wildcard tests/*.cpp)
LIB_OBJ   := $(LIB_SRC:%.cpp=$(BUILD)/%.o)
TOOL_OBJ  := $(TOOL_SRC:%.cpp=$(BUILD)/%.o)
TEST_OBJ  := $(TEST_SRC:%.cpp=$(BUILD)/%.o)
# The CLI's pieces without its main(), for tests that exercise argument parsing directly.
CLI_OBJ   := $(filter-out $(BUILD)/tools/main.o,$(TOOL_OBJ))

# The NEON kernels, cross-built with the kernel tests only (no OpenBLAS or SentencePiece, so
# nothing beyond the toolchain's own libraries) into a static binary for qemu-user, and run on
# a CPU with the dot-product extension and on one without, so both NEON paths are checked.
# `make test` includes the run when the tools are here (not in the sanitized build).
AARCH64_CXX  ?= aarch64-linux-gnu-g++
QEMU_AARCH64 ?= qemu-aarch64
DOCTEST_DIR  ?= /usr/include/doctest
XBUILD       := build-aarch64
# doctest is header-only: the cross build sees it through a directory holding only a link to
# it, rather than by adding the host's /usr/include to its search path.
XCXXFLAGS    := -std=c++17 -O2 -Wall -Wextra -Wshadow -ffp-contract=off -I. -I$(XBUILD)/include -MMD -MP
XTEST_SRC    := tests/test_main.cpp tests/test_kernels.cpp tests/test_hadamard_kernels.cpp \
                tests/test_f16_kernels.cpp engine/format/checksum.cpp \
                $(filter-out $(X86_KERNELS),$(wildcard engine/kernels/*.cpp))
XTEST_OBJ    := $(XTEST_SRC:%.cpp=$(XBUILD)/%.o)

define NEON_RUN
@echo "== NEON kernel tests: qemu-aarch64 -cpu max (dotprod) =="
$(QEMU_AARCH64) -cpu max $(XBUILD)/kernel_tests
@echo "== NEON kernel tests: qemu-aarch64 -cpu cortex-a72 (no dotprod) =="
$(QEMU_AARCH64) -cpu cortex-a72 $(XBUILD)/kernel_tests
endef

HAVE_NEON_TOOLS := $(shell command -v $(AARCH64_CXX) >/dev/null 2>&1 && \
                     command -v $(QEMU_AARCH64) >/dev/null 2>&1 && echo yes)
ifeq ($(SANITIZE),1)
  TEST_NEON_BIN :=
  TEST_NEON_RUN :=
else ifeq ($(HAVE_NEON_TOOLS),yes)
  TEST_NEON_BIN := $(XBUILD)/kernel_tests
  TEST_NEON_RUN = $(NEON_RUN)
else
  TEST_NEON_BIN :=
  TEST_NEON_RUN = @echo "NEON kernel tests skipped: $(AARCH64_CXX) or $(QEMU_AARCH64) not found (make deps)"
endif

.PHONY: all test test-neon deps run clean bench speed
all: $(BUILD)/rotor $(BUILD)/librotor.a

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

# Debian's cpp-httplib is a compiled library; its users must see the options it was built with.
$(BUILD)/tools/cmd_serve.o: CXXFLAGS += -DCPPHTTPLIB_OPENSSL_SUPPORT -DCPPHTTPLIB_ZLIB_SUPPORT \
                                        -DCPPHTTPLIB_BROTLI_SUPPORT
$(BUILD)/engine/kernels/avx2.o $(BUILD)/engine/kernels/kv_avx2.o: CXXFLAGS += -mavx2 -mfma -mf16c
$(BUILD)/engine/kernels/avx2_vnni.o: CXXFLAGS += -mavx2 -mfma -mf16c -mavxvnni
$(BUILD)/engine/kernels/avx512.o $(BUILD)/engine/kernels/kv_avx512.o: CXXFLAGS += -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mfma
$(BUILD)/engine/kernels/hadamard_avx2.o: CXXFLAGS += -mavx2 -mfma
$(BUILD)/engine/kernels/hadamard_avx512.o: CXXFLAGS += -mavx512f -mfma
# -O2's "very cheap" model will not vectorize the epilogue's loops (they need run-time alias
# checks); vectorizing them reorders no float operation, and doubles their speed.
$(BUILD)/engine/kernels/epilogue.o: CXXFLAGS += -fvect-cost-model=dynamic
$(XBUILD)/engine/kernels/epilogue.o: XCXXFLAGS += -fvect-cost-model=dynamic

$(BUILD)/librotor.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/rotor: $(TOOL_OBJ) $(BUILD)/librotor.a
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/rotor_tests: $(TEST_OBJ) $(CLI_OBJ) $(BUILD)/librotor.a
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

test: $(BUILD)/rotor $(BUILD)/rotor_tests $(TEST_NEON_BIN)
	ROTOR_SHARED=$(SHARED) ROTOR_BIN=$(abspath $(BUILD)/rotor) $(BUILD)/rotor_tests
	$(TEST_NEON_RUN)

# Kernel micro-benchmarks (Google Benchmark; not part of `make test`): builds
# $(BUILD)/bench/kernels_bench and runs it; BENCH_ARGS passes its flags
# (e.g. BENCH_ARGS=--benchmark_filter=gemv/avx512).
BENCH_SRC := $(wildcard bench/*.cpp)
BENCH_OBJ := $(BENCH_SRC:%.cpp=$(BUILD)/%.o)
$(BUILD)/bench/kernels_bench: $(BENCH_OBJ) $(BUILD)/tools/shared_files.o $(BUILD)/librotor.a
	$(CXX) $(LDFLAGS) $^ -lbenchmark $(LDLIBS) -o $@

bench: $(BUILD)/bench/kernels_bench
	ROTOR_SHARED=$(SHARED) $< $(BENCH_ARGS)

# The end-to-end speed tables (bench/run_speed.sh): stories260K per format and ISA;
# synthetic TinyLlama-1.1B and LLaMA-2-7B files (cached in models/cache/synth/) through
# `rotor bench` at 1 and 2 threads; at LLaMA-2-7B shape the online steps' share of decode and
# decode after 4096 positions of context.
speed: $(BUILD)/rotor
	ROTOR=$(BUILD)/rotor SHARED=$(SHARED) bench/run_speed.sh

$(XBUILD)/include/doctest:
	@mkdir -p $(dir $@)
	ln -sfn $(DOCTEST_DIR) $@

$(XBUILD)/%.o: %.cpp | $(XBUILD)/include/doctest
	@mkdir -p $(dir $@)
	$(AARCH64_CXX) $(XCXXFLAGS) -c $< -o $@

$(XBUILD)/kernel_tests: $(XTEST_OBJ)
	$(AARCH64_CXX) -static $^ -o $@

test-neon: $(XBUILD)/kernel_tests
	$(NEON_RUN)

# Generates a story with the default model (fetched into models/cache/ first).
run: $(BUILD)/rotor
	models/fetch.sh stories260K
	$(BUILD)/rotor run -m models/cache/stories260K/stories260K.bin -p "Once upon a time" -n 200

# The Debian packages above; and, as the server tests drive `rotor serve` with the OpenAI client
# library under Node.js, Debian's nodejs and npm unless some Node.js is already installed, then
# the library's locked version.
deps:
	@missing=$$(for p in $(DEPS_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi
	@test -d tests/server/node_modules/openai || npm ci --prefix tests/server --no-audit --no-fund

clean:
	rm -rf build build-san $(XBUILD)

-include $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(XTEST_OBJ:.o=.d) $(BENCH_OBJ:.o=.d)
