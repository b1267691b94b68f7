#!/usr/bin/env bash
# Benchmark (issue 7): snapshot restore against cold boot, to first response (bench_snapshot,
# see README.md). Needs a KVM that runs Linux; here that is the nested test host:
#   tests/kvm-host/run --work REPO -- tests/bench/snapshot/snapshot_bench.sh [ROUNDS=10]
# KILN_BUILD_DIR picks the build (default REPO/build; built with `ninja bench_snapshot guest-kernel`).
set -euo pipefail
source "$(dirname "$0")/../lib/build_env.sh"
exec "$build/tests/bench/snapshot/bench_snapshot" "$@"
