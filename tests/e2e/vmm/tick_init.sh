#!/bin/sh
# Guest /init for the snapshot e2e: count forever, so a restored VM visibly continues; each tick
# carries the guest's uptime (CLOCK_BOOTTIME, kvmclock), so a clock jump across a restore shows.
mount -t proc proc /proc
mount -t sysfs sysfs /sys 2>/dev/null
read -r cs </sys/devices/system/clocksource/clocksource0/current_clocksource && echo "clocksource $cs"
i=0
while true; do
  i=$((i + 1))
  read -r up _ </proc/uptime
  echo "tick $i up $up"
  usleep 200000
done
