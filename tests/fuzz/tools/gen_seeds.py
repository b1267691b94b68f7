#!/usr/bin/env python3
# Writes the hand-made seed corpus (tests/fuzz/corpus/<target>/seed-*) in the input formats
# documented at the top of each fuzz target. Re-run after changing a format; crash inputs
# found by fuzzing live next to the seeds (crash-*) and are never touched here.
import io
import json
import os
import struct
import sys
import tarfile
import gzip

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")

# Queue layout shared with tests/fuzz/support/fuzz_guest_memory.h.
DESC, AVAIL, USED, QSIZE = 0x0000, 0x0400, 0x0800, 16
NEXT, WRITE, INDIRECT = 1, 2, 4


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


class Ram:
    """Guest RAM image starting at guest address 0 (regions are filled in address order)."""

    def __init__(self, size=0x1800):
        self.b = bytearray(size)

    def put(self, addr, data):
        if addr + len(data) > len(self.b):
            self.b.extend(bytes(addr + len(data) - len(self.b)))
        self.b[addr:addr + len(data)] = data

    def desc(self, i, addr, length, flags, nxt, table=DESC):
        self.put(table + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))

    def avail(self, heads, flags=0):
        self.put(AVAIL, struct.pack("<HH", flags, len(heads)))
        for i, h in enumerate(heads):
            self.put(AVAIL + 4 + 2 * i, struct.pack("<H", h))


def queue_regs(flags=0, pops=8, size=QSIZE, head=0, next_avail=0, desc=DESC, avail=AVAIL, used=USED):
    return struct.pack("<BBHHHIII", flags, pops, size, head, next_avail, desc, avail, used)


def virtio_queue():
    r = Ram()
    r.desc(0, 0x1000, 16, NEXT, 1)
    r.desc(1, 0x1010, 512, NEXT | WRITE, 2)
    r.desc(2, 0x1210, 1, WRITE, 0)
    r.avail([0])
    write("virtio_queue", "simple-chain", queue_regs() + r.b)
    # Indirect table at 0x0c00 with three entries.
    r = Ram()
    r.desc(0, 0x0c00, 48, INDIRECT, 0)
    r.desc(0, 0x1000, 16, NEXT, 1, table=0x0c00)
    r.desc(1, 0x1010, 64, NEXT, 2, table=0x0c00)
    r.desc(2, 0x1100, 64, WRITE, 0, table=0x0c00)
    r.avail([0])
    write("virtio_queue", "indirect", queue_regs(flags=1) + r.b)
    # A buffer straddling the two adjacent regions, and one in the hole.
    r = Ram()
    r.desc(0, 0x7ff0, 0x20, NEXT, 1)
    r.desc(1, 0x10000, 8, WRITE, 0)
    r.desc(2, 0x20ff8, 8, WRITE, 0)
    r.avail([0, 2])
    write("virtio_queue", "cross-region", queue_regs() + r.b)
    # A loop (0 -> 1 -> 0) and a next index out of range.
    r = Ram()
    r.desc(0, 0x1000, 8, NEXT, 1)
    r.desc(1, 0x1008, 8, NEXT, 0)
    r.desc(2, 0x1000, 8, NEXT, 99)
    r.avail([0, 2, 1])
    write("virtio_queue", "loop", queue_regs() + r.b)
    # Five independent chains, interrupt suppression set, positions restored mid-ring.
    r = Ram()
    for i in range(5):
        r.desc(i, 0x1000 + 0x40 * i, 0x40, WRITE if i % 2 else 0, 0)
    r.avail([4, 3, 2, 1, 0], flags=1)
    write("virtio_queue", "many", queue_regs(flags=4, next_avail=0) + r.b)
    # Registers near the top of the address space.
    write("virtio_queue", "high", queue_regs(flags=2, desc=0xfffff000) + Ram().b)


def blk_request(rtype, sector, data_len=512, data_write=True, nseg=1, indirect=False):
    r = Ram()
    r.put(0x1000, struct.pack("<IIQ", rtype, 0, sector))
    r.put(0x1100, bytes(range(256)) * 2)
    table = 0x0c00 if indirect else DESC
    r.desc(0, 0x1000, 16, NEXT, 1, table=table)
    seg = data_len // nseg if nseg else 0
    for s in range(nseg):
        r.desc(1 + s, 0x1100 + s * seg, seg, NEXT | (WRITE if data_write else 0), 2 + s, table=table)
    r.desc(1 + nseg, 0x1500, 1, WRITE, 0, table=table)
    if indirect:
        r.desc(0, 0x0c00, 16 * (nseg + 2), INDIRECT, 0)
    r.avail([0])
    return r.b


def virtio_blk():
    rng = struct.pack("<QQQ", 3, 1024, 64)
    write("virtio_blk", "in", b"\x00" + rng + blk_request(0, 0))
    write("virtio_blk", "out-rw", b"\x01" + rng + blk_request(1, 1, data_write=False))
    write("virtio_blk", "out-ro", b"\x00" + rng + blk_request(1, 1, data_write=False))
    write("virtio_blk", "flush", b"\x01" + rng + blk_request(4, 0, nseg=0))
    write("virtio_blk", "get-id", b"\x00" + rng + blk_request(8, 0, data_len=20))
    write("virtio_blk", "bad-type", b"\x00" + rng + blk_request(77, 0))
    write("virtio_blk", "past-end", b"\x00" + struct.pack("<QQQ", 2**64 - 1, 512, 10) + blk_request(0, 63, data_len=1024, nseg=2))
    write("virtio_blk", "indirect-segs", b"\x03" + rng + blk_request(0, 4, data_len=1024, nseg=4, indirect=True))


def net_hdr(flags=0, gso=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0, nbuf=0):
    return struct.pack("<BBHHHHH", flags, gso, hdr_len, gso_size, csum_start, csum_offset, nbuf)


def virtio_net():
    # features (u16) bits: csum, guest_csum, guest_tso4, host_tso4, host_tso6, host_ufo, mrg_rxbuf, indirect, event_idx
    def seed(name, features, pure_hdr, frames, ram):
        pure = pure_hdr + struct.pack("<I", 60) + b"\x01" + struct.pack("<HHHHI", 1526, 1526, 0, 64, 3000)
        host = bytes([len(frames)]) + b"".join(struct.pack("<H", len(f)) + f for f in frames)
        write("virtio_net", name, struct.pack("<H", features) + pure + host + ram)

    eth = bytes.fromhex("ffffffffffff060000000001" "0800") + bytes(46)
    # Transmit: header and frame in two readable descriptors.
    r = Ram(0x1200)
    r.put(0x1000, net_hdr())
    r.put(0x1010, eth)
    r.desc(0, 0x1000, 12, NEXT, 1)
    r.desc(1, 0x1010, len(eth), 0, 0)
    r.avail([0])
    seed("tx-plain", 0x00, net_hdr(), [], r.b)
    seed("tx-event-idx", 0x100, net_hdr(), [], r.b)
    # Transmit with TCP segmentation offload negotiated.
    r = Ram(0x1200)
    r.put(0x1000, net_hdr(1, 1, 54, 1448, 34, 16) + eth)
    r.desc(0, 0x1000, 12 + len(eth), 0, 0)
    r.avail([0])
    seed("tx-gso", 0x09, net_hdr(1, 1, 54, 1448, 34, 16), [], r.b)
    # Hostile header flags and a chain that loops.
    r = Ram(0x1200)
    r.put(0x1000, net_hdr(0xff, 0x80) + eth)
    r.desc(0, 0x1000, 12 + len(eth), NEXT, 1)
    r.desc(1, 0x1000, 12, NEXT, 0)
    r.avail([0, 1])
    seed("tx-hostile", 0xff, net_hdr(0xff, 0x80, 0xffff, 0, 0xffff, 0xffff), [], r.b)
    # Receive: host frames into mergeable writable buffers.
    r = Ram(0x1800)
    r.desc(0, 0x1000, 0x100, WRITE, 0)
    r.desc(1, 0x1100, 0x400, WRITE, 0)
    r.desc(2, 0x1500, 8, WRITE, 0)
    r.avail([0, 1, 2])
    seed("rx-mergeable", 0x40, net_hdr(), [net_hdr() + eth, net_hdr() + eth * 20, b"runt"], r.b)
    seed("rx-single", 0x00, net_hdr(), [net_hdr() + eth * 30], r.b)
    seed("rx-event-idx", 0x140, net_hdr(), [net_hdr() + eth, net_hdr() + eth * 20], r.b)


def vsock_hdr(src_cid, dst_cid, src_port, dst_port, length, op, flags=0, buf_alloc=65536, fwd_cnt=0, typ=1):
    return struct.pack("<QQIIIHHIII", src_cid, dst_cid, src_port, dst_port, length, typ, op, flags, buf_alloc, fwd_cnt)


def vsock():
    head = vsock_hdr(3, 2, 1024, 9000, 0, 1)
    line = b"CONNECT 9000\n"
    pre = head + bytes([len(line)]) + line

    def g(op, length=0, flags=0, buf_alloc=65536, fwd=0, payload=b""):
        return b"\x00" + struct.pack("<BHBII", op, length, flags, buf_alloc, fwd) + payload

    rx = lambda mx=2048: b"\x01" + struct.pack("<H", mx)
    host = lambda n: b"\x02" + struct.pack("<H", n)
    written = lambda n: b"\x05" + struct.pack("<H", n)
    # Host-initiated: REQUEST out, RESPONSE in, data both ways, credit, shutdown.
    setup = struct.pack("<HHBII", 4000, 4000, 1, 1025, 9000)
    ops = (rx() + g(2) + host(100) + rx(64) + rx() + g(5, 10, payload=b"0123456789") + written(200)
           + g(7) + rx() + g(6, fwd=100) + g(4, flags=3) + b"\x06" + b"\x03" + rx() + rx())
    write("vsock", "host-initiated", pre + setup + ops)
    # Guest-initiated: RESPONSE out, host EOF, guest RST.
    setup = struct.pack("<HHBII", 100, 100, 0, 9000, 1024) + struct.pack("<II", 65536, 0)
    ops = rx() + host(300) + rx(10) + b"\x07" + g(5, 200, payload=bytes(200)) + written(50) + b"\x03" + rx() + g(3)
    write("vsock", "guest-initiated", pre + setup + ops)
    # Guest overruns its credit; then a host error.
    setup = struct.pack("<HHBII", 16, 16, 0, 9000, 1024) + struct.pack("<II", 0, 0)
    ops = rx() + g(5, 500, payload=bytes(500)) + rx() + b"\x04\x00"
    write("vsock", "overrun", pre + setup + ops)
    write("vsock", "connect-lines", vsock_hdr(3, 2, 1, 2, 99999, 9, typ=2) + b"\x0bconnect 1\r\n")


def mmio_op(kind, offset, value, width=4):
    widx = {1: 0, 2: 1, 4: 2, 8: 3}[width]
    return struct.pack("<BBHI", kind | (widx << 2), 0, offset, value)


def mmio_init(features_hi=1, features_lo=0, notify=True):
    R, W, N, S = 0, 1, 2, 3
    ops = [mmio_op(R, 0x000, 0), mmio_op(R, 0x004, 0), mmio_op(R, 0x008, 0),
           mmio_op(W, 0x070, 0), mmio_op(W, 0x070, 1), mmio_op(W, 0x070, 3),
           mmio_op(W, 0x014, 1), mmio_op(R, 0x010, 0), mmio_op(W, 0x014, 0), mmio_op(R, 0x010, 0),
           mmio_op(W, 0x024, 1), mmio_op(W, 0x020, features_hi),
           mmio_op(W, 0x024, 0), mmio_op(W, 0x020, features_lo),
           mmio_op(W, 0x070, 11), mmio_op(R, 0x070, 0),
           mmio_op(W, 0x030, 0), mmio_op(R, 0x034, 0), mmio_op(W, 0x038, QSIZE),
           mmio_op(W, 0x080, DESC), mmio_op(W, 0x084, 0), mmio_op(W, 0x090, AVAIL), mmio_op(W, 0x094, 0),
           mmio_op(W, 0x0a0, USED), mmio_op(W, 0x0a4, 0), mmio_op(W, 0x044, 1),
           mmio_op(W, 0x070, 15)]
    if notify:
        ops += [mmio_op(W, 0x050, 0), mmio_op(R, 0x060, 0), mmio_op(W, 0x064, 1), mmio_op(N, 0, 0)]
    ops += [mmio_op(R, 0x100, 0, 8), mmio_op(R, 0x10c, 0, 4), mmio_op(R, 0x0fc, 0), mmio_op(R, 0x101, 0, 1)]
    return ops


def virtio_mmio():
    def seed(which, ops, ram):
        return bytes([which]) + struct.pack("<H", len(ops)) + b"".join(ops) + ram

    rng_ram = Ram()
    rng_ram.desc(0, 0x1000, 64, WRITE, 0)
    rng_ram.avail([0])
    write("virtio_mmio", "rng-init", seed(0, mmio_init(), rng_ram.b))
    snap = mmio_init() + [mmio_op(3, 0, 0), mmio_op(0, 0x070, 0), mmio_op(2, 0, 0)]
    write("virtio_mmio", "rng-snapshot", seed(0, snap, rng_ram.b))
    reset = mmio_init() + [mmio_op(1, 0x070, 0), mmio_op(0, 0x070, 0)] + mmio_init(notify=False)
    write("virtio_mmio", "rng-reset", seed(0, reset, rng_ram.b))
    bad = mmio_init(features_hi=0xffffffff, features_lo=0xffffffff) + [mmio_op(1, 0x038, 3), mmio_op(1, 0x002, 7, 2)]
    write("virtio_mmio", "rng-bad-values", seed(0, bad, rng_ram.b))
    write("virtio_mmio", "blk-init", seed(1, mmio_init(features_lo=1 << 28), blk_request(0, 2)))
    write("virtio_mmio", "blk-snapshot", seed(1, mmio_init() + [mmio_op(3, 0, 0), mmio_op(2, 0, 0)], blk_request(8, 0, 20)))


def record(entries):
    out = b""
    for k, v in entries:
        k = k.encode()
        v = v if isinstance(v, bytes) else str(v).encode()
        out += bytes([len(k)]) + k + struct.pack("<I", len(v)) + v
    return out


def frame(ftype, payload):
    return b"KF\x01" + bytes([ftype]) + struct.pack("<I", len(payload)) + payload


def agent_protocol():
    spec = record([("arg", "/bin/server"), ("arg", "--port=9000"), ("env", "PATH=/usr/bin"),
                   ("cwd", "/srv"), ("user", "1000:1000"), ("hostname", "fn"), ("instance_id", "i-1"),
                   ("port", 9000), ("ready_timeout_ms", 5000), ("wall_clock_ns", 1700000000000000000)])
    write("agent_protocol", "launch-spec-frame", b"\x00" + frame(1, spec))
    write("agent_protocol", "launch-spec-payload", b"\x07" + spec)
    net_spec = spec + record([("net_mac", "02:fc:00:00:00:01"), ("net_address", "10.0.0.2/30"), ("net_gateway", "10.0.0.1"),
                              ("net_address6", "fd00::2/64"), ("net_gateway6", "fe80::1"), ("net_mtu", 1500),
                              ("net_dns", "10.0.0.1"), ("net_dns", "2001:db8::53"), ("net_search", "svc.internal"),
                              ("net_hosts", "10.1.2.3 db db.internal")])
    write("agent_protocol", "launch-spec-network", b"\x03" + net_spec)
    events = (frame(16, record([("seq", 1), ("version", "0.1"), ("boot_id", "b"), ("instance_id", "i"), ("state", "starting")]))
              + frame(17, record([("seq", 2), ("port", 9000), ("elapsed_ms", 12)]))
              + frame(19, record([("seq", 3), ("ts", 123), ("stream", "stderr"), ("data", b"hello\x00world"), ("partial", "1"),
                                  ("request", "2f7c-req")]))
              + frame(20, record([("seq", 4), ("pid", 7), ("signal", 9)]))
              + frame(21, record([("seq", 5), ("count", 3)]))
              + frame(18, record([("seq", 6), ("port", 9000), ("waited_ms", 10000), ("message", "not ready")])))
    write("agent_protocol", "event-stream", b"\x02" + events)
    control = (frame(2, b"") + frame(3, record([("hostname", "h"), ("instance_id", "x"), ("wall_clock_ns", 5)]))
               + frame(4, record([("grace_ms", 100)])) + frame(5, record([("ok", "0"), ("message", "bad")]))
               + frame(6, record([("state", "running"), ("pid", 1), ("ready", "1"), ("exited", "1"), ("exit_code", 3),
                                  ("dropped", 0), ("uptime_ms", 10), ("next_seq", 9), ("instance_id", "i")])))
    write("agent_protocol", "control", b"\x00" + control)
    write("agent_protocol", "config-drive", b"\xff" + frame(1, spec) + bytes(512 - 8 - len(spec)))
    write("agent_protocol", "bad-header", b"\x00" + b"KF\x02\x01" + struct.pack("<I", 2**31) + b"OK 1234\n")
    write("agent_protocol", "hybrid-reply", b"\x00" + b"OK 1073741824\nrest")


def oci():
    d = lambda c: "sha256:" + c * 64
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d("a"), "size": 100},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d("b"), "size": 5},
                           {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": d("c"), "size": 7}]}
    write("oci_documents", "oci-manifest", b"\x01" + json.dumps(manifest).encode())
    docker = dict(manifest, mediaType="application/vnd.docker.distribution.manifest.v2+json")
    docker["config"] = dict(manifest["config"], mediaType="application/vnd.docker.container.image.v1+json")
    docker["layers"] = [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": d("d"), "size": 1}]
    write("oci_documents", "docker-manifest", b"\x03" + json.dumps(docker).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d("e"), "size": 10,
                            "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                           {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d("f"), "size": 11,
                            "platform": {"os": "linux", "architecture": "amd64"},
                            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
    write("oci_documents", "oci-index", b"\x02" + json.dumps(index).encode())
    dlist = dict(index, mediaType="application/vnd.docker.distribution.manifest.list.v2+json")
    write("oci_documents", "docker-list", b"\x00" + json.dumps(dlist).encode())
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": ["PATH=/bin", "A=b=c"],
                         "WorkingDir": "/app", "User": "nobody", "ExposedPorts": {"9000/tcp": {}, "53/udp": {}}},
              "rootfs": {"type": "layers", "diff_ids": [d("1"), d("2")]}}
    write("oci_documents", "config", b"\x05" + json.dumps(config).encode())
    write("oci_documents", "schema1", b"\x06" + json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode())
    write("oci_documents", "mismatch", b"\x02" + json.dumps(manifest).encode())


def tar_bytes(members, compress=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for m in members:
            info = tarfile.TarInfo(m["name"])
            info.type = m.get("type", tarfile.REGTYPE)
            info.mode = m.get("mode", 0o644)
            info.linkname = m.get("link", "")
            info.mtime = 1700000000
            data = m.get("data", b"")
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            t.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    raw = buf.getvalue()
    if compress == "gz":
        return gzip.compress(raw, mtime=0)
    return raw


def tar_layer():
    D, L, S = tarfile.DIRTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE
    write("tar_layer", "plain", tar_bytes([{"name": "etc", "type": D, "mode": 0o755},
                                           {"name": "etc/hostname", "data": b"kiln\n"},
                                           {"name": "bin/sh", "data": b"#!", "mode": 0o755},
                                           {"name": "usr/bin/env", "type": S, "link": "/bin/sh"},
                                           {"name": "bin/hard", "type": L, "link": "bin/sh"}]))
    write("tar_layer", "gzip", tar_bytes([{"name": "a/b/c", "data": b"x" * 1000}], compress="gz"))
    write("tar_layer", "whiteouts", tar_bytes([{"name": "a", "type": D}, {"name": "a/.wh..wh..opq"},
                                               {"name": "a/.wh.gone"}, {"name": ".wh.etc"},
                                               {"name": "a/kept", "data": b"1"}]))
    write("tar_layer", "escape-dotdot", tar_bytes([{"name": "../bait/x", "data": b"1"},
                                                   {"name": "a/../../bait/y", "data": b"1"},
                                                   {"name": "/abs", "data": b"1"}]))
    write("tar_layer", "escape-symlink", tar_bytes([{"name": "up", "type": S, "link": "../bait"},
                                                    {"name": "up/x", "data": b"1"},
                                                    {"name": "dir", "type": S, "link": ".."},
                                                    {"name": "dir/bait/z", "data": b"1"},
                                                    {"name": "dir/escaped", "type": D}]))
    write("tar_layer", "escape-hardlink", tar_bytes([{"name": "up", "type": S, "link": "../bait"},
                                                     {"name": "h", "type": L, "link": "up/x"},
                                                     {"name": "h2", "type": L, "link": "../bait"},
                                                     {"name": "up", "type": D},
                                                     {"name": "up/file", "data": b"1"}]))
    write("tar_layer", "escape-absolute", tar_bytes([{"name": "t", "type": S, "link": "/tmp"},
                                                     {"name": "t/kiln-fuzz-escape-canary", "data": b"1"},
                                                     {"name": "s", "type": S, "link": "/dev/shm/"},
                                                     {"name": "s/kiln-fuzz-escape-canary", "type": D},
                                                     {"name": "h", "type": L, "link": "/tmp/kiln-fuzz-escape-canary"}]))
    write("tar_layer", "replace", tar_bytes([{"name": "x", "type": D}, {"name": "x/f", "data": b"1"},
                                             {"name": "x", "data": b"now a file"},
                                             {"name": "x", "type": S, "link": "/"},
                                             {"name": "x/f2", "data": b"1"},
                                             {"name": "locked", "type": D, "mode": 0},
                                             {"name": "locked/in", "data": b"1"}]))


def chunk_index_bytes(chunk_size, image_size, entries, data_size, magic=b"KILNCHIX", version=1):
    """A chunk index (rootfs-builder/chunks/chunk_index.cc); entries are (sha256, offset, length)."""
    out = magic + struct.pack("<IIII", version, 1, chunk_size, 0)
    out += struct.pack("<QQQ", image_size, len(entries), data_size)
    for digest, offset, length in entries:
        out += digest + struct.pack("<QII", offset, length, 0)
    return out


def chunk_index():
    import hashlib
    zero = (bytes(32), 0, 0)
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    # stored a, zero, a again (points at its first copy), stored b as a short last chunk.
    mixed = [(a, 0, 100), zero, (a, 0, 100), (b, 100, 50)]
    write("chunk_index", "mixed", b"\x00" + chunk_index_bytes(4096, 3 * 4096 + 10, mixed, data_size=150))
    write("chunk_index", "all-zero", b"\x00" + chunk_index_bytes(524288, 4 * 524288, [zero] * 4, data_size=0))
    write("chunk_index", "one-byte", b"\x00" + chunk_index_bytes(4096, 1, [(a, 0, 9)], data_size=9))
    write("chunk_index", "overlap", b"\x00" + chunk_index_bytes(4096, 8192, [(a, 0, 100), (b, 50, 100)], data_size=150))
    write("chunk_index", "count-mismatch", b"\x00" + chunk_index_bytes(4096, 9000, [(a, 0, 100)], data_size=100))
    write("chunk_index", "bad-magic", b"\x00" + chunk_index_bytes(4096, 1, [(a, 0, 9)], data_size=9, magic=b"KILNCHIY"))
    # Frames for the verifier's one-chunk index of "kiln" * 1024: raw zstd frames by hand
    # (magic, frame header with a single segment and 2-byte content size, blocks).
    content = b"kiln" * 1024
    magic = b"\x28\xb5\x2f\xfd"

    def raw_frame(data, declared):
        fhd = 0x60  # single segment, 2-byte frame content size (value - 256)
        header = magic + bytes([fhd]) + struct.pack("<H", declared - 256)
        block = struct.pack("<I", 1 | (0 << 1) | (len(data) << 3))[:3]  # last block, raw
        return header + block + data

    def rle_frame(byte, n, declared):
        header = magic + bytes([0x60]) + struct.pack("<H", declared - 256)
        return header + struct.pack("<I", 1 | (1 << 1) | (n << 3))[:3] + bytes([byte])

    write("chunk_index", "frame-good", b"\x01" + raw_frame(content, 4096))
    write("chunk_index", "frame-flipped", b"\x01" + raw_frame(b"K" + content[1:], 4096))
    write("chunk_index", "frame-short", b"\x01" + raw_frame(content[:4000], 4000))
    write("chunk_index", "frame-rle-bomb", b"\x01" + rle_frame(0, 60000, 60000))


def vmm_api():
    def reqs(*rs):
        return b"\x1e".join(m.encode() + b"\n" + t.encode() + b"\n" + (json.dumps(b).encode() if b is not None else b"")
                            for m, t, b in rs)

    boot = [("PUT", "/boot-source", {"kernel_image_path": "/nonexistent/vmlinux", "boot_args": "console=ttyS0"}),
            ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}),
            ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/nonexistent/root.ext4",
                                       "is_root_device": True, "is_read_only": True}),
            ("PUT", "/vsock", {"guest_cid": 3, "uds_path": "/tmp/kiln-fuzz-none.sock"}),
            ("PUT", "/entropy", {}),
            ("GET", "/vm/config", None),
            ("PUT", "/actions", {"action_type": "InstanceStart"}),
            ("GET", "/", None)]
    write("vmm_api", "boot", reqs(*boot))
    life = boot + [("PATCH", "/vm", {"state": "Paused"}),
                   ("PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": "/nonexistent/s", "mem_file_path": "/nonexistent/m"}),
                   ("PATCH", "/vm", {"state": "Resumed"}),
                   ("PUT", "/actions", {"action_type": "SendCtrlAltDel"}),
                   ("PUT", "/actions", {"action_type": "FlushMetrics"}),
                   ("GET", "/metrics", None), ("GET", "/version", None)]
    write("vmm_api", "lifecycle", reqs(*life))
    write("vmm_api", "snapshot-load", reqs(("PUT", "/logger", {"log_path": "/nonexistent/log", "level": "Info"}),
                                           ("PUT", "/metrics", {"metrics_path": "/nonexistent/metrics"}),
                                           ("PUT", "/snapshot/load", {"snapshot_path": "/nonexistent/s",
                                                                      "mem_backend": {"backend_type": "File", "backend_path": "/nonexistent/m"},
                                                                      "resume_vm": True}),
                                           ("GET", "/vm/config", None)))
    # Network interfaces: files that exist everywhere (/proc/self/exe) so the PUT-time file
    # checks pass and InstanceStart reaches the runtime PATCH.
    limiter = {"bandwidth": {"size": 1048576, "one_time_burst": 4096, "refill_time": 100},
               "ops": {"size": 1000, "refill_time": 1000}}
    net = [("PUT", "/boot-source", {"kernel_image_path": "/proc/self/exe"}),
           ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/proc/self/exe",
                                      "is_root_device": True, "is_read_only": True, "rate_limiter": limiter}),
           ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                                "guest_mac": "06:00:AC:10:00:02", "mtu": 1500,
                                                "rx_rate_limiter": limiter, "tx_rate_limiter": None}),
           ("PUT", "/network-interfaces/eth1", {"iface_id": "eth1", "host_dev_name": "tap0"}),
           ("PUT", "/network-interfaces/eth1", {"iface_id": "eth1", "host_dev_name": "tap1",
                                                "guest_mac": "01:00:5e:00:00:01"}),
           ("PUT", "/network-interfaces/eth1", {"iface_id": "eth1", "host_dev_name": "tap1",
                                                "tx_rate_limiter": {"ops": {"size": 0, "refill_time": 1}}}),
           ("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0", "tx_rate_limiter": limiter}),
           ("PUT", "/actions", {"action_type": "InstanceStart"}),
           ("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0", "tx_rate_limiter": limiter,
                                                  "rx_rate_limiter": {"ops": {"size": 0, "refill_time": 0}}}),
           ("PATCH", "/network-interfaces/eth7", {"iface_id": "eth7"}),
           ("GET", "/vm/config", None)]
    write("vmm_api", "network", reqs(*net))
    write("vmm_api", "network-load", reqs(("PUT", "/snapshot/load", {
        "snapshot_path": "/nonexistent/s", "mem_backend": {"backend_type": "File", "backend_path": "/nonexistent/m"},
        "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap9"}]}),
        ("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0"})))
    write("vmm_api", "malformed", b"PUT\n/drives/\n{\"drive_id\":1}\x1ePATCH\n/machine-config?x=1\n{\x1eDELETE\n/\n\x1eGET\n\n"
          + b"\x1ePUT\n/serial\n{\"serial_out_path\": 5}\x1ePUT\n/boot-source\n[]\x1ePUT\n//actions//\n\"x\"")


def arm64_header(text_offset, image_size, flags, magic=0x644D5241):
    h = bytearray(64)
    struct.pack_into("<QQQ", h, 8, text_offset, image_size, flags)
    struct.pack_into("<I", h, 56, magic)
    return bytes(h)


def arm64_image():
    # The Image's 64-byte header, then file size, initrd size, memory size (u64 LE each).
    def seed(name, header, file_size, initrd_size, mem_size):
        write("arm64_image", name, header + struct.pack("<QQQ", file_size, initrd_size, mem_size))
    seed("modern", arm64_header(0, 40 << 20, 0b1010), 30 << 20, 5 << 20, 256 << 20)
    seed("legacy", arm64_header(0x80000, 0, 0), 9 << 20, 0, 128 << 20)
    seed("tight", arm64_header(0x80000, 120 << 20, 0b0010), 100 << 20, 3 << 20, 128 << 20)


def schedule():
    for name, expr in [("rate", "rate(5 minutes)"), ("rate-one", "rate(1 hour)"), ("daily", "cron(0 12 * * ? *)"),
                       ("weekdays", "cron(0/15 8-18 ? * MON-FRI *)"), ("last-friday", "cron(15 10 ? DEC 6L 2026-2027)"),
                       ("nth", "cron(0 9 ? * 2#1 *)"), ("nearest", "cron(30 6 1W * ? 2026)"), ("last-day", "cron(0 0 L * ? *)"),
                       ("never", "cron(0 0 30 2 ? *)")]:
        write("schedule", name, expr.encode())


def ttrpc_frame(length, stream, mtype, flags, payload):
    return struct.pack(">IIBB", length, stream, mtype, flags) + payload


def ttrpc_framing():
    # Byte 0: the feed size - 1; then the stream.
    req = ttrpc_frame(5, 1, 1, 0, b"hello") + ttrpc_frame(0, 3, 2, 4, b"")
    write("ttrpc_framing", "two", bytes([6]) + req)
    write("ttrpc_framing", "oversized", bytes([0]) + ttrpc_frame(5000, 7, 1, 0, b"z" * 5000) + ttrpc_frame(2, 9, 1, 0, b"ok"))
    write("ttrpc_framing", "huge-announcement", bytes([255]) + b"\xff\xff\xff\xff\x00\x00\x00\x01\x01\x00" + b"q" * 300)


def main():
    virtio_queue()
    virtio_blk()
    virtio_net()
    vsock()
    virtio_mmio()
    agent_protocol()
    oci()
    tar_layer()
    chunk_index()
    vmm_api()
    arm64_image()
    schedule()
    ttrpc_framing()
    return 0


if __name__ == "__main__":
    sys.exit(main())
