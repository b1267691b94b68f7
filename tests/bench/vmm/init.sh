#!/bin/sh
# Boot benchmark guest: report reaching /init, then reboot. With kiln.hold on the command line
# it stays up so the host can sample the VMM's memory (the host then ends it).
echo "KILN-BENCH-INIT"
mount -t proc proc /proc
case "$(cat /proc/cmdline)" in *kiln.hold*) sleep 600 ;; esac
reboot -f
