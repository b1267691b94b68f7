#!/bin/sh
# Network benchmark guest (net_bench.sh): configures eth0 statically, waits until the service
# (10.0.2.1) answers, sends netbench.size bytes to its iperf3 server, then idles so the host can
# ping it and sample the VMM (the host ends it).
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
idle() { echo "$1"; sleep 900; reboot -f; }
ip link set lo up
ip addr add 10.0.2.2/24 dev eth0 || idle "NETBENCH-FAIL no eth0"
ip link set eth0 up
size=16M
for w in $(cat /proc/cmdline); do case "$w" in netbench.size=*) size=${w#*=} ;; esac; done
i=0
until ping -c 1 -W 1 10.0.2.1 >/dev/null 2>&1; do
  i=$((i + 1))
  [ $i -lt 60 ] || idle "NETBENCH-FAIL the service 10.0.2.1 does not answer"
done
echo "NETBENCH-READY"
if iperf3 -c 10.0.2.1 -n "$size" --connect-timeout 10000 >/tmp/iperf.txt 2>&1; then
  echo "NETBENCH-SENDER $(grep sender /tmp/iperf.txt)"  # its Retr column: TCP retransmits
  idle "NETBENCH-IPERF-DONE"
fi
tail -n 5 /tmp/iperf.txt
idle "NETBENCH-FAIL iperf3"
