# kiln's front door. `make demo`: set up, build everything and run the main job.
# `make test`: set up, build everything and run every test tier. Both need root (apt, /dev/kvm).
.PHONY: all setup build test demo clean

BUILD ?= build

all: build

setup:
	scripts/setup

build: setup
	cmake -S . -B $(BUILD) -G Ninja
	ninja -C $(BUILD)
	ninja -C $(BUILD) guest-kernel

test: setup
	KILN_BUILD_DIR=$(abspath $(BUILD)) scripts/test

demo: build
	KILN_BUILD_DIR=$(abspath $(BUILD)) scripts/demo

clean:
	rm -rf $(BUILD) .kvm-host
