#!/usr/bin/env bash
# e2e: kiln-vmm boots the kiln guest kernel with an initramfs whose /init prints a marker and
# reboots; kiln-vmm must exit 0. Once from --config-file, once through the API socket
# (Firecracker's PUT /boot-source, /machine-config, /actions InstanceStart). Prints boot-to-init.
set -euo pipefail
src=${KILN_SOURCE_DIR:?} build=${KILN_BUILD_DIR:?}
kernel=${KILN_GUEST_KERNEL:-$build/guest-kernel/vmlinux}
initrd=$build/tests/e2e/smoke/initrd.cpio
panic_initrd=$build/tests/e2e/vmm/panic_initrd.cpio
vmm=$build/vmm/kiln-vmm
for f in "$kernel" "$initrd" "$panic_initrd" "$vmm"; do [ -e "$f" ] || { echo "FAIL: $f missing"; exit 1; }; done
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
args="console=ttyS0 reboot=k panic=1 quiet"

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# --- 1: --config-file ------------------------------------------------------------------------
cat >"$tmp/vm.json" <<JSON
{
  "boot-source": {"kernel_image_path": "$kernel", "initrd_path": "$initrd", "boot_args": "$args"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
  "drives": []
}
JSON
start=$(date +%s%N)
set +e
timeout 300 "$vmm" --no-api --config-file "$tmp/vm.json" >"$tmp/console1" 2>"$tmp/err1"
rc=$?
set -e
cat "$tmp/console1"; cat "$tmp/err1" >&2
grep -q KILN-GUEST-INIT-OK "$tmp/console1" || { echo "FAIL: no /init marker from --config-file boot (exit $rc)"; exit 1; }
[ $rc = 0 ] || { echo "FAIL: kiln-vmm exited $rc after the guest rebooted (want 0)"; exit 1; }
echo "vmm-boot: config-file boot to init and reboot: exit 0 in $(ms_since $start) ms"

# --- 2: API socket -------------------------------------------------------------------------
sock=$tmp/api.sock
"$vmm" --api-sock "$sock" >"$tmp/console2" 2>"$tmp/err2" &
pid=$!
for _ in $(seq 1 500); do [ -S "$sock" ] && break; sleep 0.02; done
[ -S "$sock" ] || { echo "FAIL: API socket never appeared"; cat "$tmp/err2"; exit 1; }
api() {  # api METHOD PATH BODY -> prints status code
  curl -s -o "$tmp/resp" -w '%{http_code}' --unix-socket "$sock" -X "$1" "http://localhost$2" \
    -H 'Content-Type: application/json' ${3:+-d "$3"}
}
code=$(api PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 128}'); [ "$code" = 204 ] || { echo "FAIL: machine-config $code $(cat "$tmp/resp")"; exit 1; }
code=$(api PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"$initrd\", \"boot_args\": \"$args\"}")
[ "$code" = 204 ] || { echo "FAIL: boot-source $code $(cat "$tmp/resp")"; exit 1; }
code=$(api PUT /boot-source '{"kernel_image_path": 7}')
[ "$code" = 400 ] && grep -q fault_message "$tmp/resp" || { echo "FAIL: bad boot-source not refused with fault_message ($code)"; exit 1; }
start=$(date +%s%N)
code=$(api PUT /actions '{"action_type": "InstanceStart"}'); [ "$code" = 204 ] || { echo "FAIL: InstanceStart $code $(cat "$tmp/resp")"; exit 1; }
set +e
timeout 300 tail --pid=$pid -f /dev/null
wait $pid; rc=$?
set -e
cat "$tmp/console2"; cat "$tmp/err2" >&2
grep -q KILN-GUEST-INIT-OK "$tmp/console2" || { echo "FAIL: no /init marker from API boot (exit $rc)"; exit 1; }
[ $rc = 0 ] || { echo "FAIL: kiln-vmm exited $rc (want 0)"; exit 1; }
echo "vmm-boot: API boot (2 vCPUs) to init and reboot: exit 0 in $(ms_since $start) ms"

# --- 3: a guest kernel panic ends kiln-vmm with exit code 2 --------------------------------------
sed -e "s|$initrd|$panic_initrd|" "$tmp/vm.json" >"$tmp/panic.json"
set +e
timeout 300 "$vmm" --no-api --config-file "$tmp/panic.json" >"$tmp/console3" 2>&1
rc=$?
set -e
grep -q "Kernel panic - not syncing" "$tmp/console3" || { cat "$tmp/console3"; echo "FAIL: the guest did not panic"; exit 1; }
[ $rc = 2 ] || { echo "FAIL: kiln-vmm exited $rc after a guest panic (want 2)"; exit 1; }
echo "vmm-boot: guest panic -> exit 2"

# --- 4: a bzImage (Debian's generic kernel, the test host's own) -------------------------------
source "$src/scripts/lib.sh"
bz=${KILN_BZIMAGE:-$(ls -1 "$kiln_cache"/test-host/*/root/boot/vmlinuz-* /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)}
[ -f "$bz" ] || { echo "FAIL: no bzImage found (set KILN_BZIMAGE, or run tests/kvm-host/run once)"; exit 1; }
cat >"$tmp/bz.json" <<JSON
{"boot-source": {"kernel_image_path": "$bz", "initrd_path": "$initrd", "boot_args": "console=ttyS0 reboot=k panic=1 quiet"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 256}}
JSON
start=$(date +%s%N)
set +e
timeout 300 "$vmm" --no-api --config-file "$tmp/bz.json" >"$tmp/console4" 2>&1
rc=$?
set -e
grep -q KILN-GUEST-INIT-OK "$tmp/console4" || { tail -n 30 "$tmp/console4"; echo "FAIL: bzImage $bz did not reach /init (exit $rc)"; exit 1; }
[ $rc = 0 ] || { echo "FAIL: kiln-vmm exited $rc after the bzImage guest rebooted"; exit 1; }
echo "vmm-boot: bzImage $(basename "$bz") to init and reboot: exit 0 in $(ms_since $start) ms"
