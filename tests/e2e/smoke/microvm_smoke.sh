#!/usr/bin/env bash
# Smoke e2e (baseline peer): QEMU's microvm machine boots kiln's guest kernel with a tiny
# initramfs under KVM; the guest's /init prints a marker. Proves kernel + harness, and is the
# baseline that kiln-vmm's boot benchmark compares against. Prints the guest boot-to-init time.
set -euo pipefail
src=${KILN_SOURCE_DIR:?} build=${KILN_BUILD_DIR:?}
kernel=${KILN_GUEST_KERNEL:-$build/guest-kernel/vmlinux}
[ -f "$kernel" ] || { echo "FAIL: guest kernel $kernel missing (ninja guest-kernel)"; exit 1; }
[ -c /dev/kvm ] || { echo "FAIL: no /dev/kvm"; exit 1; }
initrd=${KILN_SMOKE_INITRD:-$build/tests/e2e/smoke/initrd.cpio}
[ -f "$initrd" ] || { echo "FAIL: $initrd missing (built by ninja)"; exit 1; }

start=$(date +%s%N)
marker_ns=
while IFS= read -r line; do
  line=${line%$'\r'}
  echo "guest: $line"
  case "$line" in KILN-GUEST-INIT-OK*) marker_ns=$(date +%s%N) ;; esac
done < <(timeout 300 qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off -enable-kvm -cpu host \
           -m 256M -smp 1 -nodefaults -no-user-config -display none -serial stdio -no-reboot \
           -kernel "$kernel" -initrd "$initrd" \
           -append "console=ttyS0 reboot=t panic=-1 quiet" </dev/null 2>&1)
if [ -z "$marker_ns" ]; then
  echo "FAIL: the guest never printed its /init marker"
  exit 1
fi
awk -v ns=$((marker_ns - start)) 'BEGIN { printf "smoke: QEMU microvm guest boot-to-init %.2f s\n", ns / 1e9 }'
