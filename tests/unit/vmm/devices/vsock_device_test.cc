// virtio-vsock device with real Unix sockets: the hybrid handshake in both directions,
// data both ways, shutdown/reset, transport reset, and hostile guest packets.
#include "vmm/devices/vsock_device.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "tests/unit/vmm/devices/vsock_guest_fixture.h"

namespace kiln::vmm::devices {
namespace {

using testing::kCid;
using testing::kRxBufs;
using testing::kTxBufs;
using testing::Packet;
using virtio::testing::VirtqBuilder;
using Clock = std::chrono::steady_clock;

UniqueFd unix_connect(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return UniqueFd();
  return fd;
}

UniqueFd unix_listen(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(fd.get(), 8), 0);
  return fd;
}

void send_str(int fd, const std::string& s) {
  ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
}

class VsockTest : public testing::VsockGuestFixture {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-vsock-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    uds_ = dir_ + "/v.sock";
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    make_device();
  }
  void make_device(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    dev_.reset();
    VsockDeviceConfig cfg;
    cfg.guest_cid = kCid;
    cfg.uds_path = uds_;
    cfg.connection.buf_alloc = 64 * 1024;
    cfg.max_connections = 8;
    cfg.handshake_timeout = timeout;
    cfg.connect_timeout = timeout;
    auto dev = VsockDevice::create(cfg, *loop_);
    ASSERT_TRUE(dev.ok()) << dev.error().message;
    dev_ = *dev;
  }
  void TearDown() override {
    dev_.reset();
    for (const char* suffix : {"_5000", "_6000", "_7000"}) ::unlink((uds_ + suffix).c_str());
    ::unlink(uds_.c_str());
    ::rmdir(dir_.c_str());
  }

  // Runs the event loop until pred() holds (5 s deadline, no fixed sleeps).
  bool pump_until(const std::function<bool()>& pred) {
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!pred()) {
      if (Clock::now() > deadline) return false;
      if (!loop_->run_once(10).ok()) return false;
    }
    return true;
  }
  // Pumps until the guest receives a packet with op `op`; collects everything seen.
  std::optional<Packet> wait_guest_packet(VsockOp op, std::vector<Packet>* seen = nullptr) {
    std::optional<Packet> found;
    bool ok = pump_until([&] {
      for (auto& p : guest_recv()) {
        if (seen) seen->push_back(p);
        if (!found && p.hdr.vsock_op() == op) found = p;
      }
      return found.has_value();
    });
    if (!ok) return std::nullopt;
    return found;
  }
  // Reads from a host socket while pumping, until `n` bytes or EOF.
  std::string host_read(int fd, size_t n, bool* eof = nullptr) {
    std::string got;
    pump_until([&] {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) {
        char buf[4096];
        ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r == 0) {
          if (eof) *eof = true;
          return true;
        }
        if (r > 0) got.append(buf, static_cast<size_t>(r));
      }
      return got.size() >= n;
    });
    return got;
  }

  // Host-initiated connection up to "OK <port>\n"; returns (client fd, host port).
  std::pair<UniqueFd, uint32_t> host_connect(uint32_t guest_port) {
    UniqueFd client = unix_connect(uds_);
    EXPECT_TRUE(client.valid());
    send_str(client.get(), "CONNECT " + std::to_string(guest_port) + "\n");
    auto req = wait_guest_packet(VsockOp::kRequest);
    EXPECT_TRUE(req.has_value());
    if (!req) return {std::move(client), 0};
    EXPECT_EQ(req->hdr.dst_port, guest_port);
    EXPECT_EQ(req->hdr.src_cid, kVsockHostCid);
    EXPECT_EQ(req->hdr.dst_cid, kCid);
    guest_send(guest_hdr(VsockOp::kResponse, guest_port, req->hdr.src_port));
    std::string ok = host_read(client.get(), 1);
    ok += host_read(client.get(), 0);
    while (!ok.empty() && ok.back() != '\n') ok += host_read(client.get(), ok.size() + 1);
    EXPECT_EQ(ok, "OK " + std::to_string(req->hdr.src_port) + "\n");
    return {std::move(client), req->hdr.src_port};
  }

  std::string dir_, uds_;
  std::unique_ptr<EventLoop> loop_;
};

TEST_F(VsockTest, ConfigHasGuestCid) {
  uint8_t cfg[8];
  dev_->read_config(0, cfg);
  uint64_t cid;
  std::memcpy(&cid, cfg, 8);
  EXPECT_EQ(cid, kCid);
  EXPECT_EQ(dev_->device_id(), 19u);
  EXPECT_EQ(dev_->queue_max_sizes().size(), 3u);
}

TEST_F(VsockTest, CreateRefusesBadConfig) {
  VsockDeviceConfig cfg;
  cfg.uds_path = uds_;  // already bound by the fixture
  EXPECT_FALSE(VsockDevice::create(cfg, *loop_).ok());
  cfg.uds_path = dir_ + "/" + std::string(200, 'x');
  EXPECT_FALSE(VsockDevice::create(cfg, *loop_).ok());
  cfg.uds_path = dir_ + "/other.sock";
  cfg.guest_cid = 2;
  EXPECT_FALSE(VsockDevice::create(cfg, *loop_).ok());
}

TEST_F(VsockTest, HostInitiatedConnectionCarriesDataBothWays) {
  activate();
  auto [client, host_port] = host_connect(52);
  EXPECT_EQ(host_port, VsockDevice::kFirstLocalPort);

  send_str(client.get(), "hello");
  auto rw = wait_guest_packet(VsockOp::kRw);
  ASSERT_TRUE(rw);
  EXPECT_EQ(rw->payload, "hello");
  EXPECT_EQ(rw->hdr.src_port, host_port);
  EXPECT_EQ(rw->hdr.dst_port, 52u);

  guest_send(guest_hdr(VsockOp::kRw, 52, host_port), "world");
  EXPECT_EQ(host_read(client.get(), 5), "world");

  // Host half-closes: the guest gets SHUTDOWN(SEND) and may still talk.
  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  auto sd = wait_guest_packet(VsockOp::kShutdown);
  ASSERT_TRUE(sd);
  EXPECT_EQ(sd->hdr.flags, kVsockShutdownSend);
  guest_send(guest_hdr(VsockOp::kRw, 52, host_port), "late");
  EXPECT_EQ(host_read(client.get(), 4), "late");

  // Guest closes: RST ends it, the host sees EOF.
  VsockHeader bye = guest_hdr(VsockOp::kShutdown, 52, host_port);
  bye.flags = kVsockShutdownRcv | kVsockShutdownSend;
  guest_send(bye);
  ASSERT_TRUE(wait_guest_packet(VsockOp::kRst));
  bool eof = false;
  host_read(client.get(), 1, &eof);
  EXPECT_TRUE(eof);
  EXPECT_EQ(dev_->connection_count(), 0u);
  auto ctr = dev_->counters();
  EXPECT_EQ(ctr.bytes_to_guest, 5u);
  EXPECT_EQ(ctr.bytes_from_guest, 9u);
  EXPECT_EQ(ctr.errors, 0u);
}

TEST_F(VsockTest, HostConnectBeforeActivationIsDeliveredLater) {
  UniqueFd client = unix_connect(uds_);
  ASSERT_TRUE(client.valid());
  send_str(client.get(), "CONNECT 10000\n");
  ASSERT_TRUE(pump_until([&] { return dev_->connection_count() == 1; }));
  activate();
  auto req = guest_recv();
  ASSERT_EQ(req.size(), 1u);
  EXPECT_EQ(req[0].hdr.vsock_op(), VsockOp::kRequest);
  EXPECT_EQ(req[0].hdr.dst_port, 10000u);
}

TEST_F(VsockTest, BytesAfterConnectLineAreStreamData) {
  activate();
  UniqueFd client = unix_connect(uds_);
  send_str(client.get(), "CONNECT 52\nearly-bytes");
  auto req = wait_guest_packet(VsockOp::kRequest);
  ASSERT_TRUE(req);
  guest_send(guest_hdr(VsockOp::kResponse, 52, req->hdr.src_port));
  auto rw = wait_guest_packet(VsockOp::kRw);
  ASSERT_TRUE(rw);
  EXPECT_EQ(rw->payload, "early-bytes");
}

TEST_F(VsockTest, GuestRefusesHostConnection) {
  activate();
  UniqueFd client = unix_connect(uds_);
  send_str(client.get(), "CONNECT 53\n");
  auto req = wait_guest_packet(VsockOp::kRequest);
  ASSERT_TRUE(req);
  guest_send(guest_hdr(VsockOp::kRst, 53, req->hdr.src_port));
  bool eof = false;
  EXPECT_EQ(host_read(client.get(), 1, &eof), "");
  EXPECT_TRUE(eof);
}

TEST_F(VsockTest, BadHandshakesAreClosed) {
  activate();
  for (std::string bad : std::vector<std::string>{"HELLO 52\n", "CONNECT x\n", std::string(100, 'C')}) {
    UniqueFd client = unix_connect(uds_);
    send_str(client.get(), bad);
    bool eof = false;
    host_read(client.get(), 1, &eof);
    EXPECT_TRUE(eof) << bad;
  }
  EXPECT_EQ(dev_->connection_count(), 0u);
  EXPECT_TRUE(guest_recv().empty());
}

TEST_F(VsockTest, ConnectionLimitRefusesExtraClients) {
  activate();
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(unix_connect(uds_));
    send_str(clients.back().get(), "CONNECT " + std::to_string(100 + i) + "\n");
  }
  ASSERT_TRUE(pump_until([&] { return dev_->connection_count() == 8; }));
  UniqueFd extra = unix_connect(uds_);
  bool eof = false;
  host_read(extra.get(), 1, &eof);
  EXPECT_TRUE(eof);
}

TEST_F(VsockTest, GuestInitiatedConnection) {
  activate();
  UniqueFd listener = unix_listen(uds_ + "_5000");
  guest_send(guest_hdr(VsockOp::kRequest, 1234, 5000));
  auto resp = wait_guest_packet(VsockOp::kResponse);
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->hdr.src_port, 5000u);
  EXPECT_EQ(resp->hdr.dst_port, 1234u);
  UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(server.valid());

  send_str(server.get(), "ping");
  auto rw = wait_guest_packet(VsockOp::kRw);
  ASSERT_TRUE(rw);
  EXPECT_EQ(rw->payload, "ping");
  guest_send(guest_hdr(VsockOp::kRw, 1234, 5000), "pong");
  EXPECT_EQ(host_read(server.get(), 4), "pong");

  guest_send(guest_hdr(VsockOp::kRst, 1234, 5000));
  bool eof = false;
  host_read(server.get(), 1, &eof);
  EXPECT_TRUE(eof);
  EXPECT_EQ(dev_->connection_count(), 0u);
}

TEST_F(VsockTest, HostServerClosingResetsGuestWhenItWrites) {
  activate();
  UniqueFd listener = unix_listen(uds_ + "_5000");
  guest_send(guest_hdr(VsockOp::kRequest, 1234, 5000));
  ASSERT_TRUE(wait_guest_packet(VsockOp::kResponse));
  UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  send_str(server.get(), "bye");
  server.reset();  // full close
  std::vector<Packet> seen;
  auto sd = wait_guest_packet(VsockOp::kShutdown, &seen);
  ASSERT_TRUE(sd);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen[0].payload, "bye");  // data first, then SHUTDOWN
  guest_send(guest_hdr(VsockOp::kRw, 1234, 5000), "anyone?");
  ASSERT_TRUE(wait_guest_packet(VsockOp::kRst));
  EXPECT_EQ(dev_->connection_count(), 0u);
}

TEST_F(VsockTest, GuestConnectToClosedPortGetsRst) {
  activate();
  guest_send(guest_hdr(VsockOp::kRequest, 1234, 6000));
  auto rst = wait_guest_packet(VsockOp::kRst);
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.src_port, 6000u);
  EXPECT_EQ(rst->hdr.dst_port, 1234u);
  EXPECT_EQ(rst->hdr.dst_cid, kCid);
  EXPECT_EQ(dev_->connection_count(), 0u);
}

TEST_F(VsockTest, PacketsForUnknownConnectionsGetRst) {
  activate();
  guest_send(guest_hdr(VsockOp::kRw, 1, 2), "data");
  auto rst = guest_recv();
  ASSERT_EQ(rst.size(), 1u);
  EXPECT_EQ(rst[0].hdr.vsock_op(), VsockOp::kRst);
  guest_send(guest_hdr(VsockOp::kRst, 1, 2));  // a RST is never answered
  EXPECT_TRUE(guest_recv().empty());
}

TEST_F(VsockTest, HostileTxPacketsAreDropped) {
  activate();
  VsockHeader bad_op = guest_hdr(static_cast<VsockOp>(42), 1, 2);
  guest_send(bad_op);
  VsockHeader spoofed = guest_hdr(VsockOp::kRequest, 1, 2);
  spoofed.src_cid = 99;
  guest_send(spoofed);
  VsockHeader too_long = guest_hdr(VsockOp::kRw, 1, 2);
  too_long.len = 1000;  // only 4 bytes follow
  guest_send(too_long, "abcd");
  // Header split over a too-short buffer.
  virtio::testing::write_bytes(mem_, kTxBufs, std::vector<uint8_t>(20, 0));
  tx_.add_chain({{kTxBufs, 20, false}});
  ASSERT_TRUE(dev_->process_queue(VsockDevice::kTxQueue).ok());
  // Device-writable tx buffer.
  tx_.add_chain({{kTxBufs, 64, true}});
  ASSERT_TRUE(dev_->process_queue(VsockDevice::kTxQueue).ok());
  // Descriptor loop.
  tx_.set_desc(200, kTxBufs, 44, virtio::kDescFlagNext, 200);
  tx_.publish(200);
  ASSERT_TRUE(dev_->process_queue(VsockDevice::kTxQueue).ok());

  EXPECT_TRUE(guest_recv().empty());
  EXPECT_EQ(dev_->counters().errors, 6u);
  EXPECT_EQ(tx_.used_idx(), 6);
  // Seqpacket is not offered: answered with RST.
  VsockHeader seq = guest_hdr(VsockOp::kRequest, 1, 5000);
  seq.type = 2;
  guest_send(seq);
  auto rst = guest_recv();
  ASSERT_EQ(rst.size(), 1u);
  EXPECT_EQ(rst[0].hdr.vsock_op(), VsockOp::kRst);
}

TEST_F(VsockTest, UnusableRxBuffersAreReturnedEmpty) {
  activate(0);
  rx_.add_chain({{kRxBufs, 20, true}});           // smaller than a header
  rx_.add_chain({{kRxBufs, 64, false}});          // device-readable
  rx_.add_chain({{kRxBufs + 0x2000, 4096, true}});  // fine
  guest_send(guest_hdr(VsockOp::kRw, 1, 2), "x");   // produces one RST
  EXPECT_EQ(rx_.used_idx(), 3);
  EXPECT_EQ(rx_.used_elem(0).second, 0u);
  EXPECT_EQ(rx_.used_elem(1).second, 0u);
  EXPECT_EQ(rx_.used_elem(2).second, kVsockHeaderSize);
  EXPECT_EQ(dev_->counters().errors, 2u);
}

TEST_F(VsockTest, GuestOverrunningCreditIsReset) {
  activate();
  auto [client, host_port] = host_connect(52);
  std::string chunk(kVsockMaxPayload, 'z');
  // The device advertised 64 KiB; the client does not read, so the second chunk overruns.
  // Make the host side stop draining by filling the socket buffer first.
  int small = 4096;
  ::setsockopt(client.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::vector<Packet> seen;
  for (int i = 0; i < 40 && dev_->connection_count() == 1; ++i) {
    guest_send(guest_hdr(VsockOp::kRw, 52, host_port), chunk);
    for (auto& p : guest_recv()) seen.push_back(p);
  }
  bool got_rst = false;
  for (auto& p : seen) got_rst |= p.hdr.vsock_op() == VsockOp::kRst;
  EXPECT_TRUE(got_rst);
  EXPECT_GE(dev_->counters().errors, 1u);
}

TEST_F(VsockTest, TransportResetEvent) {
  activate();
  auto [client, host_port] = host_connect(52);
  EXPECT_FALSE(dev_->send_transport_reset().ok());  // no event buffer yet
  ev_.add_chain({{0x30000, 8, true}});
  ASSERT_TRUE(dev_->send_transport_reset().ok());
  EXPECT_EQ(ev_.used_idx(), 1);
  EXPECT_EQ(ev_.used_elem(0).second, 4u);
  EXPECT_EQ(*mem_.read_obj<uint32_t>(GuestAddress(0x30000)), kVsockEventTransportReset);
  EXPECT_EQ(dev_->connection_count(), 0u);
  bool eof = false;
  host_read(client.get(), 1, &eof);
  EXPECT_TRUE(eof);
}

// After a transport reset (restore), a host connection made before the driver took the event
// in would be accepted and then reset by it: its REQUEST waits until the driver re-posts an
// event buffer (notifying the event queue), then goes out.
TEST_F(VsockTest, HostConnectAfterTransportResetWaitsForTheDriver) {
  activate();
  ev_.add_chain({{0x30000, 8, true}});
  ASSERT_TRUE(dev_->send_transport_reset().ok());
  UniqueFd client = unix_connect(uds_);
  ASSERT_TRUE(client.valid());
  send_str(client.get(), "CONNECT 10000\n");
  ASSERT_TRUE(pump_until([&] { return dev_->connection_count() == 1; }));
  EXPECT_TRUE(guest_recv().empty()) << "REQUEST delivered before the driver handled the reset";
  ev_.add_chain({{0x30008, 8, true}});  // the driver re-posts its event buffer and notifies
  ASSERT_TRUE(dev_->process_queue(2).ok());
  auto req = guest_recv();
  ASSERT_EQ(req.size(), 1u);
  EXPECT_EQ(req[0].hdr.vsock_op(), VsockOp::kRequest);
  EXPECT_EQ(req[0].hdr.dst_port, 10000u);
}

TEST_F(VsockTest, ResetDropsConnections) {
  activate();
  auto [client, host_port] = host_connect(52);
  dev_->reset();
  EXPECT_EQ(dev_->connection_count(), 0u);
  bool eof = false;
  host_read(client.get(), 1, &eof);
  EXPECT_TRUE(eof);
  EXPECT_FALSE(dev_->send_transport_reset().ok());
}

TEST_F(VsockTest, CorruptRxRingIsFatal) {
  activate(0);
  rx_.set_avail_idx(1000);  // more new entries than the queue holds
  // A packet that needs an answer makes the device look at the rx ring.
  auto hb = encode_vsock_header(guest_hdr(VsockOp::kRw, 1, 2));
  virtio::testing::write_bytes(mem_, kTxBufs, std::vector<uint8_t>(hb.begin(), hb.end()));
  tx_.add_chain({{kTxBufs, kVsockHeaderSize, false}});
  EXPECT_FALSE(dev_->process_queue(VsockDevice::kTxQueue).ok());
}

TEST_F(VsockTest, SilentHostClientTimesOut) {
  make_device(std::chrono::milliseconds(1));
  activate();
  UniqueFd client = unix_connect(uds_);
  send_str(client.get(), "CONN");  // never finishes the line
  bool eof = false;
  host_read(client.get(), 1, &eof);
  EXPECT_TRUE(eof);
}

TEST_F(VsockTest, UnansweredRequestTimesOut) {
  make_device(std::chrono::milliseconds(1));
  UniqueFd client = unix_connect(uds_);
  send_str(client.get(), "CONNECT 52\n");
  // Before the driver is up nothing is sent, so nothing can time out.
  ASSERT_TRUE(pump_until([&] { return dev_->connection_count() == 1; }));
  activate();
  std::vector<Packet> seen = guest_recv();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].hdr.vsock_op(), VsockOp::kRequest);
  auto rst = wait_guest_packet(VsockOp::kRst);  // the guest never answers
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.src_port, seen[0].hdr.src_port);
  bool eof = false;
  host_read(client.get(), 1, &eof);
  EXPECT_TRUE(eof);
  EXPECT_EQ(dev_->connection_count(), 0u);
}

TEST_F(VsockTest, DestructorRemovesSocketFile) {
  dev_.reset();
  EXPECT_NE(::access(uds_.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace kiln::vmm::devices
