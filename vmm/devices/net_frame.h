// virtio-net frames (virtio 1.2 §5.1.6): the 12-byte virtio_net_hdr in front of every frame,
// checked against the negotiated features before a guest frame reaches the TAP, and the
// offload flags the TAP gets for what the guest accepts. Pure, so it can be fuzzed alone.
#pragma once

#include <cstdint>
#include <span>

#include "common/result.h"

namespace kiln::vmm::devices {

// Feature bits (virtio 1.2 §5.1.3).
inline constexpr unsigned kNetFeatureCsum = 0;        // device takes partially checksummed frames
inline constexpr unsigned kNetFeatureGuestCsum = 1;   // driver takes partially checksummed frames
inline constexpr unsigned kNetFeatureMtu = 3;
inline constexpr unsigned kNetFeatureMac = 5;
inline constexpr unsigned kNetFeatureGuestTso4 = 7;
inline constexpr unsigned kNetFeatureGuestTso6 = 8;
inline constexpr unsigned kNetFeatureGuestUfo = 10;
inline constexpr unsigned kNetFeatureHostTso4 = 11;
inline constexpr unsigned kNetFeatureHostTso6 = 12;
inline constexpr unsigned kNetFeatureHostUfo = 14;
inline constexpr unsigned kNetFeatureMrgRxbuf = 15;

// virtio_net_hdr flags and gso types (virtio 1.2 §5.1.6).
inline constexpr uint8_t kNetHdrFNeedsCsum = 1;
inline constexpr uint8_t kNetHdrFDataValid = 2;
inline constexpr uint8_t kNetGsoNone = 0;
inline constexpr uint8_t kNetGsoTcpv4 = 1;
inline constexpr uint8_t kNetGsoUdp = 3;
inline constexpr uint8_t kNetGsoTcpv6 = 4;
inline constexpr uint8_t kNetGsoEcn = 0x80;

// With VIRTIO_F_VERSION_1 the header always carries num_buffers: 12 bytes.
inline constexpr size_t kNetHdrSize = 12;
inline constexpr size_t kEthHeaderSize = 14;
// Largest frame either way: a 64 KiB GSO packet plus its Ethernet (and VLAN) header, as
// Firecracker and QEMU size it, plus the virtio header.
inline constexpr size_t kMaxNetFrame = 65550;
inline constexpr size_t kMaxNetBuffer = kNetHdrSize + kMaxNetFrame;

struct VirtioNetHdr {
  uint8_t flags = 0;
  uint8_t gso_type = 0;
  uint16_t hdr_len = 0;
  uint16_t gso_size = 0;
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
  uint16_t num_buffers = 0;
  bool operator==(const VirtioNetHdr&) const = default;
};

// Decodes the first kNetHdrSize bytes (little-endian); fails if fewer are given.
Result<VirtioNetHdr> parse_net_hdr(std::span<const uint8_t> bytes);
// Writes kNetHdrSize bytes; out must hold them.
void encode_net_hdr(const VirtioNetHdr& hdr, std::span<uint8_t> out);

// A guest frame about to be sent: `frame_len` bytes after the header. Errors (the frame is
// dropped and counted): a frame shorter than an Ethernet header or longer than kMaxNetFrame,
// flags other than NEEDS_CSUM, a checksum request without VIRTIO_NET_F_CSUM or with
// csum_start + csum_offset + 2 past the frame, a GSO type that was not negotiated (or unknown,
// or ECN), GSO without a checksum request or with gso_size 0, hdr_len past the frame.
// Returns the header to hand to the TAP (num_buffers cleared).
Result<VirtioNetHdr> check_tx_frame(const VirtioNetHdr& hdr, uint64_t frame_len, uint64_t acked_features);

// TUNSETOFFLOAD flags (TUN_F_*) for what the driver accepts on receive: the TAP then hands us
// only frames the guest can take.
unsigned tap_offload_flags(uint64_t acked_features);

// How a received frame of `len` bytes (header included) is split over the guest's receive
// chains: with mergeable buffers it fills chains in order until it fits (num_buffers of
// them); without, it must fit the first chain. `writable` holds the writable lengths of the
// chains popped so far. Returns the number of chains needed, 0 when more chains must be popped
// first (mergeable, not enough room yet), or an error when the frame can never fit (no
// mergeable buffers and the first chain is too small, or more than UINT16_MAX chains).
Result<uint32_t> rx_chains_needed(std::span<const uint64_t> writable, uint64_t len, bool mergeable);

}  // namespace kiln::vmm::devices
