# rotor: `make` builds build/rotor and build/librotor.a; `make test` builds and runs the tests.
# SANITIZE=1 builds into build-san/ with AddressSanitizer + UndefinedBehaviorSanitizer.

CXX      ?= g++
SHARED   ?= $(abspath ../shared)
SANITIZE ?= 0

CXXFLAGS := -std=c++17 -O2 -g -Wall -Wextra -Wshadow -I. -MMD -MP
LDLIBS   := -lsentencepiece -lopenblas -lpthread
ifeq ($(SANITIZE),1)
  BUILD    := build-san
  CXXFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS  += -fsanitize=address,undefined
else
  BUILD    := build
endif

DEPS_PACKAGES := g++ make libopenblas-dev libsentencepiece-dev doctest-dev libbenchmark-dev \
                 nlohmann-json3-dev

# Kernels for one ISA are compiled with that ISA's flags and only for their architecture;
# which one runs is decided at start-up (engine/kernels/dispatch.cpp).
ARCH      := $(shell $(CXX) -dumpmachine)
X86_KERNELS  := engine/kernels/avx2.cpp engine/kernels/avx512.cpp
NEON_KERNELS := engine/kernels/neon.cpp
ifneq (,$(findstring x86_64,$(ARCH)))
  ISA_KERNELS := $(X86_KERNELS)
else ifneq (,$(findstring aarch64,$(ARCH)))
  ISA_KERNELS := $(NEON_KERNELS)
endif
KERNEL_SRC := $(filter-out $(X86_KERNELS) $(NEON_KERNELS),$(wildcard engine/kernels/*.cpp)) $(ISA_KERNELS)
LIB_SRC   := $(wildcard engine/*.cpp engine/import/*.cpp tokenizer/*.cpp) $(KERNEL_SRC)
TOOL_SRC  := $(wildcard tools/*.cpp)
TEST_SRC  := $(wildcard tests/*.cpp)
LIB_OBJ   := $(LIB_SRC:%.cpp=$(BUILD)/%.o)
TOOL_OBJ  := $(TOOL_SRC:%.cpp=$(BUILD)/%.o)
TEST_OBJ  := $(TEST_SRC:%.cpp=$(BUILD)/%.o)
# The CLI's pieces without its main(), for tests that exercise argument parsing directly.
CLI_OBJ   := $(filter-out $(BUILD)/tools/main.o,$(TOOL_OBJ))

.PHONY: all test deps run clean
all: $(BUILD)/rotor $(BUILD)/librotor.a

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/engine/kernels/avx2.o: CXXFLAGS += -mavx2 -mfma
$(BUILD)/engine/kernels/avx512.o: CXXFLAGS += -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma

$(BUILD)/librotor.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/rotor: $(TOOL_OBJ) $(BUILD)/librotor.a
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/rotor_tests: $(TEST_OBJ) $(CLI_OBJ) $(BUILD)/librotor.a
	$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

test: $(BUILD)/rotor $(BUILD)/rotor_tests
	ROTOR_SHARED=$(SHARED) ROTOR_BIN=$(abspath $(BUILD)/rotor) $(BUILD)/rotor_tests

# Generates a story with the default model (fetched into models/cache/ first).
run: $(BUILD)/rotor
	models/fetch.sh stories260K
	$(BUILD)/rotor run -m models/cache/stories260K/stories260K.bin -p "Once upon a time" -n 200

deps:
	@missing=$$(for p in $(DEPS_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

clean:
	rm -rf build build-san

-include $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
