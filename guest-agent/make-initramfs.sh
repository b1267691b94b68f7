#!/bin/sh
# Writes kiln-init's initramfs: an uncompressed "newc" cpio archive (the format the kernel
# unpacks, Documentation/driver-api/early-userspace/buffer-format.rst) holding /init (the
# stripped static kiln-init), /dev/console (char 5:1, so init has a console from the start)
# and the empty mount points. Written by hand so no root (mknod) is needed; deterministic.
# usage: make-initramfs.sh KILN_INIT OUT
set -eu
src=$1
out=$2
tmp="$out.tmp"
bin="$out.init"
objcopy --strip-all "$src" "$bin"
: > "$tmp"
ino=1

# entry NAME MODE(octal) SIZE RDEVMAJOR RDEVMINOR [DATAFILE]
entry() {
  name=$1 mode=$2 size=$3 rmaj=$4 rmin=$5 data=${6:-}
  namesize=$(( ${#name} + 1 ))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$ino" "$(( 0$mode ))" 0 0 1 0 "$size" 0 0 "$rmaj" "$rmin" "$namesize" 0 >> "$tmp"
  printf '%s\0' "$name" >> "$tmp"
  pad=$(( (4 - (110 + namesize) % 4) % 4 ))
  [ "$pad" -eq 0 ] || head -c "$pad" /dev/zero >> "$tmp"
  if [ -n "$data" ]; then
    cat "$data" >> "$tmp"
    pad=$(( (4 - size % 4) % 4 ))
    [ "$pad" -eq 0 ] || head -c "$pad" /dev/zero >> "$tmp"
  fi
  ino=$(( ino + 1 ))
}

for d in dev proc sys mnt tmp; do
  entry "$d" 040755 0 0 0
done
entry dev/console 020600 0 5 1
entry init 0100755 "$(stat -c %s "$bin")" 0 0 "$bin"
ino=0
entry TRAILER!!! 0 0 0 0
# The kernel accepts an archive padded to any length; pad to 512 like cpio(1) does.
size=$(stat -c %s "$tmp")
pad=$(( (512 - size % 512) % 512 ))
[ "$pad" -eq 0 ] || head -c "$pad" /dev/zero >> "$tmp"
rm -f "$bin"
mv "$tmp" "$out"
