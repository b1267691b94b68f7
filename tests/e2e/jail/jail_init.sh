#!/bin/sh
# Guest /init for the jail e2e: print the marker the e2e tests look for, then stay up until
# the host ends the VM (bounded, so a lost test never leaves a VM behind).
echo "KILN-GUEST-INIT-OK jailed"
sleep 600
reboot -f
