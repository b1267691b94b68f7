// virtio-mmio transport: register map, feature negotiation, the status state machine and
// hostile register sequences, against a fake device.
#include "vmm/virtio/mmio_transport.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <future>

#include "tests/unit/vmm/virtio/virtq_builder.h"
#include "vmm/virtio/queue_notifiers.h"

namespace kiln::vmm::virtio {
namespace {

using testing::VirtqBuilder;

constexpr uint64_t kUnofferedFeature = feature_bit(34);  // VIRTIO_F_RING_PACKED: kiln offers split rings only

class FakeDevice : public VirtioDevice {
 public:
  uint32_t device_id() const override { return 42; }
  uint64_t device_features() const override {
    return feature_bit(kFeatureVersion1) | feature_bit(kFeatureIndirectDesc) | feature_bit(kFeatureEventIdx) | 0x5;
  }
  std::vector<uint16_t> queue_max_sizes() const override { return {256, 16}; }
  void read_config(uint64_t offset, std::span<uint8_t> data) const override {
    read_config_bytes(config, offset, data);
  }
  void write_config(uint64_t offset, std::span<const uint8_t> data) override {
    last_config_write = offset;
    config_writes += data.size();
  }
  Status activate(const GuestMemory&, std::vector<Queue> queues, uint64_t acked,
                  Interrupt& irq) override {
    ++activations;
    queues_ = std::move(queues);
    acked_ = acked;
    irq_ = &irq;
    if (fail_activate) return make_error("nope");
    return ok_status();
  }
  Status process_queue(uint16_t index) override {
    notified.push_back(index);
    if (fail_process) return make_error("broken ring");
    irq_->signal_used_queue();
    if (while_serving) while_serving();
    return ok_status();
  }
  void reset() override { ++resets; }
  DeviceCounters counters() const override { return {}; }
  std::vector<QueuePosition> queue_positions() const override { return positions_of(queues_); }

  std::vector<uint8_t> config{1, 2, 3, 4, 5, 6, 7, 8};
  uint64_t last_config_write = 0;
  size_t config_writes = 0;
  int activations = 0;
  int resets = 0;
  bool fail_activate = false;
  bool fail_process = false;
  std::function<void()> while_serving;  // runs inside process_queue (the transport's lock held)
  std::vector<uint16_t> notified;
  std::vector<Queue> queues_;
  uint64_t acked_ = 0;
  Interrupt* irq_ = nullptr;
};

class MmioTest : public ::testing::Test {
 protected:
  GuestMemory mem_ = testing::make_memory();
  std::shared_ptr<FakeDevice> dev_ = std::make_shared<FakeDevice>();
  int irqs_ = 0;
  VirtioMmioTransport t_{mem_, dev_, [this] { ++irqs_; }};
  VirtqBuilder q0_{mem_, 0x10000, 256};
  VirtqBuilder q1_{mem_, 0x20000, 16};

  uint32_t rd(uint64_t off) {
    uint8_t b[4];
    t_.mmio_read(off, b);
    uint32_t v;
    std::memcpy(&v, b, 4);
    return v;
  }
  void wr(uint64_t off, uint32_t v) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    t_.mmio_write(off, b);
  }
  void features(uint64_t f) {
    wr(mmio::kDriverFeaturesSel, 0);
    wr(mmio::kDriverFeatures, static_cast<uint32_t>(f));
    wr(mmio::kDriverFeaturesSel, 1);
    wr(mmio::kDriverFeatures, static_cast<uint32_t>(f >> 32));
  }
  void to_features_ok(uint64_t f = feature_bit(kFeatureVersion1)) {
    wr(mmio::kStatus, kStatusAcknowledge);
    wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
    features(f);
    wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  }
  void setup_queue(uint32_t sel, const VirtqBuilder& b) {
    wr(mmio::kQueueSel, sel);
    wr(mmio::kQueueNum, b.size());
    wr(mmio::kQueueDescLow, static_cast<uint32_t>(b.desc().value()));
    wr(mmio::kQueueDescHigh, static_cast<uint32_t>(b.desc().value() >> 32));
    wr(mmio::kQueueDriverLow, static_cast<uint32_t>(b.avail().value()));
    wr(mmio::kQueueDriverHigh, 0);
    wr(mmio::kQueueDeviceLow, static_cast<uint32_t>(b.used().value()));
    wr(mmio::kQueueDeviceHigh, 0);
    wr(mmio::kQueueReady, 1);
  }
  void activate() {
    to_features_ok();
    setup_queue(0, q0_);
    setup_queue(1, q1_);
    wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  }
};

TEST_F(MmioTest, IdentityRegisters) {
  EXPECT_EQ(rd(mmio::kMagicValue), 0x74726976u);
  EXPECT_EQ(rd(mmio::kVersion), 2u);
  EXPECT_EQ(rd(mmio::kDeviceId), 42u);
  EXPECT_EQ(rd(mmio::kVendorId), mmio::kKilnVendorId);
  EXPECT_EQ(rd(mmio::kShmLenLow), 0xffffffffu);
  EXPECT_EQ(rd(mmio::kConfigGeneration), 0u);
}

TEST_F(MmioTest, DeviceFeaturePages) {
  wr(mmio::kDeviceFeaturesSel, 0);
  EXPECT_EQ(rd(mmio::kDeviceFeatures), (1u << kFeatureIndirectDesc) | (1u << kFeatureEventIdx) | 0x5u);
  wr(mmio::kDeviceFeaturesSel, 1);
  EXPECT_EQ(rd(mmio::kDeviceFeatures), 1u);  // VERSION_1 is bit 32
  wr(mmio::kDeviceFeaturesSel, 7);
  EXPECT_EQ(rd(mmio::kDeviceFeatures), 0u);
}

TEST_F(MmioTest, FullHandshakeActivatesDevice) {
  activate();
  EXPECT_TRUE(t_.activated());
  EXPECT_EQ(dev_->activations, 1);
  ASSERT_EQ(dev_->queues_.size(), 2u);
  EXPECT_EQ(dev_->queues_[0].size, 256);
  EXPECT_EQ(dev_->queues_[1].desc_table, q1_.desc());
  EXPECT_TRUE(dev_->queues_[1].ready);
  EXPECT_FALSE(dev_->queues_[0].indirect_allowed);  // neither ring feature acked
  EXPECT_FALSE(dev_->queues_[0].event_idx);
  EXPECT_EQ(rd(mmio::kStatus), 15u);
  EXPECT_EQ(rd(mmio::kQueueNumMax), 16u);  // QueueSel is still 1

  wr(mmio::kQueueNotify, 1);
  ASSERT_EQ(dev_->notified.size(), 1u);
  EXPECT_EQ(dev_->notified[0], 1);
  EXPECT_EQ(irqs_, 1);
  EXPECT_EQ(rd(mmio::kInterruptStatus), kInterruptUsedBuffer);
  wr(mmio::kInterruptAck, kInterruptUsedBuffer);
  EXPECT_EQ(rd(mmio::kInterruptStatus), 0u);

  t_.notify_queue(0);  // ioeventfd path
  EXPECT_EQ(dev_->notified.size(), 2u);
}

// A vCPU taking the interrupt reads InterruptStatus and writes InterruptACK while the event
// loop still serves the queue notification (holding the transport's lock): neither waits.
TEST_F(MmioTest, InterruptStatusAndAckDoNotWaitForAQueueBeingServed) {
  activate();
  std::future<uint32_t> vcpu;  // outlives the serving call: it may only finish after it
  bool answered_while_serving = false;
  dev_->while_serving = [&] {
    vcpu = std::async(std::launch::async, [&] {
      uint32_t status = rd(mmio::kInterruptStatus);
      wr(mmio::kInterruptAck, kInterruptUsedBuffer);
      return status;
    });
    // Bounded: with the lock in its way the "vCPU" waits until this returns.
    answered_while_serving = vcpu.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  };
  t_.notify_queue(0);
  EXPECT_TRUE(answered_while_serving);
  EXPECT_EQ(vcpu.get(), kInterruptUsedBuffer);
  EXPECT_EQ(rd(mmio::kInterruptStatus), 0u);  // acknowledged
}

TEST_F(MmioTest, RingFeaturesPropagateToQueues) {
  const uint64_t acked = feature_bit(kFeatureVersion1) | feature_bit(kFeatureIndirectDesc) | feature_bit(kFeatureEventIdx);
  to_features_ok(acked);
  setup_queue(0, q0_);
  setup_queue(1, q1_);
  wr(mmio::kStatus, 15);
  ASSERT_TRUE(t_.activated());
  for (const Queue& q : dev_->queues_) {
    EXPECT_TRUE(q.indirect_allowed);
    EXPECT_TRUE(q.event_idx);
  }
  EXPECT_EQ(dev_->acked_, acked);
}

TEST_F(MmioTest, ResetByWritingZero) {
  activate();
  wr(mmio::kStatus, 0);
  EXPECT_EQ(dev_->resets, 1);
  EXPECT_FALSE(t_.activated());
  EXPECT_EQ(rd(mmio::kStatus), 0u);
  wr(mmio::kQueueSel, 0);
  EXPECT_EQ(rd(mmio::kQueueReady), 0u);
  EXPECT_EQ(t_.acked_features(), 0u);
  // The handshake works again after a reset.
  activate();
  EXPECT_TRUE(t_.activated());
  EXPECT_EQ(dev_->activations, 2);
}

TEST_F(MmioTest, FeaturesWithoutVersion1AreRefused) {
  wr(mmio::kStatus, kStatusAcknowledge);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
  features(0x1);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  EXPECT_EQ(rd(mmio::kStatus) & kStatusFeaturesOk, 0u);
}

TEST_F(MmioTest, UnofferedFeaturesAreRefused) {
  wr(mmio::kStatus, kStatusAcknowledge);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
  features(feature_bit(kFeatureVersion1) | kUnofferedFeature);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  EXPECT_EQ(rd(mmio::kStatus) & kStatusFeaturesOk, 0u);
}

TEST_F(MmioTest, StatusOutOfOrderIsIgnored) {
  wr(mmio::kStatus, kStatusDriver);  // DRIVER before ACKNOWLEDGE
  EXPECT_EQ(rd(mmio::kStatus), 0u);
  wr(mmio::kStatus, kStatusAcknowledge);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriverOk);  // skips steps
  EXPECT_EQ(rd(mmio::kStatus), kStatusAcknowledge);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);  // two bits at once
  EXPECT_EQ(rd(mmio::kStatus), kStatusAcknowledge);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
  wr(mmio::kStatus, kStatusDriver);  // clearing bits without reset
  EXPECT_EQ(rd(mmio::kStatus), kStatusAcknowledge | kStatusDriver);
  EXPECT_EQ(dev_->activations, 0);
  EXPECT_GE(t_.refused_writes(), 3u);
}

TEST_F(MmioTest, FailedCanBeSetAnyTime) {
  wr(mmio::kStatus, kStatusAcknowledge);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusFailed);
  EXPECT_EQ(rd(mmio::kStatus), kStatusAcknowledge | kStatusFailed);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusFailed | kStatusDriver);
  EXPECT_EQ(rd(mmio::kStatus) & kStatusDriver, 0u);
}

TEST_F(MmioTest, FeatureWritesInWrongStateAreIgnored) {
  features(feature_bit(kFeatureVersion1));  // before DRIVER
  EXPECT_EQ(t_.acked_features(), 0u);
  to_features_ok();
  features(feature_bit(kFeatureVersion1) | 1);  // after FEATURES_OK
  EXPECT_EQ(t_.acked_features(), feature_bit(kFeatureVersion1));
}

TEST_F(MmioTest, QueueWritesBeforeFeaturesOkAreIgnored) {
  wr(mmio::kStatus, kStatusAcknowledge);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
  wr(mmio::kQueueSel, 0);
  wr(mmio::kQueueNum, 16);
  wr(mmio::kQueueReady, 1);
  EXPECT_EQ(rd(mmio::kQueueReady), 0u);
}

TEST_F(MmioTest, QueueWritesAfterDriverOkAreIgnored) {
  activate();
  wr(mmio::kQueueSel, 0);
  wr(mmio::kQueueReady, 0);
  EXPECT_EQ(rd(mmio::kQueueReady), 1u);
  wr(mmio::kQueueDescLow, 0x5000);
  EXPECT_EQ(dev_->queues_[0].desc_table, q0_.desc());
}

TEST_F(MmioTest, BadQueueSizesMarkNeedsReset) {
  for (uint32_t bad : {0u, 3u, 100u, 512u, 0x10000u}) {
    wr(mmio::kStatus, 0);
    to_features_ok();
    wr(mmio::kQueueSel, 0);
    wr(mmio::kQueueNum, bad);
    EXPECT_TRUE(rd(mmio::kStatus) & kStatusNeedsReset) << bad;
    // Nothing else is accepted until the reset.
    setup_queue(1, q1_);
    EXPECT_EQ(rd(mmio::kQueueReady), 0u);
    wr(mmio::kStatus, 15);
    EXPECT_FALSE(t_.activated());
  }
  wr(mmio::kStatus, 0);
  EXPECT_EQ(rd(mmio::kStatus), 0u);
}

TEST_F(MmioTest, QueueReadyWithBadRingAddressesIsRefused) {
  to_features_ok();
  wr(mmio::kQueueSel, 1);
  wr(mmio::kQueueNum, 16);
  wr(mmio::kQueueDescLow, 0xfffff000);  // outside guest RAM
  wr(mmio::kQueueDriverLow, static_cast<uint32_t>(q1_.avail().value()));
  wr(mmio::kQueueDeviceLow, static_cast<uint32_t>(q1_.used().value()));
  wr(mmio::kQueueReady, 1);
  EXPECT_EQ(rd(mmio::kQueueReady), 0u);
  EXPECT_TRUE(rd(mmio::kStatus) & kStatusNeedsReset);
}

TEST_F(MmioTest, QueueSelBeyondQueues) {
  to_features_ok();
  wr(mmio::kQueueSel, 2);
  EXPECT_EQ(rd(mmio::kQueueNumMax), 0u);
  wr(mmio::kQueueNum, 16);
  wr(mmio::kQueueReady, 1);
  EXPECT_EQ(rd(mmio::kQueueReady), 0u);
  EXPECT_FALSE(rd(mmio::kStatus) & kStatusNeedsReset);
}

TEST_F(MmioTest, NotifyBeforeDriverOkOrBadIndexIsIgnored) {
  wr(mmio::kQueueNotify, 0);
  t_.notify_queue(0);
  EXPECT_TRUE(dev_->notified.empty());
  activate();
  wr(mmio::kQueueNotify, 7);
  EXPECT_TRUE(dev_->notified.empty());
}

TEST_F(MmioTest, ActivationFailureMarksNeedsReset) {
  dev_->fail_activate = true;
  activate();
  EXPECT_FALSE(t_.activated());
  EXPECT_TRUE(rd(mmio::kStatus) & kStatusNeedsReset);
  EXPECT_TRUE(rd(mmio::kInterruptStatus) & kInterruptConfigChange);
}

TEST_F(MmioTest, BrokenQueueMarksNeedsResetAndStopsNotifications) {
  activate();
  dev_->fail_process = true;
  wr(mmio::kQueueNotify, 0);
  EXPECT_TRUE(rd(mmio::kStatus) & kStatusNeedsReset);
  EXPECT_TRUE(rd(mmio::kInterruptStatus) & kInterruptConfigChange);
  wr(mmio::kQueueNotify, 0);
  t_.notify_queue(0);
  EXPECT_EQ(dev_->notified.size(), 1u);
  wr(mmio::kStatus, 0);
  EXPECT_EQ(rd(mmio::kStatus), 0u);
}

TEST_F(MmioTest, DeviceSideNeedsResetIsVisible) {
  activate();
  dev_->irq_->mark_needs_reset();
  EXPECT_TRUE(rd(mmio::kStatus) & kStatusNeedsReset);
  wr(mmio::kStatus, 0);
  EXPECT_FALSE(rd(mmio::kStatus) & kStatusNeedsReset);
}

TEST_F(MmioTest, NarrowOrMisalignedRegisterAccess) {
  uint8_t b2[2] = {1, 0};
  t_.mmio_write(mmio::kStatus, b2);
  EXPECT_EQ(rd(mmio::kStatus), 0u);
  uint8_t r2[2] = {0xff, 0xff};
  t_.mmio_read(mmio::kMagicValue, r2);
  EXPECT_EQ(r2[0], 0);
  uint8_t b4[4] = {1, 0, 0, 0};
  t_.mmio_write(mmio::kStatus + 1, b4);
  EXPECT_EQ(rd(mmio::kStatus), 0u);
}

TEST_F(MmioTest, ConfigSpaceAnyWidth) {
  uint8_t one[1];
  t_.mmio_read(mmio::kConfig + 2, one);
  EXPECT_EQ(one[0], 3);
  uint8_t eight[8];
  t_.mmio_read(mmio::kConfig, eight);
  EXPECT_EQ(eight[7], 8);
  uint8_t past[4] = {9, 9, 9, 9};
  t_.mmio_read(mmio::kConfig + 6, past);  // half past the end
  EXPECT_EQ(past[0], 7);
  EXPECT_EQ(past[2], 0);
  t_.mmio_read(mmio::kConfig + UINT64_MAX - 0x200, past);
  EXPECT_EQ(past[0], 0);
  uint8_t w[2] = {1, 2};
  t_.mmio_write(mmio::kConfig + 4, w);
  EXPECT_EQ(dev_->last_config_write, 4u);
}

TEST_F(MmioTest, SaveAndRestoreState) {
  activate();
  dev_->queues_[1].set_positions(7, 5);  // as if requests had been served
  wr(mmio::kQueueNotify, 0);              // leaves InterruptStatus = 1
  MmioTransportState saved = t_.save_state();
  EXPECT_EQ(saved.status, 15u);
  ASSERT_EQ(saved.queues.size(), 2u);
  EXPECT_EQ(saved.queues[1].next_avail, 7);
  EXPECT_EQ(saved.queues[1].next_used, 5);
  EXPECT_EQ(saved.queues[0].desc_table, q0_.desc().value());
  EXPECT_EQ(saved.interrupt_status, kInterruptUsedBuffer);

  auto dev2 = std::make_shared<FakeDevice>();
  VirtioMmioTransport t2(mem_, dev2);
  ASSERT_TRUE(t2.restore_state(saved).ok());
  EXPECT_TRUE(t2.activated());
  EXPECT_EQ(dev2->activations, 1);
  ASSERT_EQ(dev2->queues_.size(), 2u);
  EXPECT_EQ(dev2->queues_[1].next_avail(), 7);
  EXPECT_EQ(dev2->queues_[1].next_used(), 5);
  EXPECT_EQ(t2.status(), 15u);
  EXPECT_EQ(t2.interrupt().status(), kInterruptUsedBuffer);
  EXPECT_FALSE(t2.restore_state(saved).ok());  // only onto a fresh transport
}

TEST_F(MmioTest, RestoreRejectsInconsistentState) {
  activate();
  MmioTransportState good = t_.save_state();
  auto try_restore = [&](MmioTransportState s) {
    auto dev2 = std::make_shared<FakeDevice>();
    VirtioMmioTransport t2(mem_, dev2);
    return t2.restore_state(s).ok();
  };
  EXPECT_TRUE(try_restore(good));
  MmioTransportState s = good;
  s.status = kStatusDriverOk;  // DRIVER_OK without the earlier steps
  EXPECT_FALSE(try_restore(s));
  s = good;
  s.queues.pop_back();
  EXPECT_FALSE(try_restore(s));
  s = good;
  s.acked_features |= kUnofferedFeature;
  EXPECT_FALSE(try_restore(s));
  s = good;
  s.queues[0].size = 3;
  EXPECT_FALSE(try_restore(s));
  s = good;
  s.queues[1].used_ring = 0xffffffff00ull;
  EXPECT_FALSE(try_restore(s));
}

TEST_F(MmioTest, QueueNotifierEventfdsReachTheDevice) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  auto n = QueueNotifiers::create(t_, **loop);
  ASSERT_TRUE(n.ok()) << n.error().message;
  ASSERT_EQ((*n)->size(), 2u);
  activate();
  uint64_t one = 1;
  ASSERT_EQ(::write((*n)->fd(1), &one, 8), 8);
  ASSERT_EQ(::write((*n)->fd(1), &one, 8), 8);  // coalesces with the first
  EXPECT_EQ(*(*loop)->run_once(1000), 1);
  ASSERT_EQ(dev_->notified.size(), 1u);
  EXPECT_EQ(dev_->notified[0], 1);
  int fd1 = (*n)->fd(1);
  n->reset();
  EXPECT_FALSE((*loop)->contains(fd1));
}

TEST(EventfdTrigger, SignalsTheEventfd) {
  UniqueFd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  Interrupt irq(eventfd_trigger(efd.get()));
  irq.signal_used_queue();
  irq.signal_config();
  uint64_t v = 0;
  ASSERT_EQ(::read(efd.get(), &v, 8), 8);
  EXPECT_EQ(v, 2u);
  EXPECT_EQ(irq.status(), kInterruptUsedBuffer | kInterruptConfigChange);
}

}  // namespace
}  // namespace kiln::vmm::virtio
