# kiln's front door. `make demo`: set up, build what the main job needs and run it.
# `make test`: set up, build everything and run every test tier. Both need root (apt, /dev/kvm).
# Both configure alike (scripts/lib.sh: kiln_configure) and compile through ccache.
# `make fuzz`: every fuzz target for FUZZ_SECONDS (default 60) each; FUZZ_TARGETS picks some.
.PHONY: all setup build test demo fuzz clean

BUILD ?= build

all: build

setup:
	scripts/setup

build: setup
	bash -c 'source scripts/lib.sh && kiln_configure $(BUILD)'
	ninja -C $(BUILD)
	ninja -C $(BUILD) guest-kernel

test: setup
	KILN_BUILD_DIR=$(abspath $(BUILD)) scripts/test

demo: setup
	KILN_BUILD_DIR=$(abspath $(BUILD)) scripts/demo

# Every libFuzzer target for FUZZ_SECONDS each on its checked-in corpus (README: Fuzzing).
FUZZ_SECONDS ?= 60
fuzz: setup
	tests/fuzz/run --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) .kvm-host
