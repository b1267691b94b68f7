// vsock header and handshake parsing, with hostile inputs.
#include "vmm/devices/vsock_packet.h"

#include <gtest/gtest.h>

#include <vector>

namespace kiln::vmm::devices {
namespace {

VsockHeader guest_hdr(VsockOp op, uint32_t len = 0) {
  VsockHeader h;
  h.src_cid = 3;
  h.dst_cid = kVsockHostCid;
  h.src_port = 1000;
  h.dst_port = 52;
  h.len = len;
  h.type = kVsockTypeStream;
  h.op = static_cast<uint16_t>(op);
  h.buf_alloc = 4096;
  return h;
}

TEST(VsockPacket, EncodeParseRoundTrip) {
  VsockHeader h = guest_hdr(VsockOp::kRw, 17);
  h.flags = 3;
  h.fwd_cnt = 0xdeadbeef;
  h.src_cid = 0x1122334455667788ull;
  auto bytes = encode_vsock_header(h);
  // Little-endian layout (virtio 1.2 §5.10.6): src_cid first, op at offset 30.
  EXPECT_EQ(bytes[0], 0x88);
  EXPECT_EQ(bytes[30], static_cast<uint8_t>(VsockOp::kRw));
  EXPECT_EQ(bytes[24], 17);
  auto p = parse_vsock_header(bytes);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->src_cid, h.src_cid);
  EXPECT_EQ(p->len, 17u);
  EXPECT_EQ(p->flags, 3u);
  EXPECT_EQ(p->fwd_cnt, 0xdeadbeefu);
  EXPECT_EQ(p->vsock_op(), VsockOp::kRw);
}

TEST(VsockPacket, ShortHeaderFails) {
  std::vector<uint8_t> b(43);
  EXPECT_FALSE(parse_vsock_header(b).ok());
  EXPECT_FALSE(parse_vsock_header({}).ok());
}

TEST(VsockPacket, Classify) {
  EXPECT_EQ(classify_guest_packet(guest_hdr(VsockOp::kRequest), 3, 0), GuestPacketVerdict::kAccept);
  EXPECT_EQ(classify_guest_packet(guest_hdr(VsockOp::kRw, 10), 3, 10), GuestPacketVerdict::kAccept);
  // len beyond the buffer / beyond the cap
  EXPECT_EQ(classify_guest_packet(guest_hdr(VsockOp::kRw, 11), 3, 10), GuestPacketVerdict::kDrop);
  EXPECT_EQ(classify_guest_packet(guest_hdr(VsockOp::kRw, kVsockMaxPayload + 1), 3, UINT64_MAX),
            GuestPacketVerdict::kDrop);
  EXPECT_EQ(classify_guest_packet(guest_hdr(VsockOp::kRw, UINT32_MAX), 3, 100), GuestPacketVerdict::kDrop);
  // bad ops
  EXPECT_EQ(classify_guest_packet(guest_hdr(VsockOp::kInvalid), 3, 0), GuestPacketVerdict::kDrop);
  EXPECT_EQ(classify_guest_packet(guest_hdr(static_cast<VsockOp>(8)), 3, 0), GuestPacketVerdict::kDrop);
  EXPECT_EQ(classify_guest_packet(guest_hdr(static_cast<VsockOp>(0xffff)), 3, 0), GuestPacketVerdict::kDrop);
  // spoofed source CID, including in the upper half
  VsockHeader h = guest_hdr(VsockOp::kRequest);
  h.src_cid = 4;
  EXPECT_EQ(classify_guest_packet(h, 3, 0), GuestPacketVerdict::kDrop);
  h.src_cid = (1ull << 32) | 3;
  EXPECT_EQ(classify_guest_packet(h, 3, 0), GuestPacketVerdict::kDrop);
  // other destination or non-stream type: answered with RST
  h = guest_hdr(VsockOp::kRequest);
  h.dst_cid = 5;
  EXPECT_EQ(classify_guest_packet(h, 3, 0), GuestPacketVerdict::kReplyRst);
  h = guest_hdr(VsockOp::kRequest);
  h.type = 2;  // SEQPACKET, not negotiated
  EXPECT_EQ(classify_guest_packet(h, 3, 0), GuestPacketVerdict::kReplyRst);
  // ... but a RST is never answered
  h = guest_hdr(VsockOp::kRst);
  h.type = 2;
  EXPECT_EQ(classify_guest_packet(h, 3, 0), GuestPacketVerdict::kDrop);
}

TEST(VsockPacket, RstReplySwapsEndpoints) {
  VsockHeader r = make_rst_reply(guest_hdr(VsockOp::kRequest));
  EXPECT_EQ(r.src_cid, kVsockHostCid);
  EXPECT_EQ(r.dst_cid, 3u);
  EXPECT_EQ(r.src_port, 52u);
  EXPECT_EQ(r.dst_port, 1000u);
  EXPECT_EQ(r.vsock_op(), VsockOp::kRst);
  EXPECT_EQ(r.len, 0u);
}

}  // namespace
}  // namespace kiln::vmm::devices
