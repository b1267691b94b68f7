#!/usr/bin/env bash
# e2e: kiln-vmm's seccomp filters in a real microVM. (1) A VM booted through the API shows
# `Seccomp: 2` for every thread, answers the API, and shuts down cleanly under its filters.
# (2) The test hook makes vCPU 0 open a TCP socket: kiln-vmm must die with SIGSYS. (3) With
# --no-seccomp (debugging only) the same hook survives and no thread is filtered.
set -euo pipefail
build=${KILN_BUILD_DIR:?}
kernel=${KILN_GUEST_KERNEL:-$build/guest-kernel/vmlinux}
initrd=$build/tests/e2e/vmm/tick_initrd.cpio   # a guest that prints "tick N" every 200 ms
vmm=$build/vmm/kiln-vmm
for f in "$kernel" "$initrd" "$vmm"; do [ -e "$f" ] || { echo "FAIL: $f missing"; exit 1; }; done
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
ulimit -c 0  # SIGSYS would dump core
args="console=ttyS0 reboot=k panic=1 quiet"

# wait_for FILE PATTERN SECONDS PID: until FILE matches, PID dies, or the deadline passes.
wait_for() {
  local deadline=$(( $(date +%s) + $3 ))
  while [ "$(date +%s)" -lt $deadline ]; do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$4" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# print_threads PID: one line per thread: tid, name, Seccomp, Seccomp_filters, NoNewPrivs.
print_threads() {
  local t
  for t in /proc/"$1"/task/*; do
    printf '  tid %-7s %-16s %s  %s  %s\n' "${t##*/}" "$(cat "$t/comm")" \
      "$(grep '^Seccomp:' "$t/status" | tr -s '\t ' ' ')" \
      "$(grep '^Seccomp_filters:' "$t/status" | tr -s '\t ' ' ' || true)" \
      "$(grep '^NoNewPrivs:' "$t/status" | tr -s '\t ' ' ')"
  done
}

cat >"$tmp/vm.json" <<JSON
{
  "boot-source": {"kernel_image_path": "$kernel", "initrd_path": "$initrd", "boot_args": "$args"},
  "machine-config": {"vcpu_count": 2, "mem_size_mib": 128}
}
JSON

# --- 1: every thread of a VM booted through the API is filtered ---------------------------------
sock=$tmp/api.sock
"$vmm" --api-sock "$sock" >"$tmp/console1" 2>"$tmp/err1" &
pid=$!
for _ in $(seq 1 500); do [ -S "$sock" ] && break; sleep 0.02; done
[ -S "$sock" ] || { echo "FAIL: API socket never appeared"; cat "$tmp/err1"; exit 1; }
api() {  # api METHOD PATH BODY -> prints the status code
  curl -s -o "$tmp/resp" -w '%{http_code}' --unix-socket "$sock" -X "$1" "http://localhost$2" \
    -H 'Content-Type: application/json' ${3:+-d "$3"}
}
code=$(api PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 128}'); [ "$code" = 204 ] || { echo "FAIL: machine-config $code"; exit 1; }
code=$(api PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"$initrd\", \"boot_args\": \"$args\"}")
[ "$code" = 204 ] || { echo "FAIL: boot-source $code $(cat "$tmp/resp")"; exit 1; }
code=$(api PUT /actions '{"action_type": "InstanceStart"}'); [ "$code" = 204 ] || { echo "FAIL: InstanceStart $code $(cat "$tmp/resp")"; exit 1; }
wait_for "$tmp/console1" "tick 3" 240 $pid || { cat "$tmp/console1" "$tmp/err1"; echo "FAIL: the guest did not tick"; exit 1; }
echo "seccomp: threads of kiln-vmm $pid (booted through the API, 2 vCPUs):"
print_threads $pid
threads=$(ls /proc/$pid/task | wc -l)
filtered=$(grep -l '^Seccomp:[[:space:]]*2$' /proc/$pid/task/*/status | wc -l)
[ "$threads" -ge 5 ] || { echo "FAIL: expected main, API, signal, event-loop and 2 vCPU threads, saw $threads"; exit 1; }
[ "$filtered" = "$threads" ] || { echo "FAIL: $filtered of $threads threads have Seccomp: 2"; exit 1; }
grep -q '^NoNewPrivs:[[:space:]]*1$' /proc/$pid/status || { echo "FAIL: NoNewPrivs is not 1"; exit 1; }
code=$(api GET / ''); [ "$code" = 200 ] || { echo "FAIL: GET / under seccomp answered $code"; exit 1; }
code=$(api PATCH /vm '{"state": "Paused"}'); [ "$code" = 204 ] || { echo "FAIL: pause under seccomp answered $code $(cat "$tmp/resp")"; exit 1; }
code=$(api PATCH /vm '{"state": "Resumed"}'); [ "$code" = 204 ] || { echo "FAIL: resume under seccomp answered $code $(cat "$tmp/resp")"; exit 1; }
kill -TERM $pid
set +e; wait $pid; rc=$?; set -e
[ $rc = 0 ] || { cat "$tmp/err1"; echo "FAIL: kiln-vmm exited $rc after SIGTERM under seccomp (want 0)"; exit 1; }
echo "seccomp: all $threads threads filtered; API, pause/resume and SIGTERM shutdown (exit 0) work under the filters"

# --- 2: the violation hook ends kiln-vmm with SIGSYS ---------------------------------------------
start=$(date +%s)
"$vmm" --no-api --config-file "$tmp/vm.json" --debug-seccomp-violation-after-ms 1000 >"$tmp/console2" 2>"$tmp/err2" &
pid=$!
set +e; timeout 300 tail --pid=$pid -f /dev/null; wait $pid; rc=$?; set -e
cat "$tmp/err2"
grep -q "test hook: vCPU 0 opens a TCP socket" "$tmp/err2" || { echo "FAIL: the hook did not fire (exit $rc)"; exit 1; }
sig=$(( rc > 128 ? rc - 128 : 0 ))
echo "seccomp: violation hook: wait status $rc = 128 + signal $sig (SIG$(kill -l $sig 2>/dev/null || echo '?')) after $(( $(date +%s) - start )) s, $(grep -c tick "$tmp/console2" || true) guest console ticks"
[ "$rc" = $((128 + $(kill -l SYS))) ] || { echo "FAIL: kiln-vmm ended with $rc, want SIGSYS ($((128 + $(kill -l SYS))))"; exit 1; }
if grep -q "forbidden syscall returned" "$tmp/err2"; then echo "FAIL: the forbidden syscall ran"; exit 1; fi

# --- 3: --no-seccomp (debugging only): nothing filtered, the hook's syscall just runs -------------
"$vmm" --no-api --no-seccomp --config-file "$tmp/vm.json" --debug-seccomp-violation-after-ms 0 >"$tmp/console3" 2>"$tmp/err3" &
pid=$!
wait_for "$tmp/err3" "forbidden syscall returned" 240 $pid || { cat "$tmp/err3"; echo "FAIL: with --no-seccomp the hook's syscall should return"; exit 1; }
grep -l '^Seccomp:[[:space:]]*2$' /proc/$pid/task/*/status >/dev/null 2>&1 && { echo "FAIL: --no-seccomp still filtered a thread"; exit 1; }
kill -TERM $pid
set +e; wait $pid; rc=$?; set -e
[ $rc = 0 ] || { echo "FAIL: kiln-vmm --no-seccomp exited $rc after SIGTERM"; exit 1; }
echo "seccomp: --no-seccomp: no thread filtered, the hook's syscall returned, exit 0"
echo "seccomp: ok"
