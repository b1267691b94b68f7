// Queue: configuration validation, avail/used ring handling, notification suppression.
#include "vmm/virtio/queue.h"

#include <gtest/gtest.h>

#include "tests/unit/vmm/virtio/virtq_builder.h"

namespace kiln::vmm::virtio {
namespace {

using testing::VirtqBuilder;

TEST(Queue, ValidateChecksSizeAlignmentAndRange) {
  GuestMemory mem = testing::make_memory(0x10000);
  VirtqBuilder b(mem, 0x1000, 8);
  Queue q = b.queue(256);
  EXPECT_TRUE(q.validate(mem).ok());
  q.size = 0;
  EXPECT_FALSE(q.validate(mem).ok());
  q.size = 6;
  EXPECT_FALSE(q.validate(mem).ok());
  q.size = 512;  // above max
  EXPECT_FALSE(q.validate(mem).ok());
  q = b.queue(256);
  q.desc_table = GuestAddress(0x1008);  // misaligned
  EXPECT_FALSE(q.validate(mem).ok());
  q = b.queue(256);
  q.used_ring = GuestAddress(0x1002);
  EXPECT_FALSE(q.validate(mem).ok());
  q = b.queue(256);
  q.avail_ring = GuestAddress(0xfffe);  // runs off RAM
  EXPECT_FALSE(q.validate(mem).ok());
  q = b.queue(256);
  q.used_ring = GuestAddress(UINT64_MAX - 3);
  EXPECT_FALSE(q.validate(mem).ok());
}

TEST(Queue, PopAndAddUsed) {
  GuestMemory mem = testing::make_memory();
  VirtqBuilder b(mem, 0x1000, 8);
  Queue q = b.queue();
  auto none = q.pop(mem);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  uint16_t h1 = b.add_chain({{0x10000, 16, false}, {0x11000, 8, true}});
  uint16_t h2 = b.add_chain({{0x12000, 4, true}});
  EXPECT_TRUE(*q.has_available(mem));
  auto c1 = q.pop(mem);
  ASSERT_TRUE(c1.ok() && c1->has_value());
  EXPECT_EQ((*c1)->head, h1);
  ASSERT_TRUE((*c1)->chain.ok());
  auto c2 = q.pop(mem);
  ASSERT_TRUE(c2.ok() && c2->has_value());
  EXPECT_EQ((*c2)->head, h2);
  EXPECT_FALSE(*q.has_available(mem));

  ASSERT_TRUE(q.add_used(mem, h2, 4).ok());
  ASSERT_TRUE(q.add_used(mem, h1, 8).ok());
  EXPECT_EQ(b.used_idx(), 2);
  EXPECT_EQ(b.used_elem(0), (std::pair<uint32_t, uint32_t>{h2, 4}));
  EXPECT_EQ(b.used_elem(1), (std::pair<uint32_t, uint32_t>{h1, 8}));
}

TEST(Queue, UndoPopReturnsTheSameChain) {
  GuestMemory mem = testing::make_memory();
  VirtqBuilder b(mem, 0x1000, 8);
  Queue q = b.queue();
  uint16_t h = b.add_chain({{0x12000, 4, true}});
  auto c = q.pop(mem);
  ASSERT_TRUE(c.ok() && c->has_value());
  q.undo_pop();
  auto again = q.pop(mem);
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->head, h);
}

TEST(Queue, IndicesWrapAround) {
  GuestMemory mem = testing::make_memory();
  VirtqBuilder b(mem, 0x1000, 4);
  Queue q = b.queue();
  for (int i = 0; i < 70000; i += 1) {
    uint16_t h = b.add_chain({{0x12000, 4, true}});
    auto c = q.pop(mem);
    ASSERT_TRUE(c.ok() && c->has_value());
    ASSERT_EQ((*c)->head, h);
    ASSERT_TRUE(q.add_used(mem, h, 0).ok());
  }
  EXPECT_EQ(b.used_idx(), static_cast<uint16_t>(70000));
}

TEST(Queue, AvailIndexRunningAheadIsFatal) {
  GuestMemory mem = testing::make_memory();
  VirtqBuilder b(mem, 0x1000, 8);
  Queue q = b.queue();
  b.set_avail_idx(9);  // 9 new entries in a queue of 8
  EXPECT_FALSE(q.pop(mem).ok());
}

TEST(Queue, HeadIndexOutOfRangeIsFatal) {
  GuestMemory mem = testing::make_memory();
  VirtqBuilder b(mem, 0x1000, 8);
  Queue q = b.queue();
  b.publish(8);
  EXPECT_FALSE(q.pop(mem).ok());
}

TEST(Queue, MalformedChainIsPerRequest) {
  GuestMemory mem = testing::make_memory();
  VirtqBuilder b(mem, 0x1000, 8);
  Queue q = b.queue();
  b.set_desc(0, 0x10000, 16, kDescFlagNext, 0);  // self loop
  b.publish(0);
  uint16_t good = 1;
  b.set_desc(1, 0x10000, 16, 0, 0);
  b.publish(good);
  auto bad = q.pop(mem);
  ASSERT_TRUE(bad.ok() && bad->has_value());
  EXPECT_FALSE((*bad)->chain.ok());
  auto ok = q.pop(mem);
  ASSERT_TRUE(ok.ok() && ok->has_value());
  EXPECT_TRUE((*ok)->chain.ok());
}

TEST(Queue, NotificationFollowsNoInterruptFlag) {
  GuestMemory mem = testing::make_memory();
  VirtqBuilder b(mem, 0x1000, 8);
  Queue q = b.queue();
  EXPECT_FALSE(*q.needs_notification(mem));  // nothing added
  ASSERT_TRUE(q.add_used(mem, 0, 0).ok());
  EXPECT_TRUE(*q.needs_notification(mem));
  EXPECT_FALSE(*q.needs_notification(mem));  // already notified
  b.set_avail_flags(kAvailFlagNoInterrupt);
  ASSERT_TRUE(q.add_used(mem, 0, 0).ok());
  EXPECT_FALSE(*q.needs_notification(mem));
}

TEST(Queue, EventIdxInterruptsFollowUsedEvent) {
  GuestMemory mem = testing::make_memory();
  VirtqBuilder b(mem, 0x1000, 8);
  // Publishes `n` used elements, then asks whether the driver wants an interrupt.
  auto used_then_ask = [&](Queue& q, int n) {
    for (int i = 0; i < n; ++i) EXPECT_TRUE(q.add_used(mem, 0, 0).ok());
    return *q.needs_notification(mem);
  };
  Queue q = b.queue();
  q.event_idx = true;
  b.set_avail_flags(kAvailFlagNoInterrupt);  // ignored under event_idx
  b.set_used_event(100);
  EXPECT_TRUE(used_then_ask(q, 1));  // used 0 -> 1: the first decision always interrupts
  b.set_used_event(1);               // "interrupt once entry 1 is used"
  EXPECT_TRUE(used_then_ask(q, 1));  // 1 -> 2 passes 1
  b.set_used_event(4);
  EXPECT_FALSE(used_then_ask(q, 1));  // 2 -> 3
  EXPECT_FALSE(used_then_ask(q, 1));  // 3 -> 4
  EXPECT_TRUE(used_then_ask(q, 1));   // 4 -> 5 passes 4
  EXPECT_FALSE(*q.needs_notification(mem));  // nothing added since
  b.set_used_event(6);
  EXPECT_TRUE(used_then_ask(q, 3));  // 5 -> 8, used_event among them: one interrupt
  // Across the 16-bit wrap.
  Queue w = b.queue();
  w.event_idx = true;
  w.set_positions(0, 65534);
  b.set_used_event(65535);
  EXPECT_TRUE(used_then_ask(w, 1));  // 65534 -> 65535: the first decision
  EXPECT_TRUE(used_then_ask(w, 1));  // 65535 -> 0 passes 65535
  b.set_used_event(3);
  EXPECT_FALSE(used_then_ask(w, 1));  // 0 -> 1
}

TEST(Queue, EventIdxAsksForAKickOnlyWhenTheRingIsEmpty) {
  GuestMemory mem = testing::make_memory();
  VirtqBuilder b(mem, 0x1000, 8);
  Queue q = b.queue();
  q.event_idx = true;
  auto none = q.pop(mem);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(b.avail_event(), 0);  // kick for the chain after index 0
  b.add_chain({{0x12000, 4, true}});
  b.add_chain({{0x12000, 4, true}});
  b.add_chain({{0x12000, 4, true}});
  ASSERT_TRUE(q.pop(mem)->has_value());
  EXPECT_EQ(b.avail_event(), 0);      // chains left: no new request
  EXPECT_TRUE(*q.arm_kick(mem));      // chains waiting: the device goes on by itself
  EXPECT_EQ(b.avail_event(), 0);
  ASSERT_TRUE(q.pop(mem)->has_value());
  ASSERT_TRUE(q.pop(mem)->has_value());
  EXPECT_FALSE(*q.arm_kick(mem));     // stopped at the end without an empty pop
  EXPECT_EQ(b.avail_event(), 3);
  EXPECT_FALSE(q.pop(mem)->has_value());
  EXPECT_EQ(b.avail_event(), 3);
  // Without event_idx the device never writes avail_event.
  Queue plain = b.queue();
  b.add_chain({{0x12000, 4, true}});
  while (plain.pop(mem)->has_value()) {
  }
  EXPECT_FALSE(*plain.arm_kick(mem));
  EXPECT_EQ(b.avail_event(), 3);
}

}  // namespace
}  // namespace kiln::vmm::virtio
