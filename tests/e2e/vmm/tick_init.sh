#!/bin/sh
# Guest /init for the snapshot e2e: count forever, so a restored VM visibly continues.
mount -t proc proc /proc
i=0
while true; do
  i=$((i + 1))
  echo "tick $i"
  usleep 200000
done
