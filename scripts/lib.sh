# Shared shell helpers for kiln's scripts: cache location and logging.
kiln_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kiln_cache=${KILN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln}
kiln_log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
kiln_die() { kiln_log "error: $*"; exit 1; }

# One configure for every entry point (make demo, make test, CI): the same flags, so one ccache
# entry serves them all. Prints nothing unless cmake fails.
kiln_configure() {  # kiln_configure BUILD_DIR
  local log; log=$(mktemp)
  cmake -S "$kiln_repo" -B "$1" -G Ninja >"$log" 2>&1 || { cat "$log"; rm -f "$log"; return 1; }
  rm -f "$log"
}
# What the main job (scripts/main-job) runs; `make demo` builds only these.
kiln_demo_targets=(kiln-vmm kilnd kiln kiln-initramfs hello-image)  # and the guest kernel

# The guest kernel is the longest step of a first build (minutes, its own make -j): started
# first, in the background, it overlaps cmake and the C++ compile; the guest-kernel target
# then waits for it (scripts/build-guest-kernel takes a lock) and links the result.
kiln_guest_kernel_start() {
  "$kiln_repo/scripts/build-guest-kernel" >/dev/null &
  kiln_guest_kernel_job=$!
}
kiln_guest_kernel_finish() {  # kiln_guest_kernel_finish BUILD_DIR
  wait "$kiln_guest_kernel_job" || kiln_die "the guest kernel build failed (scripts/build-guest-kernel)"
  ninja -C "$1" guest-kernel
}
