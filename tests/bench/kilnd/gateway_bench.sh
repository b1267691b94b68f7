#!/usr/bin/env bash
# Benchmark (issue 6): kilnd's gateway overhead and cold start (bench_kilnd_gateway, see
# README.md). Needs a KVM that runs Linux; here that is the nested test host:
#   tests/kvm-host/run --work REPO -- tests/bench/kilnd/gateway_bench.sh [REQUESTS] [CONCURRENCY] [COLD_STARTS]
# KILN_BUILD_DIR picks the build (default REPO/build; built with `ninja bench_kilnd_gateway guest-kernel`).
set -euo pipefail
source "$(dirname "$0")/../lib/build_env.sh"
# The nested test host boots with loopback down: raise it so kilnd's TCP listener is measured too.
if [ "${KILN_IN_TEST_HOST:-}" = 1 ]; then ip link set lo up 2>/dev/null || busybox ip link set lo up 2>/dev/null || true; fi
exec "$build/tests/bench/kilnd/bench_kilnd_gateway" "$@"
