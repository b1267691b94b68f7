# Sourced by the benchmark wrappers that run a bench_* binary against a build: sets `src` (the
# repository), `build` (KILN_BUILD_DIR, default src/build) and exports KILN_BUILD_DIR and
# KILN_GUEST_KERNEL (default the build's guest kernel) for the binary.
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
build=${KILN_BUILD_DIR:-$src/build}
export KILN_BUILD_DIR=$build
[ -n "${KILN_GUEST_KERNEL:-}" ] || export KILN_GUEST_KERNEL=$(readlink -f "$build/guest-kernel/vmlinux")
