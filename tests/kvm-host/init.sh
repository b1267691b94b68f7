#!/bin/busybox sh
# PID 1 of kiln's nested test host: loads KVM (AMD SVM) and 9p, mounts the machine's root
# read-only and the work tree read-write, then runs the requested command in a chroot of it.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.list); do
  for f in /modules/$m.ko; do [ -f "$f" ] && insmod "$f" 2>/dev/null; done
done
# A host has its loopback up (kilnd and the test services listen on 127.0.0.1); there is no
# other interface (-nic none): tests make their own networks.
ip link set lo up
work=; cmd=
for arg in $(cat /proc/cmdline); do
  case "$arg" in kiln.work=*) work=${arg#kiln.work=} ;; kiln.cmd=*) cmd=${arg#kiln.cmd=} ;; esac
done
fail() { echo "kiln-test-host: $*"; sync; reboot -f; }
[ -c /dev/kvm ] || fail "no /dev/kvm (kvm-amd did not load)"
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 hostroot /newroot || fail "9p root mount failed"
mount -t tmpfs -o mode=1777 tmp /newroot/tmp
mount -t tmpfs run /newroot/run
mount --move /dev /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
ln -sf /proc/self/fd /newroot/dev/fd
ln -sf /proc/self/fd/0 /newroot/dev/stdin
ln -sf /proc/self/fd/1 /newroot/dev/stdout
ln -sf /proc/self/fd/2 /newroot/dev/stderr
mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs shm /newroot/dev/shm
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup 2>/dev/null
mkdir -p "/newroot$work" 2>/dev/null  # needed when the work tree lives under /tmp (a tmpfs here)
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 work "/newroot$work" || fail "9p work mount failed"
# The kernel's symbols, once per test-host kernel (run caches them; Debian's System.map is a stub).
grep -q kiln.kallsyms=1 /newroot/proc/cmdline && cat /newroot/proc/kallsyms > "/newroot${cmd%/*}/kallsyms"
# Heartbeats for tests/kvm-host/run's stall watchdog, every 5 s: a counter on the second serial
# port (needs only this kernel's timers and scheduler) and one in the job folder (needs the 9p
# share as well), so a stall says which of the two stopped.
( n=0; while :; do n=$((n + 1)); echo $n > /newroot/dev/ttyS1; sleep 5; done ) &
( n=0; while :; do n=$((n + 1)); echo $n > "/newroot${cmd%/*}/beat"; sleep 5; done ) &
echo "kiln-test-host: up"
chroot /newroot /bin/bash "$cmd"
echo $? > "/newroot${cmd%/*}/rc"
sync
reboot -f
