#!/usr/bin/env bash
# Benchmark (issue 18): warm invocation latency, lambda mode against http9000 mode (bench_lambda,
# see README.md). Needs a KVM that runs Linux; here that is the nested test host:
#   tests/kvm-host/run --smp 1 -- tests/bench/lambda/lambda_bench.sh [REQUESTS=400]
# KILN_BUILD_DIR picks the build (default REPO/build; built with `ninja bench_lambda guest-kernel`).
set -euo pipefail
source "$(dirname "$0")/../lib/build_env.sh"
exec "$build/tests/bench/lambda/bench_lambda" "$@"
