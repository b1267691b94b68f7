#!/bin/sh
# Guest /init for kiln-vmm's virtio-net e2e (net_test.sh): shows what the device announced
# (MAC, MTU), configures eth0 statically, serves a random file over HTTP, fetches the host's
# file, pings the host, then polls the host's server until the test publishes /stop (also
# after a snapshot restore) and reboots.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "guest eth0: mac $(cat /sys/class/net/eth0/address) mtu $(cat /sys/class/net/eth0/mtu)"
ip link set lo up
ip addr add 10.0.2.2/24 dev eth0
ip link set eth0 up
mkdir -p /www
head -c 4194304 /dev/urandom >/www/big
echo "guest big md5: $(md5sum /www/big | cut -d' ' -f1)"
httpd -p 8080 -h /www
if wget -q -O /tmp/got http://10.0.2.1:8080/big; then
  echo "guest fetched md5: $(md5sum /tmp/got | cut -d' ' -f1)"
else
  echo "guest fetch failed"
fi
ping -c 2 -W 5 10.0.2.1 >/dev/null && echo "guest ping: ok" || echo "guest ping: failed"
echo "guest: net ready"
until wget -q -O /dev/null http://10.0.2.1:8080/stop 2>/dev/null; do sleep 1; done
echo "guest: stopping"
reboot -f
