// VsockConnection state machine: setup, credit flow control, shutdown/reset, bounded buffers
// and guest protocol violations. No sockets involved.
#include "vmm/devices/vsock_connection.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kiln::vmm::devices {
namespace {

constexpr uint64_t kCid = 3;
constexpr uint32_t kLocal = 1u << 30;
constexpr uint32_t kPeer = 52;

VsockConnection::Options small_opts() {
  VsockConnection::Options o;
  o.buf_alloc = 16;
  o.host_buffer = 32;
  return o;
}

// A packet from the guest to this connection.
VsockHeader from_guest(VsockOp op, uint32_t buf_alloc = 1024, uint32_t fwd_cnt = 0,
                       uint32_t flags = 0) {
  VsockHeader h;
  h.src_cid = kCid;
  h.dst_cid = kVsockHostCid;
  h.src_port = kPeer;
  h.dst_port = kLocal;
  h.type = kVsockTypeStream;
  h.op = static_cast<uint16_t>(op);
  h.buf_alloc = buf_alloc;
  h.fwd_cnt = fwd_cnt;
  h.flags = flags;
  return h;
}

std::span<const uint8_t> bytes(const std::string& s) {
  return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::optional<VsockHeader> next(VsockConnection& c, std::vector<uint8_t>& payload,
                                size_t max_payload = 4096) {
  return c.next_guest_packet(max_payload, payload);
}

VsockConnection established_host_conn(VsockConnection::Options opts, uint32_t peer_buf = 1024) {
  auto c = VsockConnection::host_initiated(kCid, kLocal, kPeer, opts);
  std::vector<uint8_t> p;
  auto req = next(c, p);
  EXPECT_TRUE(req && req->vsock_op() == VsockOp::kRequest);
  c.on_guest_packet(from_guest(VsockOp::kResponse, peer_buf), {});
  EXPECT_EQ(c.state(), VsockConnection::State::kEstablished);
  c.on_host_written(c.host_write_pending().size());  // the "OK" line
  return c;
}

TEST(VsockConnection, HostInitiatedHandshake) {
  auto c = VsockConnection::host_initiated(kCid, kLocal, kPeer, {});
  EXPECT_EQ(c.state(), VsockConnection::State::kConnecting);
  ASSERT_TRUE(c.has_guest_packet());
  std::vector<uint8_t> p;
  auto req = next(c, p);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->vsock_op(), VsockOp::kRequest);
  EXPECT_EQ(req->src_cid, kVsockHostCid);
  EXPECT_EQ(req->dst_cid, kCid);
  EXPECT_EQ(req->src_port, kLocal);
  EXPECT_EQ(req->dst_port, kPeer);
  EXPECT_EQ(req->type, kVsockTypeStream);
  EXPECT_EQ(req->buf_alloc, 256u * 1024);
  EXPECT_FALSE(c.has_guest_packet());
  EXPECT_TRUE(c.host_write_pending().empty());

  c.on_guest_packet(from_guest(VsockOp::kResponse), {});
  EXPECT_EQ(c.state(), VsockConnection::State::kEstablished);
  auto ack = c.host_write_pending();
  EXPECT_EQ(std::string(ack.begin(), ack.end()), "OK 1073741824\n");
  c.on_host_written(3);  // partial write
  ack = c.host_write_pending();
  EXPECT_EQ(std::string(ack.begin(), ack.end()), "1073741824\n");
}

TEST(VsockConnection, HostDataBeforeResponseWaits) {
  auto c = VsockConnection::host_initiated(kCid, kLocal, kPeer, {});
  std::vector<uint8_t> p;
  (void)next(c, p);
  c.on_host_data(bytes("early"));
  EXPECT_FALSE(c.has_guest_packet());
  c.on_guest_packet(from_guest(VsockOp::kResponse), {});
  auto rw = next(c, p);
  ASSERT_TRUE(rw);
  EXPECT_EQ(rw->vsock_op(), VsockOp::kRw);
  EXPECT_EQ(std::string(p.begin(), p.end()), "early");
}

TEST(VsockConnection, GuestRefusesHostConnection) {
  auto c = VsockConnection::host_initiated(kCid, kLocal, kPeer, {});
  std::vector<uint8_t> p;
  (void)next(c, p);
  c.on_guest_packet(from_guest(VsockOp::kRst), {});
  EXPECT_TRUE(c.closed());
  EXPECT_FALSE(c.has_guest_packet());
}

TEST(VsockConnection, WrongOpWhileConnectingResets) {
  auto c = VsockConnection::host_initiated(kCid, kLocal, kPeer, {});
  std::vector<uint8_t> p;
  (void)next(c, p);
  c.on_guest_packet(from_guest(VsockOp::kRw), bytes("x"));
  EXPECT_TRUE(c.protocol_error());
  auto rst = next(c, p);
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->vsock_op(), VsockOp::kRst);
  EXPECT_TRUE(c.closed());
}

TEST(VsockConnection, ResponseBeforeRequestWasSentIsAViolation) {
  auto c = VsockConnection::host_initiated(kCid, kLocal, kPeer, {});
  c.on_guest_packet(from_guest(VsockOp::kResponse), {});
  EXPECT_TRUE(c.protocol_error());
}

TEST(VsockConnection, HostClientLeavesBeforeResponse) {
  auto c = VsockConnection::host_initiated(kCid, kLocal, kPeer, {});
  c.on_host_eof();  // request never sent: nothing to cancel
  EXPECT_TRUE(c.closed());
  auto d = VsockConnection::host_initiated(kCid, kLocal, kPeer, {});
  std::vector<uint8_t> p;
  (void)next(d, p);
  d.on_host_eof();  // request sent: cancel it with RST
  auto rst = next(d, p);
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->vsock_op(), VsockOp::kRst);
  EXPECT_TRUE(d.closed());
}

TEST(VsockConnection, GuestInitiatedSendsResponseFirst) {
  VsockHeader req = from_guest(VsockOp::kRequest, 100, 0);
  req.dst_port = 5000;
  auto c = VsockConnection::guest_initiated(kCid, req, {});
  EXPECT_EQ(c.local_port(), 5000u);
  EXPECT_EQ(c.peer_port(), kPeer);
  c.on_host_data(bytes("hi"));
  std::vector<uint8_t> p;
  auto resp = next(c, p);
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->vsock_op(), VsockOp::kResponse);
  EXPECT_EQ(resp->src_port, 5000u);
  auto rw = next(c, p);
  ASSERT_TRUE(rw);
  EXPECT_EQ(rw->vsock_op(), VsockOp::kRw);
  EXPECT_EQ(rw->len, 2u);
  EXPECT_TRUE(c.host_write_pending().empty());  // no "OK" line for guest-initiated streams
}

TEST(VsockConnection, DataToGuestRespectsPeerCreditAndBufferSize) {
  auto c = established_host_conn({}, /*peer_buf=*/10);
  c.on_host_data(bytes("0123456789abcdefghijklmno"));  // 25 bytes
  std::vector<uint8_t> p;
  auto a = next(c, p, /*max_payload=*/4);
  ASSERT_TRUE(a);
  EXPECT_EQ(std::string(p.begin(), p.end()), "0123");
  auto b = next(c, p);
  ASSERT_TRUE(b);
  EXPECT_EQ(std::string(p.begin(), p.end()), "456789");  // credit exhausted at 10
  EXPECT_EQ(c.peer_credit(), 0u);
  // Stalled: one CREDIT_REQUEST, then silence.
  auto cr = next(c, p);
  ASSERT_TRUE(cr);
  EXPECT_EQ(cr->vsock_op(), VsockOp::kCreditRequest);
  EXPECT_FALSE(next(c, p));
  // The guest consumed 10 bytes.
  c.on_guest_packet(from_guest(VsockOp::kCreditUpdate, 10, 10), {});
  auto d = next(c, p);
  ASSERT_TRUE(d);
  EXPECT_EQ(std::string(p.begin(), p.end()), "abcdefghij");
  EXPECT_EQ(c.bytes_to_guest(), 20u);
}

TEST(VsockConnection, ZeroPayloadBufferSendsNoData) {
  auto c = established_host_conn({});
  c.on_host_data(bytes("abc"));
  std::vector<uint8_t> p;
  EXPECT_FALSE(next(c, p, 0));
  EXPECT_TRUE(next(c, p, 3));
}

TEST(VsockConnection, CreditCountersWrap) {
  auto c = established_host_conn({}, 100);
  // The guest claims it consumed more than we sent: no credit rather than a huge one.
  c.on_guest_packet(from_guest(VsockOp::kCreditUpdate, 100, 5), {});
  EXPECT_EQ(c.peer_credit(), 0u);
  // Modulo-2^32 arithmetic: a fwd_cnt 16 behind (wrapped) leaves 84 of 100.
  c.on_guest_packet(from_guest(VsockOp::kCreditUpdate, 100, 0xfffffff0u), {});
  EXPECT_EQ(c.peer_credit(), 84u);
  // Credit never exceeds what the guest advertises.
  c.on_guest_packet(from_guest(VsockOp::kCreditUpdate, 7, 0), {});
  EXPECT_EQ(c.peer_credit(), 7u);
}

TEST(VsockConnection, GuestDataIsBufferedAndCreditIsEnforced) {
  auto c = established_host_conn(small_opts());
  c.on_guest_packet(from_guest(VsockOp::kRw), bytes("0123456789"));
  auto pending = c.host_write_pending();
  EXPECT_EQ(std::string(pending.begin(), pending.end()), "0123456789");
  c.on_guest_packet(from_guest(VsockOp::kRw), bytes("abcdef"));  // exactly 16 buffered
  EXPECT_FALSE(c.protocol_error());
  c.on_guest_packet(from_guest(VsockOp::kRw), bytes("X"));  // beyond our credit
  EXPECT_TRUE(c.protocol_error());
  EXPECT_TRUE(c.host_write_pending().empty());
  std::vector<uint8_t> p;
  auto rst = next(c, p);
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->vsock_op(), VsockOp::kRst);
}

TEST(VsockConnection, CreditUpdateAfterForwardingHalfTheBuffer) {
  auto c = established_host_conn(small_opts());
  c.on_guest_packet(from_guest(VsockOp::kRw), bytes("0123456789"));
  c.on_host_written(4);
  std::vector<uint8_t> p;
  EXPECT_FALSE(next(c, p));  // 4 < 8: not yet
  c.on_host_written(4);
  auto up = next(c, p);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->vsock_op(), VsockOp::kCreditUpdate);
  EXPECT_EQ(up->fwd_cnt, 8u);
  EXPECT_EQ(up->buf_alloc, 16u);
}

TEST(VsockConnection, CreditRequestIsAnswered) {
  auto c = established_host_conn({});
  c.on_guest_packet(from_guest(VsockOp::kCreditRequest), {});
  std::vector<uint8_t> p;
  auto up = next(c, p);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->vsock_op(), VsockOp::kCreditUpdate);
}

TEST(VsockConnection, HostBufferIsBounded) {
  auto c = established_host_conn(small_opts());
  EXPECT_EQ(c.host_read_space(), 32u);
  c.on_host_data(bytes(std::string(40, 'a')));  // more than offered: truncated
  EXPECT_EQ(c.host_read_space(), 0u);
}

TEST(VsockConnection, GuestShutdownSendThenHostWriteSideCloses) {
  auto c = established_host_conn({});
  c.on_guest_packet(from_guest(VsockOp::kRw), bytes("bye"));
  c.on_guest_packet(from_guest(VsockOp::kShutdown, 1024, 0, kVsockShutdownSend), {});
  EXPECT_FALSE(c.take_host_shutdown_write());  // data first
  c.on_host_written(3);
  EXPECT_TRUE(c.take_host_shutdown_write());
  EXPECT_FALSE(c.take_host_shutdown_write());  // once
  EXPECT_EQ(c.state(), VsockConnection::State::kEstablished);  // host may still answer
  c.on_host_data(bytes("reply"));
  std::vector<uint8_t> p;
  ASSERT_TRUE(next(c, p));
  EXPECT_EQ(std::string(p.begin(), p.end()), "reply");
}

TEST(VsockConnection, RwAfterGuestShutdownSendIsAViolation) {
  auto c = established_host_conn({});
  c.on_guest_packet(from_guest(VsockOp::kShutdown, 1024, 0, kVsockShutdownSend), {});
  c.on_guest_packet(from_guest(VsockOp::kRw), bytes("x"));
  EXPECT_TRUE(c.protocol_error());
}

TEST(VsockConnection, FullGuestShutdownIsAnsweredWithRstAfterFlush) {
  auto c = established_host_conn({});
  c.on_host_data(bytes("unread"));
  c.on_guest_packet(from_guest(VsockOp::kRw), bytes("last"));
  c.on_guest_packet(
      from_guest(VsockOp::kShutdown, 1024, 0, kVsockShutdownSend | kVsockShutdownRcv), {});
  EXPECT_EQ(c.host_read_space(), 0u);  // guest will not read any more
  std::vector<uint8_t> p;
  EXPECT_FALSE(next(c, p));  // "last" not flushed yet, no RST
  c.on_host_written(4);
  auto rst = next(c, p);
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->vsock_op(), VsockOp::kRst);
  EXPECT_TRUE(c.closed());
}

TEST(VsockConnection, HostEofSendsShutdownAfterData) {
  auto c = established_host_conn({});
  c.on_host_data(bytes("tail"));
  c.on_host_eof();
  EXPECT_EQ(c.host_read_space(), 0u);
  std::vector<uint8_t> p;
  auto rw = next(c, p);
  ASSERT_TRUE(rw);
  EXPECT_EQ(rw->vsock_op(), VsockOp::kRw);
  auto sd = next(c, p);
  ASSERT_TRUE(sd);
  EXPECT_EQ(sd->vsock_op(), VsockOp::kShutdown);
  EXPECT_EQ(sd->flags, kVsockShutdownSend);
  EXPECT_FALSE(next(c, p));
  // Guest closes too: both directions done -> RST.
  c.on_guest_packet(
      from_guest(VsockOp::kShutdown, 1024, 0, kVsockShutdownSend | kVsockShutdownRcv), {});
  auto rst = next(c, p);
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->vsock_op(), VsockOp::kRst);
  EXPECT_TRUE(c.closed());
}

TEST(VsockConnection, GuestRstClosesSilently) {
  auto c = established_host_conn({});
  c.on_host_data(bytes("pending"));
  c.on_guest_packet(from_guest(VsockOp::kRst), {});
  EXPECT_TRUE(c.closed());
  std::vector<uint8_t> p;
  EXPECT_FALSE(next(c, p));
}

TEST(VsockConnection, HostErrorResetsStream) {
  auto c = established_host_conn({});
  c.on_host_error();
  std::vector<uint8_t> p;
  auto rst = next(c, p);
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->vsock_op(), VsockOp::kRst);
  EXPECT_TRUE(c.closed());
}

TEST(VsockConnection, DuplicateRequestOnOpenStreamResets) {
  auto c = established_host_conn({});
  c.on_guest_packet(from_guest(VsockOp::kRequest), {});
  EXPECT_TRUE(c.protocol_error());
  EXPECT_EQ(c.state(), VsockConnection::State::kClosing);
}

}  // namespace
}  // namespace kiln::vmm::devices
