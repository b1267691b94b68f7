#!/bin/sh
# Boot smoke test of kiln-init's PID 1 path without KVM or vsock: QEMU's microvm machine (TCG)
# boots kiln's guest kernel with the kiln-init initramfs, the hello image as an ext4 /dev/vda
# and a config drive /dev/vdb. The spec runs hello in the background and calls it over
# loopback; the serial console must show the answers and the agent's clean reboot.
# usage: qemu-smoke.sh KILN_INIT INITRAMFS OCI_DIR [VMLINUX]   (exit 77 = skipped)
set -eu
kiln_init=$1
initramfs=$2
oci=$3
vmlinux=${4:-${KILN_GUEST_KERNEL:-}}
here=$(cd "$(dirname "$0")" && pwd)

# Where kiln-vmm itself can boot Linux, e2e_guest_agent covers this path for real (with vsock);
# this TCG boot is the stand-in for machines whose KVM cannot (and TCG inside the nested test
# host would be far too slow).
if [ -n "${KILN_VMM:-}" ] && "$KILN_VMM" --self-test >/dev/null 2>&1; then
  echo "SKIP: this KVM runs Linux guests; e2e_guest_agent covers the boot path"; exit 77
fi
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86 not installed"; exit 77; }
command -v mkfs.ext4 >/dev/null || { echo "SKIP: e2fsprogs not installed"; exit 77; }
if [ -z "$vmlinux" ]; then
  vmlinux=$("$here/../scripts/build-guest-kernel") || { echo "SKIP: no guest kernel"; exit 77; }
fi

work=$(mktemp -d /tmp/kiln-qemu-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
manifest=$(grep -o '"digest":"sha256:[0-9a-f]*"' "$oci/index.json" | head -1 | sed 's/.*sha256:\([0-9a-f]*\)"/\1/')
mkdir "$work/tree"
for layer in $(grep -o '"digest":"sha256:[0-9a-f]*"' "$oci/blobs/sha256/$manifest" | tail -n +2 |
               sed 's/.*sha256:\([0-9a-f]*\)"/\1/'); do
  tar -xzf "$oci/blobs/sha256/$layer" -C "$work/tree"
done
if [ -n "${KILN_SMOKE_ROOTFS:-}" ]; then
  cp "$KILN_SMOKE_ROOTFS" "$work/rootfs.ext4"  # e.g. kiln-rootfs's output for the same image
else
  mkfs.ext4 -q -F -d "$work/tree" "$work/rootfs.ext4" 32M
fi
"$kiln_init" --write-spec "$work/config.img" --hostname smoke --cwd /srv --overlay-mib 8 \
  --wall-clock-ns "$(date +%s)000000000" -- \
  sh -c 'exec >/dev/console 2>&1
echo "guest: $(id -u) $(hostname) $(pwd) year=$(date +%Y)"
(hello &)
i=0; until wget -qO- http://127.0.0.1:9000/ >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 500 ] || exit 9; done
wget -qO- --header "X-Scf-Request-Id: smoke-1" --post-data "{\"name\":\"smoke\"}" http://127.0.0.1:9000/event-invoke
echo
touch /written && echo overlay-writable
exit 0'

timeout 600 qemu-system-x86_64 -M microvm,ioapic2=off,acpi=off,rtc=off -accel tcg -cpu max \
  -m 256M -smp 1 -nographic -no-reboot -nodefaults -serial stdio \
  -kernel "$vmlinux" -initrd "$initramfs" -append "console=ttyS0 panic=-1 reboot=k quiet" \
  -drive id=vda,file="$work/rootfs.ext4",format=raw,if=none,readonly=on -device virtio-blk-device,drive=vda \
  -drive id=vdb,file="$work/config.img",format=raw,if=none,readonly=on -device virtio-blk-device,drive=vdb \
  > "$work/console.log" 2>&1 || true
cat "$work/console.log"
fail=0
for want in 'kiln-init: launch spec from config drive /dev/vdb' "guest: 0 smoke /srv year=$(date +%Y)" \
            '"message":"hello, smoke"' 'hello: POST /event-invoke 200 request_id=smoke-1' \
            'overlay-writable' 'kiln-init: command exited: code 0' 'reboot: Restarting system'; do
  grep -qF "$want" "$work/console.log" || { echo "MISSING: $want"; fail=1; }
done
[ $fail = 0 ] && echo "qemu smoke: OK"
exit $fail
