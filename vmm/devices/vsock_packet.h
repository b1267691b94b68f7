// virtio-vsock packet header (virtio 1.2 §5.10.6): pure parsers over bytes, fuzzable on their
// own. The hybrid-vsock handshake text is common/protocol/hybrid_vsock.h's.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "common/result.h"

namespace kiln::vmm::devices {

inline constexpr size_t kVsockHeaderSize = 44;
inline constexpr uint64_t kVsockHostCid = 2;  // VMADDR_CID_HOST
inline constexpr uint16_t kVsockTypeStream = 1;
inline constexpr uint32_t kVsockShutdownRcv = 1;
inline constexpr uint32_t kVsockShutdownSend = 2;
// Largest payload kiln accepts or sends in one packet (Linux: VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
inline constexpr uint32_t kVsockMaxPayload = 64 * 1024;
// Event queue (virtio 1.2 §5.10.6.8): struct virtio_vsock_event { le32 id; }.
inline constexpr uint32_t kVsockEventTransportReset = 0;
// Feature bits (virtio 1.2 §5.10.3); kiln offers neither (stream only).
inline constexpr unsigned kVsockFeatureStream = 0;
inline constexpr unsigned kVsockFeatureSeqpacket = 1;

enum class VsockOp : uint16_t {
  kInvalid = 0,
  kRequest = 1,
  kResponse = 2,
  kRst = 3,
  kShutdown = 4,
  kRw = 5,
  kCreditUpdate = 6,
  kCreditRequest = 7,
};

// struct virtio_vsock_hdr (virtio 1.2 §5.10.6), host byte order.
struct VsockHeader {
  uint64_t src_cid = 0;
  uint64_t dst_cid = 0;
  uint32_t src_port = 0;
  uint32_t dst_port = 0;
  uint32_t len = 0;
  uint16_t type = 0;
  uint16_t op = 0;
  uint32_t flags = 0;
  uint32_t buf_alloc = 0;
  uint32_t fwd_cnt = 0;

  VsockOp vsock_op() const { return static_cast<VsockOp>(op); }
};

// Decodes the first 44 bytes; fails if fewer are given. No semantic checks.
Result<VsockHeader> parse_vsock_header(std::span<const uint8_t> bytes);
std::array<uint8_t, kVsockHeaderSize> encode_vsock_header(const VsockHeader& h);

// What the device does with a packet the guest put on the tx queue.
enum class GuestPacketVerdict {
  kAccept,    // well-formed: dispatch it
  kDrop,      // malformed beyond answering (spoofed CID, bad length, bad op): count and drop
  kReplyRst,  // well-formed envelope the device cannot serve (non-stream type, other CID)
};

// Checks a guest packet: src_cid must be the guest's, dst_cid the host's, op known, type
// stream, len at most kVsockMaxPayload and at most the readable bytes after the header.
GuestPacketVerdict classify_guest_packet(const VsockHeader& h, uint64_t guest_cid,
                                         uint64_t payload_available);

// RST answering `h` (ports and CIDs swapped), for packets with no connection.
VsockHeader make_rst_reply(const VsockHeader& h);

}  // namespace kiln::vmm::devices
