// vsock packet parsing.
#include "vmm/devices/vsock_packet.h"

#include <cstring>

namespace kiln::vmm::devices {

namespace {
template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // little-endian host (x86_64)
  return v;
}
template <typename T>
void store(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}
}  // namespace

Result<VsockHeader> parse_vsock_header(std::span<const uint8_t> b) {
  if (b.size() < kVsockHeaderSize) return make_error("vsock: packet header too short");
  VsockHeader h;
  h.src_cid = load<uint64_t>(&b[0]);
  h.dst_cid = load<uint64_t>(&b[8]);
  h.src_port = load<uint32_t>(&b[16]);
  h.dst_port = load<uint32_t>(&b[20]);
  h.len = load<uint32_t>(&b[24]);
  h.type = load<uint16_t>(&b[28]);
  h.op = load<uint16_t>(&b[30]);
  h.flags = load<uint32_t>(&b[32]);
  h.buf_alloc = load<uint32_t>(&b[36]);
  h.fwd_cnt = load<uint32_t>(&b[40]);
  return h;
}

std::array<uint8_t, kVsockHeaderSize> encode_vsock_header(const VsockHeader& h) {
  std::array<uint8_t, kVsockHeaderSize> b{};
  store(&b[0], h.src_cid);
  store(&b[8], h.dst_cid);
  store(&b[16], h.src_port);
  store(&b[20], h.dst_port);
  store(&b[24], h.len);
  store(&b[28], h.type);
  store(&b[30], h.op);
  store(&b[32], h.flags);
  store(&b[36], h.buf_alloc);
  store(&b[40], h.fwd_cnt);
  return b;
}

GuestPacketVerdict classify_guest_packet(const VsockHeader& h, uint64_t guest_cid,
                                         uint64_t payload_available) {
  // Only the low 32 bits of a CID are meaningful (virtio 1.2 §5.10.4); compare them all the
  // same so a guest cannot alias another CID through the upper half.
  if (h.src_cid != guest_cid) return GuestPacketVerdict::kDrop;
  if (h.op == static_cast<uint16_t>(VsockOp::kInvalid) ||
      h.op > static_cast<uint16_t>(VsockOp::kCreditRequest)) {
    return GuestPacketVerdict::kDrop;
  }
  if (h.len > kVsockMaxPayload || h.len > payload_available) return GuestPacketVerdict::kDrop;
  if (h.vsock_op() == VsockOp::kRst) {
    // Never answer a RST with a RST.
    return (h.type == kVsockTypeStream && h.dst_cid == kVsockHostCid) ? GuestPacketVerdict::kAccept
                                                                      : GuestPacketVerdict::kDrop;
  }
  if (h.type != kVsockTypeStream || h.dst_cid != kVsockHostCid) return GuestPacketVerdict::kReplyRst;
  return GuestPacketVerdict::kAccept;
}

VsockHeader make_rst_reply(const VsockHeader& h) {
  VsockHeader r;
  r.src_cid = h.dst_cid;
  r.dst_cid = h.src_cid;
  r.src_port = h.dst_port;
  r.dst_port = h.src_port;
  r.type = h.type;
  r.op = static_cast<uint16_t>(VsockOp::kRst);
  return r;
}

}  // namespace kiln::vmm::devices
