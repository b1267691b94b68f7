// virtio-net frame header checks.
#include "vmm/devices/net_frame.h"

#include <linux/if_tun.h>

#include <cstring>
#include <limits>
#include <string>

#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::devices {

namespace {

bool acked(uint64_t features, unsigned bit) { return (features & virtio::feature_bit(bit)) != 0; }

uint16_t le16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);  // little-endian host (x86_64, aarch64)
  return v;
}

}  // namespace

Result<VirtioNetHdr> parse_net_hdr(std::span<const uint8_t> bytes) {
  if (bytes.size() < kNetHdrSize) return make_error("virtio-net: frame shorter than its header");
  VirtioNetHdr h;
  h.flags = bytes[0];
  h.gso_type = bytes[1];
  h.hdr_len = le16(&bytes[2]);
  h.gso_size = le16(&bytes[4]);
  h.csum_start = le16(&bytes[6]);
  h.csum_offset = le16(&bytes[8]);
  h.num_buffers = le16(&bytes[10]);
  return h;
}

void encode_net_hdr(const VirtioNetHdr& hdr, std::span<uint8_t> out) {
  out[0] = hdr.flags;
  out[1] = hdr.gso_type;
  std::memcpy(&out[2], &hdr.hdr_len, 2);
  std::memcpy(&out[4], &hdr.gso_size, 2);
  std::memcpy(&out[6], &hdr.csum_start, 2);
  std::memcpy(&out[8], &hdr.csum_offset, 2);
  std::memcpy(&out[10], &hdr.num_buffers, 2);
}

Result<VirtioNetHdr> check_tx_frame(const VirtioNetHdr& hdr, uint64_t frame_len, uint64_t features) {
  if (frame_len < kEthHeaderSize) return make_error("virtio-net: frame shorter than an Ethernet header");
  if (frame_len > kMaxNetFrame) return make_error("virtio-net: frame longer than " + std::to_string(kMaxNetFrame) + " bytes");
  if ((hdr.flags & ~kNetHdrFNeedsCsum) != 0) return make_error("virtio-net: unknown header flags");
  if (hdr.flags & kNetHdrFNeedsCsum) {
    if (!acked(features, kNetFeatureCsum)) return make_error("virtio-net: checksum offload was not negotiated");
    if (uint64_t{hdr.csum_start} + hdr.csum_offset + 2 > frame_len) {
      return make_error("virtio-net: checksum position past the frame");
    }
  }
  if (hdr.gso_type != kNetGsoNone) {
    unsigned needed = 0;
    switch (hdr.gso_type) {
      case kNetGsoTcpv4: needed = kNetFeatureHostTso4; break;
      case kNetGsoTcpv6: needed = kNetFeatureHostTso6; break;
      case kNetGsoUdp: needed = kNetFeatureHostUfo; break;
      default: return make_error("virtio-net: unknown or unnegotiated GSO type");  // ECN too
    }
    if (!acked(features, needed)) return make_error("virtio-net: GSO type was not negotiated");
    if (!(hdr.flags & kNetHdrFNeedsCsum)) return make_error("virtio-net: GSO frame without a checksum request");
    if (hdr.gso_size == 0) return make_error("virtio-net: GSO frame with gso_size 0");
    if (hdr.hdr_len > frame_len) return make_error("virtio-net: hdr_len past the frame");
  }
  VirtioNetHdr out = hdr;
  out.num_buffers = 0;
  return out;
}

unsigned tap_offload_flags(uint64_t features) {
  unsigned f = 0;
  if (acked(features, kNetFeatureGuestCsum)) {
    f |= TUN_F_CSUM;
    // The kernel refuses TSO/UFO flags without TUN_F_CSUM (segments need checksums).
    if (acked(features, kNetFeatureGuestTso4)) f |= TUN_F_TSO4;
    if (acked(features, kNetFeatureGuestTso6)) f |= TUN_F_TSO6;
    if (acked(features, kNetFeatureGuestUfo)) f |= TUN_F_UFO;
  }
  return f;
}

Result<uint32_t> rx_chains_needed(std::span<const uint64_t> writable, uint64_t len, bool mergeable) {
  if (writable.empty()) return 0u;
  if (writable[0] < kNetHdrSize) return make_error("virtio-net: receive buffer too small for the header");
  if (!mergeable) {
    if (writable[0] < len) return make_error("virtio-net: receive buffer too small for the frame");
    return 1u;
  }
  uint64_t room = 0;
  for (size_t i = 0; i < writable.size(); ++i) {
    if (i >= std::numeric_limits<uint16_t>::max()) return make_error("virtio-net: frame needs too many buffers");
    room += writable[i];  // each <= 4 GiB (descriptor_chain caps chain totals): no overflow
    if (room >= len) return static_cast<uint32_t>(i + 1);
  }
  return 0u;
}

}  // namespace kiln::vmm::devices
