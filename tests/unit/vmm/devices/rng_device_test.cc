// virtio-rng: fills writable buffers, refuses readable ones, caps request size.
#include "vmm/devices/rng_device.h"

#include <gtest/gtest.h>

#include "tests/unit/vmm/virtio/virtq_builder.h"

namespace kiln::vmm::devices {
namespace {

using virtio::testing::VirtqBuilder;

class RngTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<virtio::Queue> qs{vq_.queue(RngDevice::kQueueSize)};
    ASSERT_TRUE(dev_.activate(mem_, std::move(qs), 0, irq_).ok());
  }
  GuestMemory mem_ = virtio::testing::make_memory(0x200000);
  VirtqBuilder vq_{mem_, 0x1000, 16};
  int irqs_ = 0;
  virtio::Interrupt irq_{[this] { ++irqs_; }};
  RngDevice dev_;
};

TEST_F(RngTest, FillsWritableBuffers) {
  vq_.add_chain({{0x10000, 64, true}, {0x11000, 64, true}});
  ASSERT_TRUE(dev_.process_queue(0).ok());
  EXPECT_EQ(vq_.used_elem(0).second, 128u);
  auto a = virtio::testing::read_bytes(mem_, 0x10000, 64);
  auto b = virtio::testing::read_bytes(mem_, 0x11000, 64);
  EXPECT_NE(a, std::vector<uint8_t>(64, 0));
  EXPECT_NE(b, std::vector<uint8_t>(64, 0));
  EXPECT_EQ(irqs_, 1);
  EXPECT_EQ(dev_.counters().bytes_to_guest, 128u);
}

TEST_F(RngTest, ReadableBuffersAreAnError) {
  vq_.add_chain({{0x10000, 64, false}, {0x11000, 64, true}});
  ASSERT_TRUE(dev_.process_queue(0).ok());
  EXPECT_EQ(vq_.used_elem(0).second, 0u);
  EXPECT_EQ(virtio::testing::read_bytes(mem_, 0x11000, 64), std::vector<uint8_t>(64, 0));
  EXPECT_EQ(dev_.counters().errors, 1u);
}

TEST_F(RngTest, LargeRequestIsCapped) {
  vq_.add_chain({{0x100000, 0x80000, true}});
  ASSERT_TRUE(dev_.process_queue(0).ok());
  EXPECT_EQ(vq_.used_elem(0).second, RngDevice::kMaxBytesPerRequest);
}

TEST_F(RngTest, HostileChainsAndRingsAreContained) {
  vq_.set_desc(0, 0x10000, 8, virtio::kDescFlagNext | virtio::kDescFlagWrite, 0);  // loop
  vq_.publish(0);
  ASSERT_TRUE(dev_.process_queue(0).ok());
  EXPECT_EQ(vq_.used_elem(0).second, 0u);
  vq_.publish(99);  // head out of range: the ring is corrupt
  EXPECT_FALSE(dev_.process_queue(0).ok());
}

TEST_F(RngTest, ResetStopsService) {
  dev_.reset();
  vq_.add_chain({{0x10000, 64, true}});
  ASSERT_TRUE(dev_.process_queue(0).ok());
  EXPECT_EQ(vq_.used_idx(), 0);
}

}  // namespace
}  // namespace kiln::vmm::devices
