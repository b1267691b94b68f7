#!/bin/sh
# Smoke guest's /init: prove the kernel reached user space, then end the VM.
echo "KILN-GUEST-INIT-OK $(cat /proc/version 2>/dev/null | cut -d' ' -f1-3)"
reboot -f
