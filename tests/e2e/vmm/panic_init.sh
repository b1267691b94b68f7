#!/bin/sh
# Guest /init that exits: the kernel panics ("Attempted to kill init!") and reboots (panic=1).
echo "KILN-GUEST-INIT-OK about to exit"
exit 3
