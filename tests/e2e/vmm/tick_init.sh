#!/bin/sh
# Guest /init for the snapshot e2e: count forever, so a restored VM visibly continues; each tick
# carries the guest's uptime (CLOCK_BOOTTIME, kvmclock), so a clock jump across a restore shows,
# and how many interrupts its IRQ 0 line (the PIT) has taken, so a burst of timer ticks shows.
mount -t proc proc /proc
mount -t sysfs sysfs /sys 2>/dev/null
read -r cs </sys/devices/system/clocksource/clocksource0/current_clocksource && echo "clocksource $cs"
read -r ce </sys/devices/system/clockevents/clockevent0/current_device 2>/dev/null && echo "clockevent $ce"
irq0() {  # the IRQ 0 line's count, summed over the CPUs
  while read -r line; do
    case "$line" in
      0:*) set -- $line; shift; n=0
           while [ $# -gt 0 ] && [ "$1" -eq "$1" ] 2>/dev/null; do n=$((n + $1)); shift; done
           echo "$n"; return ;;
    esac
  done </proc/interrupts
  echo 0
}
i=0
while true; do
  i=$((i + 1))
  read -r up _ </proc/uptime
  echo "tick $i up $up irq0 $(irq0)"
  usleep 200000
done
