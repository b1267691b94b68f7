# Sourced by the VMM benchmarks (tests/bench/vmm, tests/bench/net): a VMM's resident memory
# split into guest RAM and everything else, from /proc/PID/smaps.
#   vmm_rss_kib PID GUEST_MIB -> "OTHER_KIB GUEST_KIB" (guest RAM: the mapping GUEST_MIB in size)
vmm_rss_kib() {
  local pid=$1 mem_mib=$2 other=0 guest=0 is_guest=0 a b
  [ -r "/proc/$pid/smaps" ] || return 1
  while read -r a b _; do
    if [[ "$a" =~ ^([0-9a-f]+)-([0-9a-f]+)$ ]]; then
      is_guest=$(( (16#${BASH_REMATCH[2]} - 16#${BASH_REMATCH[1]}) == mem_mib * 1048576 ))
    elif [ "$a" = Rss: ]; then
      if [ $is_guest = 1 ]; then guest=$((guest + b)); else other=$((other + b)); fi
    fi
  done <"/proc/$pid/smaps" 2>/dev/null || return 1
  echo "$other $guest"
}
