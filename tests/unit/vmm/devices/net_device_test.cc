// virtio-net device against a datagram socket pair standing in for the TAP (one datagram =
// one frame with its virtio header): transmit and receive paths, mergeable buffers, hostile
// chains and headers, and the rate limiters with an injected clock.
#include "vmm/devices/net_device.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/unit/vmm/virtio/virtq_builder.h"
#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::devices {
namespace {

using virtio::feature_bit;
using virtio::testing::VirtqBuilder;

constexpr uint64_t kRxBufs = 0x40000;  // receive buffers, 0x10000 apart
constexpr uint64_t kTxBufs = 0x100000;
constexpr uint64_t kVersion1 = feature_bit(virtio::kFeatureVersion1);

std::vector<uint8_t> frame_bytes(size_t len, uint8_t seed) {
  std::vector<uint8_t> f(len);
  for (size_t i = 0; i < len; ++i) f[i] = static_cast<uint8_t>(seed + i);
  return f;
}

class NetDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    peer_.reset(sv[1]);
    // Room for the largest frames in the pair's buffers.
    int big = 1 << 20;
    ASSERT_EQ(::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big), 0);
    ASSERT_EQ(::setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big), 0);
    backend_fd_ = UniqueFd(sv[0]);
    loop_ = std::move(EventLoop::create().value());
  }

  void create(NetDeviceConfig config = {}) {
    config.clock = [this] { return now_; };
    auto d = NetDevice::create(config, std::make_unique<FdNetBackend>(std::move(backend_fd_)), *loop_);
    ASSERT_TRUE(d.ok()) << d.error().message;
    dev_ = *d;
  }
  void activate(uint64_t features = kVersion1 | feature_bit(kNetFeatureMrgRxbuf)) {
    std::vector<virtio::Queue> qs{rx_.queue(256), tx_.queue(256)};
    for (virtio::Queue& q : qs) q.event_idx = (features & feature_bit(virtio::kFeatureEventIdx)) != 0;  // as the transport does
    ASSERT_TRUE(dev_->activate(mem_, std::move(qs), features, irq_).ok());
    pump();  // the posted offload setting; then the backend is polled
  }
  // Runs the loop until it has nothing ready.
  void pump() {
    for (int i = 0; i < 100; ++i) {
      auto n = loop_->run_once(0);
      ASSERT_TRUE(n.ok());
      if (n.value() == 0) break;
    }
  }

  void add_rx_buffers(int n, uint32_t size) {
    for (int i = 0; i < n; ++i) {
      rx_.add_chain({{kRxBufs + 0x10000 * static_cast<uint64_t>(rx_slot_++ % 16), size, true}});
    }
  }
  // Guest -> device: header in one descriptor, the frame in another (as Linux does).
  void guest_send(const VirtioNetHdr& h, const std::vector<uint8_t>& frame) {
    std::array<uint8_t, kNetHdrSize> hb{};
    encode_net_hdr(h, hb);
    uint64_t at = kTxBufs + 0x20000 * static_cast<uint64_t>(tx_slot_++ % 4);
    virtio::testing::write_bytes(mem_, at, std::vector<uint8_t>(hb.begin(), hb.end()));
    virtio::testing::write_bytes(mem_, at + 0x100, frame);
    tx_.add_chain({{at, kNetHdrSize, false}, {at + 0x100, static_cast<uint32_t>(frame.size()), false}});
    ASSERT_TRUE(dev_->process_queue(NetDevice::kTxQueue).ok());
  }
  // What reached the host side (nullopt: nothing).
  std::optional<std::vector<uint8_t>> host_receive() {
    std::vector<uint8_t> buf(kMaxNetBuffer + 16);
    ssize_t n = ::recv(peer_.get(), buf.data(), buf.size(), 0);
    if (n < 0) return std::nullopt;
    buf.resize(static_cast<size_t>(n));
    return buf;
  }
  void host_send(const VirtioNetHdr& h, const std::vector<uint8_t>& frame) {
    std::vector<uint8_t> b(kNetHdrSize);
    encode_net_hdr(h, b);
    b.insert(b.end(), frame.begin(), frame.end());
    ASSERT_EQ(::send(peer_.get(), b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
  }
  std::vector<uint8_t> rx_buffer(uint16_t used_index) {
    auto [id, len] = rx_.used_elem(used_index);
    uint64_t addr = *mem_.read_obj<uint64_t>(GuestAddress(rx_.desc().value() + 16 * id));
    return virtio::testing::read_bytes(mem_, addr, len);
  }

  GuestMemory mem_ = virtio::testing::make_memory(0x200000);
  VirtqBuilder rx_{mem_, 0x1000, 256};
  VirtqBuilder tx_{mem_, 0x10000, 256};
  int irqs_ = 0;
  virtio::Interrupt irq_{[this] { ++irqs_; }};
  rate_limiter::Nanos now_ = 1'000'000'000;
  std::unique_ptr<EventLoop> loop_;
  UniqueFd backend_fd_;
  UniqueFd peer_;
  std::shared_ptr<NetDevice> dev_;
  int rx_slot_ = 0;
  int tx_slot_ = 0;
};

TEST_F(NetDeviceTest, ConfigSpaceAndFeaturesFollowTheConfig) {
  NetDeviceConfig c;
  c.mac = std::array<uint8_t, 6>{0x06, 0x00, 0xac, 0x10, 0x00, 0x02};
  c.mtu = 1400;
  create(c);
  EXPECT_EQ(dev_->device_id(), virtio::kDeviceIdNet);
  uint64_t f = dev_->device_features();
  EXPECT_TRUE(f & feature_bit(kNetFeatureMac));
  EXPECT_TRUE(f & feature_bit(kNetFeatureMtu));
  EXPECT_TRUE(f & feature_bit(kNetFeatureMrgRxbuf));
  EXPECT_TRUE(f & kVersion1);
  std::array<uint8_t, 12> cfg{};
  dev_->read_config(0, cfg);
  EXPECT_EQ(std::vector<uint8_t>(cfg.begin(), cfg.begin() + 6), std::vector<uint8_t>(c.mac->begin(), c.mac->end()));
  uint16_t mtu;
  std::memcpy(&mtu, cfg.data() + 10, 2);
  EXPECT_EQ(mtu, 1400);
}

TEST_F(NetDeviceTest, NoMacOrMtuFeatureWhenNotConfigured) {
  create();
  EXPECT_FALSE(dev_->device_features() & feature_bit(kNetFeatureMac));
  EXPECT_FALSE(dev_->device_features() & feature_bit(kNetFeatureMtu));
}

TEST_F(NetDeviceTest, TransmitReachesTheHostWithItsHeader) {
  create();
  activate();
  auto frame = frame_bytes(60, 1);
  VirtioNetHdr h;
  h.num_buffers = 9;  // meaningless on transmit: not passed on
  guest_send(h, frame);
  auto got = host_receive();
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), kNetHdrSize + 60);
  EXPECT_EQ(parse_net_hdr(*got)->num_buffers, 0);
  EXPECT_EQ(std::vector<uint8_t>(got->begin() + kNetHdrSize, got->end()), frame);
  EXPECT_EQ(tx_.used_idx(), 1);
  EXPECT_EQ(tx_.used_elem(0).second, 0u);
  NetCounters c = dev_->net_counters();
  EXPECT_EQ(c.tx_packets, 1u);
  EXPECT_EQ(c.tx_bytes, 60u);
  EXPECT_EQ(dev_->counters().bytes_from_guest, 60u);  // the same count, kept once
  EXPECT_GE(irqs_, 1);
}

TEST_F(NetDeviceTest, HostileTransmitFramesAreDroppedNotSent) {
  create();
  activate(kVersion1);  // no checksum or GSO features
  VirtioNetHdr bad_flags;
  bad_flags.flags = 0xff;
  guest_send(bad_flags, frame_bytes(60, 1));
  VirtioNetHdr gso{kNetHdrFNeedsCsum, kNetGsoTcpv4, 54, 1448, 34, 16, 0};
  guest_send(gso, frame_bytes(3000, 2));
  guest_send(VirtioNetHdr{}, frame_bytes(10, 3));  // shorter than an Ethernet header
  // Only a header, no frame; then a chain with no readable part at all.
  tx_.add_chain({{kTxBufs, 8, false}});
  tx_.add_chain({{kTxBufs, 64, true}});
  ASSERT_TRUE(dev_->process_queue(NetDevice::kTxQueue).ok());
  EXPECT_FALSE(host_receive().has_value());
  EXPECT_EQ(tx_.used_idx(), 5);  // every chain returned
  EXPECT_EQ(dev_->net_counters().tx_dropped, 5u);
  EXPECT_EQ(dev_->counters().errors, 5u);
  // The device still works.
  guest_send(VirtioNetHdr{}, frame_bytes(60, 4));
  EXPECT_TRUE(host_receive().has_value());
}

TEST_F(NetDeviceTest, MalformedTransmitChainIsCompletedAndCounted) {
  create();
  activate();
  tx_.add_chain({{0xFFFFFFFF0000ull, 64, false}});  // outside guest RAM
  ASSERT_TRUE(dev_->process_queue(NetDevice::kTxQueue).ok());
  EXPECT_EQ(tx_.used_idx(), 1);
  EXPECT_EQ(dev_->counters().errors, 1u);
  EXPECT_FALSE(host_receive().has_value());
}

TEST_F(NetDeviceTest, ReceiveFillsOneBufferWithNumBuffersOne) {
  create();
  activate();
  add_rx_buffers(4, 1526 + kNetHdrSize);
  ASSERT_TRUE(dev_->process_queue(NetDevice::kRxQueue).ok());
  auto frame = frame_bytes(1000, 7);
  host_send(VirtioNetHdr{}, frame);
  pump();
  ASSERT_EQ(rx_.used_idx(), 1);
  auto got = rx_buffer(0);
  ASSERT_EQ(got.size(), kNetHdrSize + 1000);
  EXPECT_EQ(parse_net_hdr(got)->num_buffers, 1);
  EXPECT_EQ(std::vector<uint8_t>(got.begin() + kNetHdrSize, got.end()), frame);
  EXPECT_EQ(dev_->net_counters().rx_packets, 1u);
  EXPECT_EQ(dev_->net_counters().rx_bytes, 1000u);
  EXPECT_EQ(dev_->counters().bytes_to_guest, 1000u);
}

TEST_F(NetDeviceTest, EventIdxKicksAndInterruptsFollowTheDriversIndexes) {
  create();
  ASSERT_TRUE(dev_->device_features() & feature_bit(virtio::kFeatureEventIdx));
  activate(kVersion1 | feature_bit(kNetFeatureMrgRxbuf) | feature_bit(virtio::kFeatureEventIdx));
  // Transmit: once the ring is drained the device asks for a kick on the next chain.
  guest_send(VirtioNetHdr{}, frame_bytes(60, 3));
  ASSERT_TRUE(host_receive().has_value());
  EXPECT_EQ(tx_.avail_event(), 1);
  guest_send(VirtioNetHdr{}, frame_bytes(60, 4));
  EXPECT_EQ(tx_.avail_event(), 2);
  // Receive: an interrupt only when the used index passes the driver's used_event.
  add_rx_buffers(4, 1000);
  rx_.set_used_event(1);
  const int before = irqs_;
  host_send(VirtioNetHdr{}, frame_bytes(100, 1));
  pump();
  ASSERT_EQ(rx_.used_idx(), 1);
  EXPECT_EQ(irqs_, before + 1);  // the queue's first decision interrupts
  host_send(VirtioNetHdr{}, frame_bytes(100, 2));
  pump();
  ASSERT_EQ(rx_.used_idx(), 2);
  EXPECT_EQ(irqs_, before + 2);  // used index 1 -> 2 passes used_event 1
  rx_.set_used_event(5);
  host_send(VirtioNetHdr{}, frame_bytes(100, 3));
  pump();
  ASSERT_EQ(rx_.used_idx(), 3);
  EXPECT_EQ(irqs_, before + 2);  // the driver asked for none yet
}

TEST_F(NetDeviceTest, ReceiveSpansMergeableBuffers) {
  create();
  activate();
  add_rx_buffers(4, 1000);
  auto frame = frame_bytes(2500, 9);
  host_send(VirtioNetHdr{}, frame);
  pump();
  ASSERT_EQ(rx_.used_idx(), 3);  // 12 + 2500 bytes over 1000-byte buffers
  std::vector<uint8_t> all;
  for (uint16_t i = 0; i < 3; ++i) {
    auto b = rx_buffer(i);
    all.insert(all.end(), b.begin(), b.end());
  }
  ASSERT_EQ(all.size(), kNetHdrSize + 2500);
  EXPECT_EQ(parse_net_hdr(all)->num_buffers, 3);
  EXPECT_EQ(std::vector<uint8_t>(all.begin() + kNetHdrSize, all.end()), frame);
}

TEST_F(NetDeviceTest, ReceiveWaitsForBuffersAndLosesNothing) {
  create();
  activate();
  host_send(VirtioNetHdr{}, frame_bytes(100, 1));
  host_send(VirtioNetHdr{}, frame_bytes(200, 2));
  pump();
  EXPECT_EQ(rx_.used_idx(), 0);
  add_rx_buffers(1, 1000);  // room for the first only
  ASSERT_TRUE(dev_->process_queue(NetDevice::kRxQueue).ok());
  pump();
  EXPECT_EQ(rx_.used_idx(), 1);
  add_rx_buffers(1, 1000);
  ASSERT_TRUE(dev_->process_queue(NetDevice::kRxQueue).ok());
  pump();
  ASSERT_EQ(rx_.used_idx(), 2);
  EXPECT_EQ(rx_buffer(0).size(), kNetHdrSize + 100);
  EXPECT_EQ(rx_buffer(1).size(), kNetHdrSize + 200);
}

TEST_F(NetDeviceTest, MergeableFrameWaitsUntilEnoughBuffersArePosted) {
  create();
  activate();
  add_rx_buffers(1, 1000);
  ASSERT_TRUE(dev_->process_queue(NetDevice::kRxQueue).ok());
  host_send(VirtioNetHdr{}, frame_bytes(1500, 1));
  pump();
  EXPECT_EQ(rx_.used_idx(), 0);  // one buffer is not enough: it was put back, not used
  add_rx_buffers(1, 1000);
  ASSERT_TRUE(dev_->process_queue(NetDevice::kRxQueue).ok());
  pump();
  ASSERT_EQ(rx_.used_idx(), 2);
  EXPECT_EQ(parse_net_hdr(rx_buffer(0))->num_buffers, 2);
}

TEST_F(NetDeviceTest, WithoutMergeableATooSmallBufferDropsTheFrame) {
  create();
  activate(kVersion1);
  add_rx_buffers(1, 500);
  add_rx_buffers(1, 2000);
  host_send(VirtioNetHdr{}, frame_bytes(1000, 1));  // does not fit the first buffer
  host_send(VirtioNetHdr{}, frame_bytes(100, 2));
  pump();
  ASSERT_EQ(rx_.used_idx(), 2);
  EXPECT_EQ(rx_.used_elem(0).second, 0u);  // returned unused
  EXPECT_EQ(rx_buffer(1).size(), kNetHdrSize + 100);
  EXPECT_EQ(dev_->net_counters().rx_dropped, 1u);
}

TEST_F(NetDeviceTest, MalformedReceiveChainsAreReturnedAndDeliveryGoesOn) {
  create();
  activate();
  rx_.add_chain({{kRxBufs, 1000, false}});  // device-readable: not a receive buffer
  rx_.add_chain({{0xFFFFFFFF0000ull, 1000, true}});  // outside guest RAM
  rx_.add_chain({{kRxBufs + 0x10000, 4, true}});     // too small for the header
  add_rx_buffers(1, 1000);
  host_send(VirtioNetHdr{}, frame_bytes(100, 1));
  pump();
  ASSERT_EQ(rx_.used_idx(), 4);
  EXPECT_EQ(rx_.used_elem(0).second, 0u);
  EXPECT_EQ(rx_.used_elem(1).second, 0u);
  EXPECT_EQ(rx_.used_elem(2).second, 0u);
  EXPECT_EQ(rx_.used_elem(3).second, kNetHdrSize + 100);
  EXPECT_GE(dev_->counters().errors, 2u);
}

TEST_F(NetDeviceTest, RuntFromTheHostIsDropped) {
  create();
  activate();
  add_rx_buffers(2, 1000);
  ASSERT_EQ(::send(peer_.get(), "abc", 3, 0), 3);
  host_send(VirtioNetHdr{}, frame_bytes(60, 1));
  pump();
  ASSERT_EQ(rx_.used_idx(), 1);
  EXPECT_EQ(rx_buffer(0).size(), kNetHdrSize + 60);
  EXPECT_EQ(dev_->net_counters().rx_dropped, 1u);
}

TEST_F(NetDeviceTest, NothingIsReadBeforeTheDriverIsUp) {
  create();
  host_send(VirtioNetHdr{}, frame_bytes(60, 1));
  pump();
  activate();
  add_rx_buffers(1, 1000);
  ASSERT_TRUE(dev_->process_queue(NetDevice::kRxQueue).ok());
  pump();
  EXPECT_EQ(rx_.used_idx(), 1);  // held by the socket until then, not lost
}

TEST_F(NetDeviceTest, TransmitRateLimitHoldsChainsUntilTokensRefill) {
  NetDeviceConfig c;
  c.tx_limit.bandwidth = rate_limiter::TokenBucketConfig{1000, 0, 1000};  // 1000 B/s
  create(c);
  activate();
  guest_send(VirtioNetHdr{}, frame_bytes(600, 1));
  guest_send(VirtioNetHdr{}, frame_bytes(600, 2));
  EXPECT_TRUE(host_receive().has_value());
  EXPECT_FALSE(host_receive().has_value());  // 400 tokens left: the second waits
  EXPECT_EQ(tx_.used_idx(), 1);
  EXPECT_GE(dev_->net_counters().tx_throttled, 1u);
  now_ += 200'000'000;  // +200 tokens: enough
  ASSERT_TRUE(dev_->process_queue(NetDevice::kTxQueue).ok());
  EXPECT_TRUE(host_receive().has_value());
  EXPECT_EQ(tx_.used_idx(), 2);
}

TEST_F(NetDeviceTest, ReceiveRateLimitHoldsTheFrame) {
  NetDeviceConfig c;
  c.rx_limit.ops = rate_limiter::TokenBucketConfig{1, 0, 1000};  // one frame per second
  create(c);
  activate();
  add_rx_buffers(4, 1000);
  host_send(VirtioNetHdr{}, frame_bytes(60, 1));
  host_send(VirtioNetHdr{}, frame_bytes(60, 2));
  pump();
  EXPECT_EQ(rx_.used_idx(), 1);
  now_ += 1'000'000'000;
  ASSERT_TRUE(dev_->process_queue(NetDevice::kRxQueue).ok());
  EXPECT_EQ(rx_.used_idx(), 2);
}

TEST_F(NetDeviceTest, LimitersCanBeReplacedWhileRunning) {
  NetDeviceConfig c;
  c.tx_limit.ops = rate_limiter::TokenBucketConfig{1, 0, 100'000};
  create(c);
  activate();
  guest_send(VirtioNetHdr{}, frame_bytes(60, 1));
  guest_send(VirtioNetHdr{}, frame_bytes(60, 2));
  EXPECT_EQ(tx_.used_idx(), 1);
  rate_limiter::RateLimiterConfig none;
  ASSERT_TRUE(dev_->update_rate_limiters(std::nullopt, none).ok());
  pump();  // the update wakes the throttled queue on the loop
  EXPECT_EQ(tx_.used_idx(), 2);
  rate_limiter::RateLimiterConfig bad;
  bad.bandwidth = rate_limiter::TokenBucketConfig{0, 0, 1000};
  EXPECT_FALSE(dev_->update_rate_limiters(bad, std::nullopt).ok());
}

TEST_F(NetDeviceTest, ResetStopsReceiveAndReactivationResumes) {
  create();
  activate();
  dev_->reset();
  host_send(VirtioNetHdr{}, frame_bytes(60, 1));
  pump();
  activate();
  add_rx_buffers(1, 1000);
  ASSERT_TRUE(dev_->process_queue(NetDevice::kRxQueue).ok());
  pump();
  EXPECT_EQ(rx_.used_idx(), 1);
}

TEST_F(NetDeviceTest, MetricsNameTheNetCounters) {
  create();
  auto extra = dev_->extra_counters();
  bool has_tx_dropped = false;
  for (auto& [name, value] : extra) has_tx_dropped |= name == "tx_dropped";
  EXPECT_TRUE(has_tx_dropped);
}

}  // namespace
}  // namespace kiln::vmm::devices
