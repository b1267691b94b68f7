#!/usr/bin/env bash
# e2e (issue 17, VMM side): kiln-vmm's virtio-net on a TAP, in a network namespace this test
# makes (nothing outside it is touched; it vanishes with the test). The guest (net_init.sh)
# shows the MAC and MTU it was given, fetches a 4 MiB file from an HTTP server on the host side
# of the TAP and pings it; the host fetches the guest's 4 MiB file (checksums compared both
# ways). Then: per-device metrics, a transmit rate limit set with PATCH caps a transfer to the
# configured bandwidth (ratio printed), and a snapshot restored onto another TAP
# (network_overrides) still serves. Hostile interface bodies are refused with 400.
set -euo pipefail
if [ -z "${KILN_NET_TEST_NETNS:-}" ]; then
  exec unshare --net env KILN_NET_TEST_NETNS=1 "$0" "$@"
fi
build=${KILN_BUILD_DIR:?}
kernel=${KILN_GUEST_KERNEL:-$build/guest-kernel/vmlinux}
initrd=$build/tests/e2e/vmm/net_initrd.cpio
vmm=$build/vmm/kiln-vmm
for f in "$kernel" "$initrd" "$vmm"; do [ -e "$f" ] || { echo "FAIL: $f missing"; exit 1; }; done
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
host_mac=02:00:0a:00:02:01 guest_mac=06:00:0a:00:02:02
size=4194304

api() {  # api SOCK METHOD PATH [BODY] -> status code; body in $tmp/resp
  curl -s --max-time 120 -o "$tmp/resp" -w '%{http_code}' --unix-socket "$1" -X "$2" "http://localhost$3" \
    -H 'Content-Type: application/json' ${4:+-d "$4"} || true
}
expect() {  # expect CODE ACTUAL WHAT
  [ "$1" = "$2" ] || { echo "FAIL: $3: HTTP $2 (want $1) $(cat "$tmp/resp" 2>/dev/null)"; exit 1; }
}
tap_up() {  # tap_up NAME: the host side of the guest's link, same MAC and address each time
  ip tuntap add "$1" mode tap
  ip link set "$1" address $host_mac
  ip addr add 10.0.2.1/24 dev "$1"
  ip link set "$1" up
}
start_vmm() {  # start_vmm NAME -> pid in $vmm_pid, socket $tmp/NAME.sock, console $tmp/NAME.console
  "$vmm" --api-sock "$tmp/$1.sock" >"$tmp/$1.console" 2>"$tmp/$1.err" &
  vmm_pid=$!
  for _ in $(seq 1 500); do curl -s --max-time 2 --unix-socket "$tmp/$1.sock" -o /dev/null http://localhost/ && break; sleep 0.05; done
}
wait_console() {  # wait_console NAME PATTERN SECONDS
  for _ in $(seq 1 $(( $3 * 10 ))); do grep -q "$2" "$tmp/$1.console" && return 0; sleep 0.1; done
  echo "FAIL: no '$2' on the $1 console"; cat "$tmp/$1.console" "$tmp/$1.err"; exit 1
}
fetch() {  # fetch OUT -> seconds (3 decimals) to fetch the guest's file
  local s e; s=$(date +%s%N)
  busybox wget -q -O "$1" http://10.0.2.2:8080/big || { echo "FAIL: fetching the guest's file"; exit 1; }
  e=$(date +%s%N)
  echo "$(( (e - s) / 1000000 ))"
}
metric() { jq -r ".devices.net_eth0.$1" "$tmp/resp"; }

ip link set lo up
tap_up kt0
mkdir -p "$tmp/www"
head -c $size /dev/urandom >"$tmp/www/big"
host_md5=$(md5sum <"$tmp/www/big" | cut -d' ' -f1)
busybox httpd -p 10.0.2.1:8080 -h "$tmp/www"

start_vmm a
sock=$tmp/a.sock
expect 204 "$(api "$sock" PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 256}')" machine-config
expect 204 "$(api "$sock" PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"$initrd\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 quiet\"}")" boot-source
# Hostile bodies first: each a 400 naming the problem, nothing configured.
expect 400 "$(api "$sock" PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "kt0", "guest_mac": "01:00:00:00:00:01"}')" "multicast MAC"
expect 400 "$(api "$sock" PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "a-name-far-too-long-for-linux"}')" "long TAP name"
expect 400 "$(api "$sock" PUT /network-interfaces/eth1 '{"iface_id": "eth0", "host_dev_name": "kt0"}')" "id mismatch"
expect 204 "$(api "$sock" PUT /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"host_dev_name\": \"kt0\", \"guest_mac\": \"$guest_mac\", \"mtu\": 1400}")" network-interfaces
expect 204 "$(api "$sock" PUT /actions '{"action_type": "InstanceStart"}')" InstanceStart
wait_console a "guest: net ready" 300

grep -q "guest eth0: mac $guest_mac mtu 1400" "$tmp/a.console" || { echo "FAIL: MAC/MTU not as configured"; grep "guest eth0" "$tmp/a.console"; exit 1; }
grep -q "guest fetched md5: $host_md5" "$tmp/a.console" || { echo "FAIL: the guest's copy of the host file differs"; grep "guest fetch" "$tmp/a.console"; exit 1; }
grep -q "guest ping: ok" "$tmp/a.console" || { echo "FAIL: guest ping"; exit 1; }
echo "vmm-net: guest -> host: 4 MiB over HTTP, checksum equal; ping ok; MAC and MTU as configured"
guest_md5=$(sed -n 's/^guest big md5: //p' "$tmp/a.console" | tr -d '\r')
t0=$(fetch "$tmp/got0")
[ "$(md5sum <"$tmp/got0" | cut -d' ' -f1)" = "$guest_md5" ] || { echo "FAIL: the host's copy of the guest file differs"; exit 1; }
echo "vmm-net: host -> guest: 4 MiB over HTTP in $t0 ms, checksum equal"

expect 200 "$(api "$sock" GET /metrics)" metrics
[ "$(metric tx_bytes)" -ge $size ] && [ "$(metric rx_bytes)" -ge $size ] && [ "$(metric tx_dropped)" = 0 ] ||
  { echo "FAIL: net metrics: $(jq -c .devices.net_eth0 "$tmp/resp")"; exit 1; }
echo "vmm-net: metrics: $(jq -c '.devices.net_eth0 | {rx_packets, rx_bytes, tx_packets, tx_bytes, errors}' "$tmp/resp")"

# Transmit limit at a fifth of the rate just measured (the limiter, not the emulated test host,
# then sets the pace): the same transfer must take size/rate, within 20%.
rate=$(( size * 1000 / (t0 > 0 ? t0 : 1) / 5 ))
[ $rate -ge 65536 ] || rate=65536
bucket=$(( rate / 10 ))
expect 204 "$(api "$sock" PATCH /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"tx_rate_limiter\": {\"bandwidth\": {\"size\": $bucket, \"refill_time\": 100}}}")" "PATCH tx limiter"
t1=$(fetch "$tmp/got1")
want=$(( (size - bucket) * 1000 / rate ))
ratio=$(( t1 * 100 / want ))
echo "vmm-net: tx limited to $rate B/s: 4 MiB in $t1 ms, expected $want ms: ratio $(awk "BEGIN {printf \"%.2f\", $t1 / $want}") (0.80..1.20)"
[ $ratio -ge 80 ] && [ $ratio -le 120 ] || { echo "FAIL: rate limited transfer took $ratio% of the expected time"; exit 1; }
[ "$(md5sum <"$tmp/got1" | cut -d' ' -f1)" = "$guest_md5" ] || { echo "FAIL: limited transfer corrupted"; exit 1; }
expect 400 "$(api "$sock" PATCH /network-interfaces/eth9 '{"iface_id": "eth9"}')" "PATCH unknown interface"

# Snapshot, then restore in a new kiln-vmm onto another TAP (same MAC and address: Firecracker's
# network-for-clones): the guest still serves.
expect 204 "$(api "$sock" PATCH /vm '{"state": "Paused"}')" pause
expect 204 "$(api "$sock" PUT /snapshot/create "{\"snapshot_path\": \"$tmp/snap\", \"mem_file_path\": \"$tmp/mem\"}")" snapshot
kill -9 "$vmm_pid"; wait "$vmm_pid" 2>/dev/null || true
ip link del kt0
tap_up kt1
start_vmm b
expect 204 "$(api "$tmp/b.sock" PUT /snapshot/load "{\"snapshot_path\": \"$tmp/snap\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$tmp/mem\"}, \"resume_vm\": true, \"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"kt1\"}]}")" "snapshot load"
expect 204 "$(api "$tmp/b.sock" PATCH /network-interfaces/eth0 '{"iface_id": "eth0", "tx_rate_limiter": {"bandwidth": {"size": 0, "refill_time": 0}}}')" "PATCH limiter off"
t2=$(fetch "$tmp/got2")
[ "$(md5sum <"$tmp/got2" | cut -d' ' -f1)" = "$guest_md5" ] || { echo "FAIL: after restore the guest file differs"; exit 1; }
echo "vmm-net: restored onto kt1 (network_overrides): 4 MiB in $t2 ms, checksum equal"
touch "$tmp/www/stop"  # the guest polls for it, then reboots
set +e
timeout 120 tail --pid="$vmm_pid" -f /dev/null || kill -9 "$vmm_pid"
wait "$vmm_pid"; rc=$?
set -e
[ $rc = 0 ] || { echo "FAIL: kiln-vmm exited $rc (want 0 after the guest rebooted)"; tail -5 "$tmp/b.console"; cat "$tmp/b.err"; exit 1; }
echo "vmm-net: ok"
