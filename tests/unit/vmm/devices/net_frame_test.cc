// virtio-net frame checks: header decoding, hostile transmit headers, offload flags, and how
// a received frame is split over receive chains.
#include "vmm/devices/net_frame.h"

#include <gtest/gtest.h>
#include <linux/if_tun.h>

#include <array>
#include <vector>

#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::devices {
namespace {

using virtio::feature_bit;

constexpr uint64_t kAllTx = feature_bit(kNetFeatureCsum) | feature_bit(kNetFeatureHostTso4) |
                            feature_bit(kNetFeatureHostTso6) | feature_bit(kNetFeatureHostUfo);

TEST(NetFrame, HeaderRoundTripsLittleEndian) {
  VirtioNetHdr h{kNetHdrFNeedsCsum, kNetGsoTcpv4, 54, 1448, 34, 16, 3};
  std::array<uint8_t, kNetHdrSize> b{};
  encode_net_hdr(h, b);
  EXPECT_EQ(b[2], 54);
  EXPECT_EQ(b[4], 1448 & 0xff);
  EXPECT_EQ(b[5], 1448 >> 8);
  EXPECT_EQ(b[10], 3);
  EXPECT_EQ(parse_net_hdr(b).value(), h);
  EXPECT_FALSE(parse_net_hdr(std::span<const uint8_t>(b.data(), kNetHdrSize - 1)).ok());
}

TEST(NetFrame, PlainFrameIsAcceptedWithNoFeatures) {
  auto h = check_tx_frame(VirtioNetHdr{}, 60, 0);
  ASSERT_TRUE(h.ok()) << h.error().message;
}

TEST(NetFrame, NumBuffersIsClearedForTheTap) {
  VirtioNetHdr in;
  in.num_buffers = 7;
  EXPECT_EQ(check_tx_frame(in, 60, 0)->num_buffers, 0);
}

TEST(NetFrame, FrameLengthBounds) {
  EXPECT_FALSE(check_tx_frame({}, kEthHeaderSize - 1, 0).ok());
  EXPECT_TRUE(check_tx_frame({}, kEthHeaderSize, 0).ok());
  EXPECT_TRUE(check_tx_frame({}, kMaxNetFrame, 0).ok());
  EXPECT_FALSE(check_tx_frame({}, kMaxNetFrame + 1, 0).ok());
  EXPECT_FALSE(check_tx_frame({}, UINT64_MAX, kAllTx).ok());
}

TEST(NetFrame, HostileFlagsAreRefused) {
  for (uint8_t flags : {uint8_t{kNetHdrFDataValid}, uint8_t{0x80}, uint8_t{0xff}}) {
    VirtioNetHdr h;
    h.flags = flags;
    EXPECT_FALSE(check_tx_frame(h, 60, kAllTx).ok()) << int(flags);
  }
}

TEST(NetFrame, ChecksumRequestNeedsTheFeatureAndMustFitTheFrame) {
  VirtioNetHdr h;
  h.flags = kNetHdrFNeedsCsum;
  h.csum_start = 34;
  h.csum_offset = 16;
  EXPECT_FALSE(check_tx_frame(h, 60, 0).ok());
  EXPECT_TRUE(check_tx_frame(h, 60, feature_bit(kNetFeatureCsum)).ok());
  EXPECT_TRUE(check_tx_frame(h, 52, feature_bit(kNetFeatureCsum)).ok());   // 34+16+2 == 52
  EXPECT_FALSE(check_tx_frame(h, 51, feature_bit(kNetFeatureCsum)).ok());
  h.csum_start = 0xffff;
  h.csum_offset = 0xffff;  // no 16-bit wrap: the sum is taken in 64 bits
  EXPECT_FALSE(check_tx_frame(h, kMaxNetFrame, feature_bit(kNetFeatureCsum)).ok());
}

TEST(NetFrame, GsoNeedsItsFeatureAChecksumAndASize) {
  VirtioNetHdr h{kNetHdrFNeedsCsum, kNetGsoTcpv4, 54, 1448, 34, 16, 0};
  EXPECT_TRUE(check_tx_frame(h, 3000, kAllTx).ok());
  EXPECT_FALSE(check_tx_frame(h, 3000, kAllTx & ~feature_bit(kNetFeatureHostTso4)).ok());
  h.gso_type = kNetGsoTcpv6;
  EXPECT_TRUE(check_tx_frame(h, 3000, kAllTx).ok());
  EXPECT_FALSE(check_tx_frame(h, 3000, kAllTx & ~feature_bit(kNetFeatureHostTso6)).ok());
  h.gso_type = kNetGsoUdp;
  EXPECT_TRUE(check_tx_frame(h, 3000, kAllTx).ok());
  EXPECT_FALSE(check_tx_frame(h, 3000, kAllTx & ~feature_bit(kNetFeatureHostUfo)).ok());
  for (uint8_t t : {uint8_t{kNetGsoTcpv4 | kNetGsoEcn}, uint8_t{2}, uint8_t{5}, uint8_t{0xff}}) {
    h.gso_type = t;
    EXPECT_FALSE(check_tx_frame(h, 3000, kAllTx).ok()) << int(t);
  }
  h.gso_type = kNetGsoTcpv4;
  h.flags = 0;
  EXPECT_FALSE(check_tx_frame(h, 3000, kAllTx).ok());  // GSO without a checksum request
  h.flags = kNetHdrFNeedsCsum;
  h.gso_size = 0;
  EXPECT_FALSE(check_tx_frame(h, 3000, kAllTx).ok());
  h.gso_size = 1448;
  h.hdr_len = 3001;
  EXPECT_FALSE(check_tx_frame(h, 3000, kAllTx).ok());
}

TEST(NetFrame, TapOffloadsFollowTheGuestsReceiveFeatures) {
  EXPECT_EQ(tap_offload_flags(0), 0u);
  // Segmentation without checksum offload cannot be honoured: the TAP would refuse it.
  EXPECT_EQ(tap_offload_flags(feature_bit(kNetFeatureGuestTso4)), 0u);
  EXPECT_EQ(tap_offload_flags(feature_bit(kNetFeatureGuestCsum)), unsigned{TUN_F_CSUM});
  uint64_t all = feature_bit(kNetFeatureGuestCsum) | feature_bit(kNetFeatureGuestTso4) |
                 feature_bit(kNetFeatureGuestTso6) | feature_bit(kNetFeatureGuestUfo);
  EXPECT_EQ(tap_offload_flags(all), unsigned{TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO});
  // Host (transmit) features say nothing about what the guest receives.
  EXPECT_EQ(tap_offload_flags(kAllTx), 0u);
}

TEST(NetFrame, ReceiveChainsMergeable) {
  std::vector<uint64_t> room;
  EXPECT_EQ(rx_chains_needed(room, 100, true).value(), 0u);  // nothing popped yet
  room = {1526};
  EXPECT_EQ(rx_chains_needed(room, 1526, true).value(), 1u);
  EXPECT_EQ(rx_chains_needed(room, 3000, true).value(), 0u);  // pop more
  room = {1526, 1526};
  EXPECT_EQ(rx_chains_needed(room, 3000, true).value(), 2u);
  room = {1526, 0, 0, 1526};  // empty chains count but hold nothing
  EXPECT_EQ(rx_chains_needed(room, 3000, true).value(), 4u);
  room = {kNetHdrSize - 1, 4096};
  EXPECT_FALSE(rx_chains_needed(room, 100, true).ok());  // the header must fit the first
}

TEST(NetFrame, ReceiveChainsWithoutMergeableMustFitOne) {
  std::vector<uint64_t> room{1526};
  EXPECT_EQ(rx_chains_needed(room, 1526, false).value(), 1u);
  EXPECT_FALSE(rx_chains_needed(room, 1527, false).ok());
}

TEST(NetFrame, ReceiveChainsBoundedCount) {
  std::vector<uint64_t> room(70000, kNetHdrSize);
  EXPECT_FALSE(rx_chains_needed(room, UINT64_MAX, true).ok());
}

}  // namespace
}  // namespace kiln::vmm::devices
