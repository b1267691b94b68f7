#!/bin/sh
# Guest /init for kiln-vmm's device e2e: read a file from the ext4 drive, talk vsock both ways.
mount -t proc proc /proc
mount -t devtmpfs dev /dev
mkdir -p /mnt
mount -t ext4 -o ro /dev/vda /mnt && echo "drive says: $(cat /mnt/hello.txt)"
echo "rng: $(head -c 16 /dev/hwrng 2>/dev/null | od -An -tx1 | tr -d ' \n')"
/bin/vsock-peer serve 5000 &
/bin/vsock-peer connect 6000 "guest-hello"
wait
echo "guest: done"
reboot -f
