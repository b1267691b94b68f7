#!/usr/bin/env bash
# Benchmark (issue 3): boot-to-init of kiln-vmm vs QEMU `-M microvm` booting the same kernel,
# initramfs and command line, N runs each (default 10), interleaved; prints both medians and
# the ratio, and kiln-vmm's resident memory excluding guest RAM (1 vCPU, 128 MiB).
# Needs a real KVM: run it through tests/kvm-host/run where this machine's KVM cannot boot Linux:
#   tests/kvm-host/run -- tests/bench/vmm/boot_bench.sh [RUNS]
set -euo pipefail
src=$(cd "$(dirname "$0")/../../.." && pwd)
build=${KILN_BUILD_DIR:-$src/build}
runs=${1:-10}
kernel=$(readlink -f "${KILN_GUEST_KERNEL:-$build/guest-kernel/vmlinux}")
vmm=$build/vmm/kiln-vmm
source "$src/tests/bench/lib/vmm_rss.sh"
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
"$src/tests/e2e/lib/make-initramfs" "$tmp/initrd.cpio" "$src/tests/bench/vmm/init.sh"
args="console=ttyS0 reboot=k panic=1 quiet"
mem_mib=128

for v in vm:"$args" vm-hold:"$args kiln.hold"; do
  cat >"$tmp/${v%%:*}.json" <<JSON
{"boot-source": {"kernel_image_path": "$kernel", "initrd_path": "$tmp/initrd.cpio", "boot_args": "${v#*:}"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": $mem_mib}}
JSON
done

# Runs one boot; prints milliseconds to the marker (and samples kiln-vmm's RSS if asked).
boot_once() {  # boot_once kiln|qemu [rss_out_file]
  local kind=$1 rss_out=${2:-} start pid line ms=
  : >"$tmp/out"
  start=$(date +%s%N)
  if [ "$kind" = kiln ]; then
    local cfg=vm; [ -z "$rss_out" ] || cfg=vm-hold
    "$vmm" --no-api --config-file "$tmp/$cfg.json" >"$tmp/out" 2>&1 &
  else
    qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off -enable-kvm -cpu host -m ${mem_mib}M -smp 1 \
      -nodefaults -no-user-config -display none -serial file:"$tmp/out" -no-reboot \
      -kernel "$kernel" -initrd "$tmp/initrd.cpio" -append "${args/reboot=k/reboot=t}" </dev/null >/dev/null 2>&1 &
  fi
  pid=$!
  local deadline=$(( $(date +%s) + 300 ))
  while [ "$(date +%s)" -lt $deadline ]; do
    if grep -q KILN-BENCH-INIT "$tmp/out" 2>/dev/null; then ms=$(( ($(date +%s%N) - start) / 1000000 )); break; fi
    kill -0 $pid 2>/dev/null || break
    sleep 0.01
  done
  [ -n "$ms" ] || kill -9 $pid 2>/dev/null || true
  if [ -n "$rss_out" ] && [ -n "$ms" ]; then
    vmm_rss_kib $pid $mem_mib >"$rss_out"
    kill $pid
  fi
  wait $pid 2>/dev/null || true
  [ -n "$ms" ] || { echo "boot failed ($kind):" >&2; tail -n 20 "$tmp/out" >&2; return 1; }
  echo "$ms"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

: >"$tmp/kiln.ms"; : >"$tmp/qemu.ms"
boot_once kiln >/dev/null; boot_once qemu >/dev/null   # warm the page cache for both
echo "warm-up done" >&2
for i in $(seq 1 "$runs"); do
  boot_once kiln >>"$tmp/kiln.ms"
  boot_once qemu >>"$tmp/qemu.ms"
done
boot_once kiln "$tmp/rss" >/dev/null
read -r other_kb guest_kb <"$tmp/rss"

k=$(median <"$tmp/kiln.ms"); q=$(median <"$tmp/qemu.ms")
echo "boot-to-init, $runs runs each (ms): kiln-vmm [$(paste -sd' ' "$tmp/kiln.ms")]  qemu-microvm [$(paste -sd' ' "$tmp/qemu.ms")]"
printf '| VMM | median boot-to-init (ms) |\n|---|---|\n| kiln-vmm | %s |\n| qemu -M microvm | %s |\n' "$k" "$q"
awk -v k="$k" -v q="$q" 'BEGIN { printf "ratio kiln-vmm / qemu-microvm: %.2f (target <= 0.70)\n", k / q }'
awk -v o="$other_kb" -v g="$guest_kb" 'BEGIN { printf "kiln-vmm RSS excluding guest RAM: %.2f MiB (guest RAM resident: %.1f MiB; target <= 5 MiB)\n", o / 1024, g / 1024 }'
