#!/bin/sh
# Boot benchmark guest: report reaching /init, give the host time to sample the VMM's memory,
# then reboot.
echo "KILN-BENCH-INIT"
sleep 2
reboot -f
