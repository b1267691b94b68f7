#!/usr/bin/env bash
# Benchmark (issue 19): lazy root disks against a full pull + build of a large image over a
# netem-shaped link (bench_lazy, see README.md). Needs a KVM that runs Linux; here that is the
# nested test host:
#   tests/kvm-host/run --work REPO --mem 20G -- tests/bench/lazy/lazy_bench.sh [MIB=1024] [ROUNDS=3]
# (the test host's /tmp, half its memory, holds the registry, the image's copies and two kilnds)
# KILN_LAZY_BENCH_DELAY / KILN_LAZY_BENCH_RATE shape the link (default 10ms, 200mbit each way).
set -euo pipefail
source "$(dirname "$0")/../lib/build_env.sh"
exec "$build/tests/bench/lazy/bench_lazy" "$@"
