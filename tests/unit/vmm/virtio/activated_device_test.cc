// ActivatedDevice: the activation every virtio device shares (queues, memory, interrupt):
// refused twice, undone by reset and by a failing hook, queue positions kept across a
// snapshot restore, notifications ignored while inactive.
#include "vmm/virtio/activated_device.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/unit/vmm/virtio/virtq_builder.h"
#include "vmm/virtio/mmio_transport.h"

namespace kiln::vmm::virtio {
namespace {

using testing::VirtqBuilder;

// Two queues; queue 0 answers each chain by writing one byte.
class TestDevice : public ActivatedDevice {
 public:
  TestDevice() : ActivatedDevice("test-dev", {16, 8}) {}
  uint32_t device_id() const override { return 42; }
  uint64_t device_features() const override { return feature_bit(kFeatureVersion1); }
  void read_config(uint64_t, std::span<uint8_t> data) const override {
    std::memset(data.data(), 0, data.size());
  }
  void write_config(uint64_t, std::span<const uint8_t>) override {}

  int activations = 0;
  int resets = 0;
  std::vector<uint16_t> notified;
  bool fail_activate = false;

 private:
  Status on_activate() override {
    ++activations;
    return fail_activate ? make_error("hook refused") : ok_status();
  }
  void on_reset() override { ++resets; }
  Status on_queue_notify(uint16_t index) override {
    notified.push_back(index);
    if (index != 0) return ok_status();
    return serve(0, [](const DescriptorChain& c) -> uint32_t {
      if (c.writable.empty()) return 0;
      c.writable[0][0] = 0x7a;
      return 1;
    });
  }
};

class ActivatedDeviceTest : public ::testing::Test {
 protected:
  std::vector<Queue> queues() { return {q0_.queue(16), q1_.queue(8)}; }

  GuestMemory mem_ = testing::make_memory();
  VirtqBuilder q0_{mem_, 0x10000, 16};
  VirtqBuilder q1_{mem_, 0x20000, 8};
  int irqs_ = 0;
  Interrupt irq_{[this] { ++irqs_; }};
  TestDevice dev_;
};

TEST_F(ActivatedDeviceTest, ActivateServesQueuesAndSignals) {
  EXPECT_EQ(dev_.queue_max_sizes(), (std::vector<uint16_t>{16, 8}));
  EXPECT_FALSE(dev_.active());
  ASSERT_TRUE(dev_.activate(mem_, queues(), 0, irq_).ok());
  EXPECT_TRUE(dev_.active());
  EXPECT_EQ(dev_.activations, 1);
  q0_.add_chain({{0x40000, 4, true}});
  ASSERT_TRUE(dev_.process_queue(0).ok());
  EXPECT_EQ(q0_.used_idx(), 1);
  EXPECT_EQ(q0_.used_elem(0).second, 1u);
  EXPECT_EQ(*mem_.read_obj<uint8_t>(GuestAddress(0x40000)), 0x7a);
  EXPECT_EQ(irqs_, 1);
  EXPECT_EQ(dev_.counters().requests, 1u);
  // An index past the last queue is ignored, not handed to the device.
  ASSERT_TRUE(dev_.process_queue(2).ok());
  EXPECT_EQ(dev_.notified, (std::vector<uint16_t>{0}));
}

TEST_F(ActivatedDeviceTest, ActivatingTwiceIsRefused) {
  ASSERT_TRUE(dev_.activate(mem_, queues(), 0, irq_).ok());
  q0_.add_chain({{0x40000, 4, true}});
  ASSERT_TRUE(dev_.process_queue(0).ok());
  auto again = dev_.activate(mem_, queues(), 0, irq_);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("already active"), std::string::npos);
  EXPECT_EQ(dev_.activations, 1);
  // The first activation is intact: its ring position was not replaced by fresh queues.
  EXPECT_EQ(dev_.queue_positions()[0].next_used, 1);
}

TEST_F(ActivatedDeviceTest, WrongQueuesAreRefused) {
  std::vector<Queue> one{q0_.queue(16)};
  EXPECT_FALSE(dev_.activate(mem_, one, 0, irq_).ok());
  std::vector<Queue> qs = queues();
  qs[1].ready = false;
  EXPECT_FALSE(dev_.activate(mem_, qs, 0, irq_).ok());
  EXPECT_FALSE(dev_.active());
  EXPECT_EQ(dev_.activations, 0);
}

TEST_F(ActivatedDeviceTest, ResetReturnsToInactive) {
  ASSERT_TRUE(dev_.activate(mem_, queues(), 0, irq_).ok());
  dev_.reset();
  EXPECT_FALSE(dev_.active());
  EXPECT_EQ(dev_.resets, 1);
  EXPECT_TRUE(dev_.queue_positions().empty());
  q0_.add_chain({{0x40000, 4, true}});
  ASSERT_TRUE(dev_.process_queue(0).ok());  // ignored: nothing served
  EXPECT_EQ(q0_.used_idx(), 0);
  EXPECT_TRUE(dev_.notified.empty());
  dev_.reset();  // idempotent
  EXPECT_FALSE(dev_.active());
  ASSERT_TRUE(dev_.activate(mem_, queues(), 0, irq_).ok());  // a driver may start again
  ASSERT_TRUE(dev_.process_queue(0).ok());
  EXPECT_EQ(q0_.used_idx(), 1);
}

TEST_F(ActivatedDeviceTest, FailingHookLeavesTheDeviceInactive) {
  dev_.fail_activate = true;
  EXPECT_FALSE(dev_.activate(mem_, queues(), 0, irq_).ok());
  EXPECT_FALSE(dev_.active());
  EXPECT_TRUE(dev_.queue_positions().empty());
  dev_.fail_activate = false;
  EXPECT_TRUE(dev_.activate(mem_, queues(), 0, irq_).ok());
}

TEST_F(ActivatedDeviceTest, QueuePositionsAreRestored) {
  ASSERT_TRUE(dev_.activate(mem_, queues(), 0, irq_).ok());
  for (int i = 0; i < 3; ++i) q0_.add_chain({{0x40000 + 0x100 * static_cast<uint64_t>(i), 4, true}});
  ASSERT_TRUE(dev_.process_queue(0).ok());
  auto saved = dev_.queue_positions();
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[0].next_avail, 3);
  EXPECT_EQ(saved[0].next_used, 3);
  EXPECT_EQ(saved[1].next_avail, 0);

  // A restore hands the positions back in the Queue objects: serving continues where it
  // stopped instead of replaying the three chains.
  TestDevice restored;
  std::vector<Queue> qs = queues();
  for (size_t i = 0; i < qs.size(); ++i) qs[i].set_positions(saved[i].next_avail, saved[i].next_used);
  ASSERT_TRUE(restored.activate(mem_, qs, 0, irq_).ok());
  auto now = restored.queue_positions();
  ASSERT_EQ(now.size(), 2u);
  EXPECT_EQ(now[0].next_avail, 3);
  EXPECT_EQ(now[0].next_used, 3);
  q0_.add_chain({{0x40400, 4, true}});
  ASSERT_TRUE(restored.process_queue(0).ok());
  EXPECT_EQ(q0_.used_idx(), 4);
  EXPECT_EQ(restored.counters().requests, 1u);
}

TEST_F(ActivatedDeviceTest, PositionsSurviveATransportSnapshot) {
  auto dev = std::make_shared<TestDevice>();
  VirtioMmioTransport t(mem_, dev);
  auto wr = [&](VirtioMmioTransport& tr, uint64_t off, uint32_t v) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    tr.mmio_write(off, b);
  };
  wr(t, mmio::kStatus, kStatusAcknowledge);
  wr(t, mmio::kStatus, kStatusAcknowledge | kStatusDriver);
  wr(t, mmio::kDriverFeaturesSel, 1);
  wr(t, mmio::kDriverFeatures, 1);  // VERSION_1
  wr(t, mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  const VirtqBuilder* builders[] = {&q0_, &q1_};
  for (uint32_t i = 0; i < 2; ++i) {
    wr(t, mmio::kQueueSel, i);
    wr(t, mmio::kQueueNum, builders[i]->size());
    wr(t, mmio::kQueueDescLow, static_cast<uint32_t>(builders[i]->desc().value()));
    wr(t, mmio::kQueueDriverLow, static_cast<uint32_t>(builders[i]->avail().value()));
    wr(t, mmio::kQueueDeviceLow, static_cast<uint32_t>(builders[i]->used().value()));
    wr(t, mmio::kQueueReady, 1);
  }
  wr(t, mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  ASSERT_TRUE(t.activated());
  q0_.add_chain({{0x40000, 4, true}});
  q0_.add_chain({{0x40100, 4, true}});
  t.notify_queue(0);
  MmioTransportState state = t.save_state();
  ASSERT_EQ(state.queues.size(), 2u);
  EXPECT_EQ(state.queues[0].next_used, 2);

  auto dev2 = std::make_shared<TestDevice>();
  VirtioMmioTransport t2(mem_, dev2);
  ASSERT_TRUE(t2.restore_state(state).ok());
  EXPECT_TRUE(dev2->active());
  EXPECT_EQ(dev2->queue_positions()[0].next_avail, 2);
  EXPECT_EQ(dev2->queue_positions()[0].next_used, 2);
  // A reset through the transport returns the device to inactive.
  wr(t2, mmio::kStatus, 0);
  EXPECT_FALSE(dev2->active());
  EXPECT_EQ(dev2->resets, 1);
}

}  // namespace
}  // namespace kiln::vmm::virtio
