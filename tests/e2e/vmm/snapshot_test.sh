#!/usr/bin/env bash
# e2e (issue 7, VMM side): PATCH /vm Paused, PUT /snapshot/create, PATCH /vm Resumed on a
# running guest, whose clock does not count the pause; a new kiln-vmm restores it with PUT /snapshot/load and the guest's counter
# continues where the snapshot left it. Corrupt, truncated and wrong-version snapshots are
# refused with 400 and a clear fault_message. A snapshot loaded paused (resume_vm false) stays
# still until PATCH /vm Resumed, and neither its clock nor its timers count the time it stayed
# loaded (no burst of timer interrupts once it runs).
# Prints the snapshot/load API latency.
set -euo pipefail
build=${KILN_BUILD_DIR:?}
kernel=${KILN_GUEST_KERNEL:-$build/guest-kernel/vmlinux}
initrd=$build/tests/e2e/vmm/tick_initrd.cpio
vmm=$build/vmm/kiln-vmm
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

api() {  # api SOCK METHOD PATH [BODY] -> status code; body in $tmp/resp
  curl -s --max-time 120 -o "$tmp/resp" -w '%{http_code}' --unix-socket "$1" -X "$2" "http://localhost$3" \
    -H 'Content-Type: application/json' ${4:+-d "$4"} || true
}
expect() {  # expect CODE ACTUAL WHAT
  [ "$1" = "$2" ] || { echo "FAIL: $3: HTTP $2 (want $1) $(cat "$tmp/resp" 2>/dev/null)"; diagnose; exit 1; }
}
diagnose() {  # where is kiln-vmm stuck? (thread backtraces)
  [ -n "${vmm_pid:-}" ] && kill -0 "$vmm_pid" 2>/dev/null && command -v gdb >/dev/null &&
    timeout 60 gdb -p "$vmm_pid" -batch -ex "thread apply all bt 8" 2>/dev/null | grep -E "^(Thread|#)" | head -60
  [ -n "${vmm_pid:-}" ] && curl -s --max-time 10 --unix-socket "$tmp/a.sock" http://localhost/metrics | head -c 3000
  true
}
start_vmm() {  # start_vmm NAME -> pid in $vmm_pid; console in $tmp/NAME.console
  rm -f "$tmp/$1.sock"
  "$vmm" --api-sock "$tmp/$1.sock" >"$tmp/$1.console" 2>&1 &
  vmm_pid=$!
  for _ in $(seq 1 1000); do [ -S "$tmp/$1.sock" ] && return 0; sleep 0.02; done
  echo "FAIL: $1: API socket never appeared"; exit 1
}
wait_for_line() {  # wait_for_line FILE REGEX SECONDS (console lines end in \r\n)
  local end=$(( $(date +%s) + $3 ))
  while [ "$(date +%s)" -lt $end ]; do
    tr -d '\r' <"$1" 2>/dev/null | grep -aE "$2" >/dev/null && return 0
    sleep 0.1
  done
  echo "FAIL: no line matching '$2' in $1 within $3 s"; tail -n 20 "$1"; diagnose; exit 1
}
stop_vmm() { kill "$vmm_pid" 2>/dev/null || true; wait "$vmm_pid" 2>/dev/null || true; }
host_stall_ms() {  # host_stall_ms FROM_NS TO_NS -> the longest gap (ms) in this host's heartbeat then
  awk -v a="$1" -v b="$2" 'p != "" && $1 > a && p < b && $1 - p > m { m = $1 - p } { p = $1 } END { print int(m / 1000000) }' "$tmp/beat"
}
last_tick() { grep -aoE 'tick [0-9]+' "$1" | tail -n 1 | cut -d' ' -f2; }
uptime_at() {  # uptime_at FILE TICK -> the guest's uptime printed with that tick (seconds)
  tr -d '\r' <"$1" | grep -aE "^tick $2 up " | head -n 1 | cut -d' ' -f4
}
irq0_at() {  # irq0_at FILE TICK -> the guest's IRQ 0 (PIT) interrupt count printed with that tick
  tr -d '\r' <"$1" | grep -aE "^tick $2 up [0-9.]+ irq0 [0-9]+$" | head -n 1 | cut -d' ' -f6
}
first_whole_tick() {  # first_whole_tick FILE -> the first tick whose whole line a restored guest printed
  tr -d '\r' <"$1" | grep -aE '^tick [0-9]+ up [0-9.]+ irq0 [0-9]+$' | head -n 1 | cut -d' ' -f2
}

# --- original VM ------------------------------------------------------------------------------
start_vmm a
A=$tmp/a.sock
expect 204 "$(api "$A" PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"$initrd\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 quiet\"}")" boot-source
expect 204 "$(api "$A" PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 128}')" machine-config
expect 204 "$(api "$A" PUT /vsock "{\"guest_cid\": 3, \"uds_path\": \"$tmp/a.vsock\"}")" vsock
expect 204 "$(api "$A" PUT /entropy '{}')" entropy
expect 400 "$(api "$A" PATCH /vm '{"state": "Paused"}')" "pause before start"
expect 204 "$(api "$A" PUT /actions '{"action_type": "InstanceStart"}')" InstanceStart
wait_for_line "$tmp/a.console" '^tick 5 ' 240
pause_t0=$(date +%s%N)
expect 204 "$(api "$A" PATCH /vm '{"state": "Paused"}')" pause
expect 200 "$(api "$A" GET /)" "instance info"
grep -q '"Paused"' "$tmp/resp" || { echo "FAIL: GET / does not say Paused: $(cat "$tmp/resp")"; exit 1; }
sleep 1
paused_at=$(last_tick "$tmp/a.console")
sleep 1
[ "$(last_tick "$tmp/a.console")" = "$paused_at" ] || { echo "FAIL: the guest kept running while paused"; exit 1; }
expect 204 "$(api "$A" PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$tmp/snap\", \"mem_file_path\": \"$tmp/mem\"}")" snapshot/create
# What the guest had written when the snapshot was taken: a restored guest's console continues it,
# possibly in mid-line (a pause can fall between two bytes the guest writes to its serial port).
cp "$tmp/a.console" "$tmp/a.at_snapshot"
echo "snapshot: paused at tick $paused_at; state $(stat -c %s "$tmp/snap") bytes, memory $(stat -c %s "$tmp/mem") bytes ($(du -k "$tmp/mem" | cut -f1) KiB on disk)"
sleep 5  # a pause of 7 s or more, which the guest's clock must not count
paused_ms=$(( ($(date +%s%N) - pause_t0) / 1000000 ))
expect 204 "$(api "$A" PATCH /vm '{"state": "Resumed"}')" resume
wait_for_line "$tmp/a.console" "^tick $((paused_at + 3)) " 120
# The guest's time stood still while paused: from the last tick printed whole before the pause
# to the third after it, its uptime moved by about four ticks' time, not by the pause (a clock
# that ran on would add all of it). Two seconds of slack for ticks slowed down by this host.
before=$(uptime_at "$tmp/a.console" $((paused_at - 1))); after=$(uptime_at "$tmp/a.console" $((paused_at + 3)))
awk -v a="$before" -v b="$after" -v p="$paused_ms" 'BEGIN { exit !(a != "" && b != "" && b - a < p / 1000 - 2) }' ||
  { echo "FAIL: the guest's clock counted the pause: uptime $before at tick $((paused_at - 1)), $after at tick $((paused_at + 3)), paused $paused_ms ms"; exit 1; }
echo "snapshot: paused $paused_ms ms; the guest's uptime from tick $((paused_at - 1)) to $((paused_at + 3)): $before -> $after s"
stop_vmm

# --- hostile snapshots are refused ---------------------------------------------------------------
cp "$tmp/snap" "$tmp/flipped"; printf '\xff' | dd of="$tmp/flipped" bs=1 seek=100 conv=notrunc status=none
head -c 1000 "$tmp/snap" >"$tmp/truncated"
cp "$tmp/snap" "$tmp/version"; printf '\x63' | dd of="$tmp/version" bs=1 seek=8 conv=notrunc status=none
cp "$tmp/snap" "$tmp/magic"; printf 'X' | dd of="$tmp/magic" bs=1 seek=0 conv=notrunc status=none
for bad in flipped:checksum truncated:truncated version:version magic:magic; do
  start_vmm bad
  expect 400 "$(api "$tmp/bad.sock" PUT /snapshot/load "{\"snapshot_path\": \"$tmp/${bad%%:*}\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$tmp/mem\"}, \"resume_vm\": true}")" "load of ${bad%%:*} snapshot"
  grep -q "${bad#*:}" "$tmp/resp" || { echo "FAIL: ${bad%%:*} snapshot refused without naming '${bad#*:}': $(cat "$tmp/resp")"; exit 1; }
  echo "snapshot: ${bad%%:*} state file refused: $(cat "$tmp/resp")"
  stop_vmm
done

# --- restore into a new process -------------------------------------------------------------------
# A heartbeat of this host (the nested test host can stall for seconds): a guest whose first
# tick after a restore comes late because this host stood still is not a VMM fault.
# (bash builtins only: no process per beat on a slow host)
mkfifo "$tmp/beat.wait"
( exec 3<>"$tmp/beat.wait"; while :; do echo "${EPOCHREALTIME/./}000"; read -rt 0.1 -u 3 || true; done ) >"$tmp/beat" &
start_vmm b
t0=$(date +%s%N)
b_start=$t0
expect 204 "$(api "$tmp/b.sock" PUT /snapshot/load "{\"snapshot_path\": \"$tmp/snap\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$tmp/mem\"}, \"vsock_override\": {\"uds_path\": \"$tmp/b.vsock\"}, \"resume_vm\": true}")" snapshot/load
echo "snapshot: PUT /snapshot/load took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
wait_for_line "$tmp/b.console" "^tick $((paused_at + 3)) " 120
b_end=$(date +%s%N)
# (without the line b may be writing right now: a tick still being printed is not a wrong tick)
cat "$tmp/a.at_snapshot" "$tmp/b.console" | perl -0777 -pe 's/[^\n]*\z//' >"$tmp/ab.console"
first=$(grep -aoE 'tick [0-9]+' "$tmp/ab.console" | cut -d' ' -f2 | awk -v p="$paused_at" '$1 > p { print; exit }')
# Every tick once, in order, across the snapshot: none lost, none repeated.
grep -aoE 'tick [0-9]+' "$tmp/ab.console" | cut -d' ' -f2 | awk '$1 != NR { exit 1 }' &&
  [ "$first" = $((paused_at + 1)) ] || {
  echo "FAIL: the restored guest started at tick $first, want $((paused_at + 1)); the original's last bytes and the restored console's first:"
  tail -c 120 "$tmp/a.at_snapshot" | od -c | tail -n 4; head -c 200 "$tmp/b.console" | od -c | head -n 8; exit 1; }
[ -S "$tmp/b.vsock" ] || { echo "FAIL: the vsock uds_path override was not applied"; exit 1; }
expect 400 "$(api "$tmp/b.sock" PUT /boot-source "{\"kernel_image_path\": \"$kernel\"}")" "boot-source after restore"
echo "snapshot: restored guest continued from tick $first (paused at $paused_at)"
# The clock check below compares the tick after the first one b printed whole: the guest may
# have read that first tick's uptime before the snapshot (a pause between its read and its echo).
clock_tick=$(( $(first_whole_tick "$tmp/b.console") + 1 ))
irq_tick=$((clock_tick + 2))
wait_for_line "$tmp/b.console" "^tick $irq_tick " 120
stop_vmm

# --- load paused, resume later (kilnd's parked VMMs) -------------------------------------------
start_vmm c
expect 204 "$(api "$tmp/c.sock" PUT /snapshot/load "{\"snapshot_path\": \"$tmp/snap\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$tmp/mem\"}, \"vsock_override\": {\"uds_path\": \"$tmp/c.vsock\"}, \"resume_vm\": false}")" "snapshot/load paused"
expect 200 "$(api "$tmp/c.sock" GET /)" "instance info after a paused load"
grep -q '"Paused"' "$tmp/resp" || { echo "FAIL: GET / after a paused load does not say Paused: $(cat "$tmp/resp")"; exit 1; }
sleep 12  # loaded, not running: no tick may appear, and the guest's clock must not count this
if grep -aqE 'tick [0-9]+' "$tmp/c.console"; then echo "FAIL: a guest loaded paused ran: $(tail -n 3 "$tmp/c.console")"; exit 1; fi
t0=$(date +%s%N)
expect 204 "$(api "$tmp/c.sock" PATCH /vm '{"state": "Resumed"}')" "resume after a paused load"
echo "snapshot: PATCH /vm Resumed after a paused load took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
wait_for_line "$tmp/c.console" "^tick $clock_tick " 120
c_end=$(date +%s%N)
seen_ms=$(( (c_end - t0) / 1000000 ))
wait_for_line "$tmp/c.console" "^tick $irq_tick " 120
# The same tick after the same snapshot: restored at once (b) and after 12 s loaded paused (c)
# the guest's uptime must agree (both continue from the clock a's pause froze, so both are
# past a's last tick); a clock set at load would put c 12 s ahead. Two bounds:
# - c cannot be further ahead of b than the time that passed here from the start of the resume
#   until the tick showed (b's guest time since its restore is >= 0; c's is at most that), plus
#   0.5 s for rounding: a loaded machine that delays the tick delays both, so this stays tight;
# - half the pause either way, plus the longest stall of this host meanwhile: a guest whose
#   timers fire late after the restore wakes seconds late, and its clock rightly shows it.
at_once=$(uptime_at "$tmp/b.console" "$clock_tick")
after_park=$(uptime_at "$tmp/c.console" "$clock_tick")
awk -v a="$at_once" -v b="$after_park" -v s="$seen_ms" 'BEGIN { d = b - a; exit !(d < s / 1000 + 0.5) }' ||
  { echo "FAIL: the guest's clock counted the paused load: uptime at tick $clock_tick $at_once restored at once, $after_park after 12 s loaded paused, seen $seen_ms ms after the resume began"; exit 1; }
stall_ms=$(host_stall_ms "$b_start" "$b_end"); c_stall_ms=$(host_stall_ms "$t0" "$c_end")
[ "$c_stall_ms" -le "$stall_ms" ] || stall_ms=$c_stall_ms
awk -v a="$at_once" -v b="$after_park" -v s="$stall_ms" 'BEGIN { d = b - a; if (d < 0) d = -d; exit !(d < 6.0 + s / 1000) }' ||
  { echo "FAIL: the guest's clock counted the paused load or its timers woke it late: uptime at tick $clock_tick $at_once restored at once, $after_park after 12 s loaded paused (this host stalled at most $stall_ms ms meanwhile)"; exit 1; }
# Timers: b and c left the snapshot with the same IRQ 0 (PIT) count; by the same tick c may have
# taken more only for the guest time it is ahead of b (at b's own rate), plus 50. A PIT that ran
# while the VM stayed loaded has KVM re-inject every tick it missed (250 Hz: 3000 in 12 s).
b_irq=$(irq0_at "$tmp/b.console" "$irq_tick"); c_irq=$(irq0_at "$tmp/c.console" "$irq_tick")
b_irq0=$(irq0_at "$tmp/b.console" "$clock_tick"); b_up=$(uptime_at "$tmp/b.console" "$irq_tick"); c_up=$(uptime_at "$tmp/c.console" "$irq_tick")
allowed=$(awk -v bi="$b_irq" -v b0="$b_irq0" -v bu="$b_up" -v ba="$at_once" -v cu="$c_up" 'BEGIN {
  rate = bu > ba ? (bi - b0) / (bu - ba) : 0; ahead = cu - bu; if (ahead < 0) ahead = 0
  printf "%d", 50 + rate * ahead * 1.5 }')
[ -n "$b_irq" ] && [ -n "$c_irq" ] && [ $((c_irq - b_irq)) -le "$allowed" ] ||
  { echo "FAIL: timer interrupts after 12 s loaded paused: IRQ 0 count at tick $irq_tick $c_irq, restored at once $b_irq (allowed $allowed more)"; exit 1; }
echo "snapshot: loaded paused for 12 s, then resumed: uptime at tick $clock_tick $after_park (restored at once: $at_once), seen $seen_ms ms after the resume began; longest host stall $stall_ms ms; IRQ 0 count at tick $irq_tick $c_irq (restored at once: $b_irq)"
stop_vmm
echo "snapshot: ok"
