// virtio-vsock device against a fake backend (no sockets): what the device asks of a backend
// (dial for the guest, adopt host connections, read/write/shutdown/watch a stream, the shared
// connection limit) and what it does with stream readiness, errors and resets.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "tests/unit/vmm/devices/vsock_guest_fixture.h"
#include "vmm/devices/vsock_backend.h"
#include "vmm/devices/vsock_device.h"

namespace kiln::vmm::devices {
namespace {

using testing::kCid;
using testing::Packet;

// The host end of one stream, as the test sees and drives it.
struct FakePeer {
  std::string to_device;  // sent by the host program, not read by the device yet
  bool eof = false;       // after to_device, the host program closed its side
  std::string written;    // what the device wrote towards the host program
  size_t write_room = std::numeric_limits<size_t>::max();  // bytes accepted before kWouldBlock
  bool shut_wr = false;
  bool closed = false;
  bool watching = false;
  StreamInterest interest;
  VsockHostStream::ReadyCallback ready;

  void notify(StreamEvents ev) { ready(ev); }  // as the backend's event loop would
};

class FakeStream : public VsockHostStream {
 public:
  explicit FakeStream(std::shared_ptr<FakePeer> peer) : peer_(std::move(peer)) {}
  ~FakeStream() override {
    peer_->closed = true;
    peer_->watching = false;
  }
  StreamIoResult read(std::span<uint8_t> buf) override {
    if (peer_->to_device.empty()) return {peer_->eof ? StreamIo::kEof : StreamIo::kWouldBlock, 0};
    size_t n = std::min(buf.size(), peer_->to_device.size());
    std::copy_n(peer_->to_device.begin(), n, buf.begin());
    peer_->to_device.erase(0, n);
    return {StreamIo::kOk, n};
  }
  StreamIoResult write(std::span<const uint8_t> data) override {
    size_t n = std::min(data.size(), peer_->write_room);
    if (n == 0) return {StreamIo::kWouldBlock, 0};
    peer_->written.append(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
    peer_->write_room -= n;
    return {StreamIo::kOk, n};
  }
  void shutdown_write() override { peer_->shut_wr = true; }
  Status watch(StreamInterest interest, ReadyCallback on_ready) override {
    if (!peer_->watching) peer_->ready = std::move(on_ready);
    peer_->watching = true;
    peer_->interest = interest;
    return ok_status();
  }
  void stop_watching() override { peer_->watching = false; }

 private:
  std::shared_ptr<FakePeer> peer_;
};

class FakeBackend : public VsockBackend {
 public:
  Status start(VsockBackendSink& sink) override {
    sink_ = &sink;
    return ok_status();
  }
  Result<std::unique_ptr<VsockHostStream>> connect(uint32_t port) override {
    if (!listening.count(port)) return make_error("nobody listens");
    auto peer = std::make_shared<FakePeer>();
    dialed[port] = peer;
    return std::unique_ptr<VsockHostStream>(new FakeStream(peer));
  }
  size_t pending_count() const override { return pending; }

  // A host program connects to guest port `guest_port`.
  std::shared_ptr<FakePeer> host_connect(uint32_t guest_port) {
    auto peer = std::make_shared<FakePeer>();
    sink_->on_host_connect(std::make_unique<FakeStream>(peer), guest_port);
    return peer;
  }

  std::set<uint32_t> listening;                          // host ports with a listener
  std::map<uint32_t, std::shared_ptr<FakePeer>> dialed;  // last stream dialed per host port
  size_t pending = 0;

 private:
  VsockBackendSink* sink_ = nullptr;
};

class VsockFakeBackendTest : public testing::VsockGuestFixture {
 protected:
  void SetUp() override {
    auto loop = EventLoop::create();  // the device's deadline timer lives on it
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    VsockDeviceConfig cfg;
    cfg.guest_cid = kCid;
    cfg.connection.buf_alloc = 64 * 1024;
    cfg.max_connections = 4;
    cfg.connect_timeout = std::chrono::seconds(60);
    auto backend = std::make_unique<FakeBackend>();
    backend_ = backend.get();
    auto dev = VsockDevice::create(cfg, *loop_, std::move(backend));
    ASSERT_TRUE(dev.ok()) << dev.error().message;
    dev_ = *dev;
  }
  void TearDown() override { dev_.reset(); }  // before the loop it registered with

  // Host-initiated stream, answered by the guest; returns the peer and the host port.
  std::pair<std::shared_ptr<FakePeer>, uint32_t> establish_from_host(uint32_t guest_port) {
    auto peer = backend_->host_connect(guest_port);
    auto req = guest_recv();
    EXPECT_EQ(req.size(), 1u);
    if (req.empty()) return {peer, 0};
    EXPECT_EQ(req[0].hdr.vsock_op(), VsockOp::kRequest);
    guest_send(guest_hdr(VsockOp::kResponse, guest_port, req[0].hdr.src_port));
    return {peer, req[0].hdr.src_port};
  }

  std::unique_ptr<EventLoop> loop_;
  FakeBackend* backend_ = nullptr;  // owned by dev_
};

TEST_F(VsockFakeBackendTest, HostConnectionCarriesDataBothWays) {
  activate();
  auto [peer, host_port] = establish_from_host(52);
  EXPECT_EQ(host_port, VsockDevice::kFirstLocalPort);
  EXPECT_EQ(peer->written, "OK 1073741824\n");  // the hybrid-vsock reply goes first
  EXPECT_TRUE(peer->watching);
  EXPECT_TRUE(peer->interest.readable);

  peer->to_device = "hello";
  peer->notify({.readable = true});
  auto rw = guest_recv();
  ASSERT_EQ(rw.size(), 1u);
  EXPECT_EQ(rw[0].hdr.vsock_op(), VsockOp::kRw);
  EXPECT_EQ(rw[0].payload, "hello");
  EXPECT_EQ(rw[0].hdr.dst_port, 52u);

  guest_send(guest_hdr(VsockOp::kRw, 52, host_port), "world");
  EXPECT_EQ(peer->written, "OK 1073741824\nworld");

  peer->eof = true;  // the host program half-closes
  peer->notify({.readable = true});
  auto sd = guest_recv();
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd[0].hdr.vsock_op(), VsockOp::kShutdown);
  EXPECT_EQ(sd[0].hdr.flags, kVsockShutdownSend);

  VsockHeader bye = guest_hdr(VsockOp::kShutdown, 52, host_port);
  bye.flags = kVsockShutdownRcv | kVsockShutdownSend;
  guest_send(bye);
  auto rst = guest_recv();
  ASSERT_EQ(rst.size(), 1u);
  EXPECT_EQ(rst[0].hdr.vsock_op(), VsockOp::kRst);
  EXPECT_TRUE(peer->closed);
  EXPECT_EQ(dev_->connection_count(), 0u);
  EXPECT_EQ(dev_->counters().bytes_to_guest, 5u);
  EXPECT_EQ(dev_->counters().bytes_from_guest, 5u);
  EXPECT_EQ(dev_->counters().errors, 0u);
}

TEST_F(VsockFakeBackendTest, HostConnectionWaitsForTheDriver) {
  auto peer = backend_->host_connect(10000);
  EXPECT_EQ(dev_->connection_count(), 1u);
  activate();
  auto req = guest_recv();
  ASSERT_EQ(req.size(), 1u);
  EXPECT_EQ(req[0].hdr.vsock_op(), VsockOp::kRequest);
  EXPECT_EQ(req[0].hdr.dst_port, 10000u);
}

TEST_F(VsockFakeBackendTest, GuestConnectionsDialTheBackend) {
  activate();
  backend_->listening = {5000};
  guest_send(guest_hdr(VsockOp::kRequest, 1234, 5000));
  auto resp = guest_recv();
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_EQ(resp[0].hdr.vsock_op(), VsockOp::kResponse);
  ASSERT_TRUE(backend_->dialed.count(5000));
  auto peer = backend_->dialed[5000];
  EXPECT_TRUE(peer->written.empty());  // no "OK" line towards a host listener
  guest_send(guest_hdr(VsockOp::kRw, 1234, 5000), "ping");
  EXPECT_EQ(peer->written, "ping");

  guest_send(guest_hdr(VsockOp::kRequest, 1234, 6000));  // nobody listens there
  auto rst = guest_recv();
  ASSERT_EQ(rst.size(), 1u);
  EXPECT_EQ(rst[0].hdr.vsock_op(), VsockOp::kRst);
  EXPECT_FALSE(backend_->dialed.count(6000));
  EXPECT_EQ(dev_->connection_count(), 1u);
}

TEST_F(VsockFakeBackendTest, SlowHostIsWatchedForWritability) {
  activate();
  backend_->listening = {5000};
  guest_send(guest_hdr(VsockOp::kRequest, 1234, 5000));
  guest_recv();
  auto peer = backend_->dialed[5000];
  peer->write_room = 3;
  guest_send(guest_hdr(VsockOp::kRw, 1234, 5000), "abcdef");
  EXPECT_EQ(peer->written, "abc");
  EXPECT_TRUE(peer->interest.writable);
  peer->write_room = 100;
  peer->notify({.writable = true});
  EXPECT_EQ(peer->written, "abcdef");
  EXPECT_FALSE(peer->interest.writable);
}

TEST_F(VsockFakeBackendTest, ConnectionLimitCountsTheBackendsPendingConnections) {
  activate();
  backend_->listening = {5000};
  backend_->pending = 4;  // e.g. host clients still in their handshake
  guest_send(guest_hdr(VsockOp::kRequest, 1234, 5000));
  auto rst = guest_recv();
  ASSERT_EQ(rst.size(), 1u);
  EXPECT_EQ(rst[0].hdr.vsock_op(), VsockOp::kRst);
  EXPECT_EQ(dev_->counters().errors, 1u);
  backend_->pending = 0;
  guest_send(guest_hdr(VsockOp::kRequest, 1234, 5000));
  auto resp = guest_recv();
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_EQ(resp[0].hdr.vsock_op(), VsockOp::kResponse);
}

TEST_F(VsockFakeBackendTest, StreamErrorResetsTheGuest) {
  activate();
  auto [peer, host_port] = establish_from_host(52);
  peer->notify({.error = true});
  auto rst = guest_recv();
  ASSERT_EQ(rst.size(), 1u);
  EXPECT_EQ(rst[0].hdr.vsock_op(), VsockOp::kRst);
  EXPECT_EQ(rst[0].hdr.src_port, host_port);
  EXPECT_TRUE(peer->closed);
  EXPECT_EQ(dev_->connection_count(), 0u);
}

TEST_F(VsockFakeBackendTest, ResetClosesStreams) {
  activate();
  auto [peer, host_port] = establish_from_host(52);
  dev_->reset();
  EXPECT_TRUE(peer->closed);
  EXPECT_EQ(dev_->connection_count(), 0u);
  EXPECT_FALSE(dev_->active());
}

TEST_F(VsockFakeBackendTest, TransportResetClosesStreams) {
  activate();
  auto [peer, host_port] = establish_from_host(52);
  ev_.add_chain({{0x30000, 8, true}});
  ASSERT_TRUE(dev_->send_transport_reset().ok());
  EXPECT_TRUE(peer->closed);
  EXPECT_EQ(dev_->connection_count(), 0u);
  // A host connection now waits until the driver has taken the reset in.
  auto next = backend_->host_connect(53);
  EXPECT_TRUE(guest_recv().empty());
  ev_.add_chain({{0x30008, 8, true}});
  ASSERT_TRUE(dev_->process_queue(VsockDevice::kEventQueue).ok());
  auto req = guest_recv();
  ASSERT_EQ(req.size(), 1u);
  EXPECT_EQ(req[0].hdr.dst_port, 53u);
}

}  // namespace
}  // namespace kiln::vmm::devices
