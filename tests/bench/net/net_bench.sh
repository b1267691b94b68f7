#!/usr/bin/env bash
# Benchmark (issue 17): kiln-vmm's virtio-net against QEMU `-M microvm` with virtio-net-device
# (virtio-mmio, vhost=off: both user-space device models), same kernel, initramfs, 1 vCPU and
# memory, on a TAP in a network namespace of its own. Per run: a bounded TCP transfer guest ->
# service (iperf3 -c -n SIZE; the server's received rate) and ping RTTs service -> guest; runs
# interleaved; prints medians, p50/p99 and the ratios, and kiln-vmm's RSS outside guest RAM
# while traffic flows and right after, and KVM's exit and interrupt counts per MiB sent (see
# README.md). Where /dev/vhost-net exists, QEMU with vhost=on (the kernel's data path) is run
# too, for reference. Needs a KVM that runs Linux:
#   tests/kvm-host/run --smp 1 --work REPO -- tests/bench/net/net_bench.sh [RUNS=3] [SIZE=256M]
# KILN_NET_BENCH_PINGS sets the pings per run (default 200).
set -euo pipefail
# Everything (TAP, addresses, iperf3 server) lives in a private network namespace: nothing
# outside it is touched and it vanishes with the bench.
if [ -z "${KILN_NET_BENCH_NETNS:-}" ]; then
  exec unshare --net env KILN_NET_BENCH_NETNS=1 "$0" "$@"
fi
src=$(cd "$(dirname "$0")/../../.." && pwd)
build=${KILN_BUILD_DIR:-$src/build}
runs=${1:-3} size=${2:-256M} pings=${KILN_NET_BENCH_PINGS:-200}
kernel=$(readlink -f "${KILN_GUEST_KERNEL:-$build/guest-kernel/vmlinux}")
vmm=$build/vmm/kiln-vmm
iperf=$(command -v iperf3) || { echo "iperf3 missing: install it (scripts/setup)" >&2; exit 1; }
for f in "$kernel" "$vmm"; do [ -e "$f" ] || { echo "$f missing (ninja -C $build kiln-vmm guest-kernel)" >&2; exit 1; }; done
source "$src/tests/bench/lib/vmm_rss.sh"
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
mem_mib=256 tap=nb0 host_ip=10.0.2.1 guest_ip=10.0.2.2 guest_mac=06:00:0a:00:02:02
run_deadline_s=900  # one run: boot, transfer, pings

# The guest's iperf3 is Debian's, dynamically linked: the binary, exactly the libraries ldd
# lists, and the loader, at their host paths.
extra=("$iperf:/bin/iperf3")
while read -r lib; do extra+=("$lib:$lib"); done < <(ldd "$iperf" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
"$src/tests/e2e/lib/make-initramfs" "$tmp/initrd.cpio" "$src/tests/bench/net/init.sh" "${extra[@]}"
args="console=ttyS0 reboot=k panic=1 quiet netbench.size=$size"
cat >"$tmp/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$kernel", "initrd_path": "$tmp/initrd.cpio", "boot_args": "$args"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": $mem_mib},
 "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "$tap", "guest_mac": "$guest_mac"}]}
JSON

ip link set lo up
ip tuntap add "$tap" mode tap
ip addr add $host_ip/24 dev "$tap"
ip link set "$tap" up

# KVM's counters of a VMM's VM (debugfs /sys/kernel/debug/kvm/<tid>-<fd>, named after the thread
# that created it; vCPU counters summed): the exits and interrupts a transfer costs the guest.
[ -d /sys/kernel/debug/kvm ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
kvm_stats() {  # kvm_stats PID -> "EXITS IRQ_INJECTIONS MMIO_EXITS (to user space)"
  local t d e=0 i=0 u=0
  for t in /proc/$1/task/*; do
    for d in /sys/kernel/debug/kvm/"${t##*/}"-*; do
      [ -r "$d/exits" ] || continue
      e=$((e + $(cat "$d/exits"))) i=$((i + $(cat "$d/irq_injections"))) u=$((u + $(cat "$d/mmio_exits")))
    done
  done
  echo "$e $i $u"
}

wait_console() {  # wait_console PATTERN PID DEADLINE [rss_samples_file]: 0 once PATTERN is on the console
  while [ "$(date +%s)" -lt "$3" ]; do
    grep -q "$1" "$tmp/console" 2>/dev/null && return 0
    grep -q NETBENCH-FAIL "$tmp/console" 2>/dev/null && return 1
    kill -0 "$2" 2>/dev/null || return 1
    if [ -n "${4:-}" ]; then vmm_rss_kib "$2" $mem_mib >>"$4" || true; sleep 1; else sleep 0.1; fi
  done
  return 1
}

# One run: boot KIND, receive its transfer, ping it; appends to $tmp/KIND.{mbps,rtt}, and for
# kiln-vmm its RSS samples (during the transfer and after the pings) to $tmp/kiln.rss.
run_once() {  # run_once kiln|qemu|vhost
  local kind=$1 pid srv rss= vhost=off
  local deadline=$(( $(date +%s) + run_deadline_s ))
  : >"$tmp/console"
  # Its own job (no wrapper), so the kills below and the exit trap reach it; a stalled transfer
  # ends it after --rcv-timeout, the run's deadline otherwise.
  "$iperf" -s -1 -J -B $host_ip --rcv-timeout 60000 >"$tmp/server.json" 2>&1 &
  srv=$!
  until ss -Hltn "sport = :5201" | grep -q .; do
    kill -0 $srv 2>/dev/null && [ "$(date +%s)" -lt $deadline ] || { echo "iperf3 server did not start" >&2; return 1; }
    sleep 0.05
  done
  if [ "$kind" = kiln ]; then
    rss=$tmp/kiln.rss
    "$vmm" --no-api --config-file "$tmp/vm.json" >"$tmp/console" 2>&1 &
  else
    [ "$kind" = qemu ] || vhost=on
    # acpi=off: the guest kernel has no ACPI, and without it microvm announces its virtio-mmio
    # devices on the kernel command line, as kiln-vmm does.
    qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off,acpi=off -enable-kvm -cpu host -m ${mem_mib}M -smp 1 \
      -nodefaults -no-user-config -display none -serial file:"$tmp/console" -no-reboot \
      -kernel "$kernel" -initrd "$tmp/initrd.cpio" -append "${args/reboot=k/reboot=t}" \
      -netdev tap,id=n0,ifname=$tap,script=no,downscript=no,vhost=$vhost \
      -device virtio-net-device,netdev=n0,mac=$guest_mac </dev/null >/dev/null 2>&1 &
  fi
  pid=$!
  local before after
  if ! wait_console NETBENCH-READY $pid $deadline || ! before=$(kvm_stats $pid) ||
     ! wait_console NETBENCH-IPERF-DONE $pid $deadline "$rss"; then
    echo "run failed ($kind):" >&2; tail -n 20 "$tmp/console" >&2
    kill -9 $pid $srv 2>/dev/null || true; wait $pid $srv 2>/dev/null || true
    return 1
  fi
  after=$(kvm_stats $pid)
  echo "$before $after" | awk '{print $4 - $1, $5 - $2, $6 - $3}' >>"$tmp/$kind.kvm"
  # The server ends after its one test.
  while kill -0 $srv 2>/dev/null && [ "$(date +%s)" -lt $deadline ]; do sleep 0.1; done
  kill -9 $srv 2>/dev/null || true
  wait $srv 2>/dev/null || true
  jq -e '.end.sum_received.bits_per_second / 1e6' "$tmp/server.json" >>"$tmp/$kind.mbps" ||
    { echo "no iperf3 result ($kind):" >&2; head -c 2000 "$tmp/server.json" >&2; kill -9 $pid; return 1; }
  sed -n 's/^NETBENCH-SENDER .* \([0-9][0-9]*\) *sender.*/\1/p' "$tmp/console" >>"$tmp/$kind.retr"
  # Request/response: ICMP echo service -> guest (one warm-up first), RTTs as ping prints them.
  busybox ping -c 1 -W 5 $guest_ip >/dev/null || true
  local n0 n1 pings_before pings_after
  n0=$(wc -l <"$tmp/$kind.rtt")
  pings_before=$(kvm_stats $pid)
  busybox ping -c "$pings" -i 0.02 -W 5 -w 120 $guest_ip | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' >>"$tmp/$kind.rtt" || true
  pings_after=$(kvm_stats $pid)
  n1=$(wc -l <"$tmp/$kind.rtt")
  # What one RTT costs the guest: KVM exits, those served in the VMM's user space (MMIO), interrupts.
  [ "$n1" -le "$n0" ] || echo "$pings_before $pings_after" |
    awk -v n=$((n1 - n0)) '{print ($4 - $1) / n, ($6 - $3) / n, ($5 - $2) / n}' >>"$tmp/$kind.pkvm"
  [ -z "$rss" ] || vmm_rss_kib $pid $mem_mib >>"$rss" || true
  kill $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  printf '%s %.0f Mbit/s (%s retransmits); ' "$kind" "$(tail -n 1 "$tmp/$kind.mbps")" "$(tail -n 1 "$tmp/$kind.retr")" >&2
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
pct() { sort -g | awk -v q="$1" '{a[NR]=$1} END {i = int(q * NR); if (i < q * NR) i++; if (i < 1) i = 1; print a[i]}'; }

kinds="kiln qemu"
if [ -c /dev/vhost-net ]; then kinds="$kinds vhost"; else echo "no /dev/vhost-net: QEMU with vhost=on not run" >&2; fi
for k in $kinds; do : >"$tmp/$k.mbps"; : >"$tmp/$k.rtt"; : >"$tmp/$k.retr"; : >"$tmp/$k.kvm"; : >"$tmp/$k.pkvm"; done
: >"$tmp/kiln.rss"
for i in $(seq 1 "$runs"); do
  printf 'run %s/%s: ' "$i" "$runs" >&2
  for k in $kinds; do run_once $k; done
  echo >&2
done

declare -A name=([kiln]=kiln-vmm [qemu]="qemu vhost=off" [vhost]="qemu vhost=on")
row() {  # row LABEL FORMAT TARGET FIGURE_CMD...: one table row, FIGURE_CMD run on each KIND's file
  local label=$1 format=$2 target=$3 k line
  local -A v
  shift 3
  line=$(printf '| %-42s' "$label")
  for k in $kinds; do v[$k]=$("$@" "$k"); line+=$(printf " | %14.${format}f" "${v[$k]}"); done
  line+=$(awk -v a="${v[kiln]}" -v b="${v[qemu]}" 'BEGIN { printf " | %9.2f", a / b }')
  printf '%s | %6s |\n' "$line" "$target"
}
tput_med() { median <"$tmp/$1.mbps"; }
rtt_p50() { pct 0.50 <"$tmp/$1.rtt"; }
rtt_p99() { pct 0.99 <"$tmp/$1.rtt"; }
mib=$(numfmt --from=iec "$size" | awk '{print $1 / 1048576}')
exits_mib() { awk -v m="$mib" '{print $1 / m}' "$tmp/$1.kvm" | median; }
irqs_mib() { awk -v m="$mib" '{print $2 / m}' "$tmp/$1.kvm" | median; }
ping_cost() { awk -v c="$1" '{print $c}' "$tmp/$2.pkvm" | median; }  # ping_cost COLUMN KIND
fmt() { awk '{printf "%s%.0f", (NR > 1 ? " " : ""), $1}' "$tmp/$1.mbps"; }

echo
for k in $kinds; do
  echo "${name[$k]}: TCP guest -> service, $size each (Mbit/s) [$(fmt $k)], TCP retransmits [$(paste -sd' ' "$tmp/$k.retr")]; $(wc -l <"$tmp/$k.rtt") ping RTTs"
done
header=$(printf '| %-42s' figure); rule='|--------------------------------------------'
for k in $kinds; do header+=$(printf ' | %14s' "${name[$k]}"); rule+='|----------------'; done
echo "$header | kiln/qemu | target |"
echo "$rule|-----------|--------|"
row "TCP throughput, median of $runs (Mbit/s)" 0 '>= 1.0' tput_med
row "ping RTT p50 (ms)" 3 '<= 1.0' rtt_p50
row "ping RTT p99 (ms)" 3 '<= 1.0' rtt_p99
row "KVM exits per MiB sent, median" 0 '' exits_mib
row "interrupts injected per MiB sent, median" 0 '' irqs_mib
row "KVM exits per ping RTT, median of runs" 1 '' ping_cost 1
row "  of which user-space MMIO exits" 1 '' ping_cost 2
row "interrupts injected per ping RTT" 1 '' ping_cost 3
read -r rss_other rss_guest < <(sort -n "$tmp/kiln.rss" | tail -n 1) || rss_other=0 rss_guest=0
awk -v o="$rss_other" -v g="$rss_guest" -v n="$(wc -l <"$tmp/kiln.rss")" 'BEGIN { printf "kiln-vmm RSS excluding guest RAM, largest of %d samples (each second of the transfers, and after the pings): %.2f MiB (guest RAM resident: %.1f MiB; target <= 5 MiB)\n", n, o / 1024, g / 1024 }'
