// Descriptor-chain walking: well-formed chains and every hostile layout we know of.
#include "vmm/virtio/descriptor_chain.h"

#include <gtest/gtest.h>

#include "tests/unit/vmm/virtio/virtq_builder.h"

namespace kiln::vmm::virtio {
namespace {

using testing::VirtqBuilder;

class ChainTest : public ::testing::Test {
 protected:
  GuestMemory mem_ = testing::make_memory(0x100000);
  VirtqBuilder q_{mem_, 0x1000, 16};

  Result<DescriptorChain> walk(uint16_t head, bool indirect = false) {
    return walk_descriptor_chain(mem_, q_.desc(), q_.size(), head,
                                 ChainWalkOptions{.indirect_allowed = indirect});
  }
};

TEST_F(ChainTest, SplitsReadableAndWritable) {
  q_.set_desc(0, 0x10000, 16, kDescFlagNext, 5);
  q_.set_desc(5, 0x11000, 512, kDescFlagNext | kDescFlagWrite, 2);
  q_.set_desc(2, 0x12000, 1, kDescFlagWrite, 0);
  auto c = walk(0);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->head, 0);
  ASSERT_EQ(c->readable.size(), 1u);
  ASSERT_EQ(c->writable.size(), 2u);
  EXPECT_EQ(c->readable_len, 16u);
  EXPECT_EQ(c->writable_len, 513u);
  EXPECT_EQ(c->writable[1].size(), 1u);
}

TEST_F(ChainTest, HeadOutOfRange) { EXPECT_FALSE(walk(16).ok()); }

TEST_F(ChainTest, NextOutOfRange) {
  q_.set_desc(0, 0x10000, 16, kDescFlagNext, 16);
  EXPECT_FALSE(walk(0).ok());
}

TEST_F(ChainTest, SelfLoopIsBounded) {
  q_.set_desc(3, 0x10000, 16, kDescFlagNext, 3);
  auto c = walk(3);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("loop"), std::string::npos);
}

TEST_F(ChainTest, LongLoopIsBounded) {
  for (uint16_t i = 0; i < 16; ++i) q_.set_desc(i, 0x10000, 16, kDescFlagNext, (i + 1) % 16);
  EXPECT_FALSE(walk(0).ok());
}

TEST_F(ChainTest, ChainOfExactlyQueueSizeIsFine) {
  for (uint16_t i = 0; i < 16; ++i) {
    q_.set_desc(i, 0x10000 + i * 16, 16, i < 15 ? kDescFlagNext : 0, i + 1);
  }
  auto c = walk(0);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->readable.size(), 16u);
}

TEST_F(ChainTest, BufferOutsideMemory) {
  q_.set_desc(0, 0x100000, 1, 0, 0);
  EXPECT_FALSE(walk(0).ok());
  q_.set_desc(0, 0xfffff, 2, 0, 0);  // crosses the end of RAM
  EXPECT_FALSE(walk(0).ok());
}

TEST_F(ChainTest, AddressPlusLengthOverflow) {
  q_.set_desc(0, UINT64_MAX - 3, 16, 0, 0);
  EXPECT_FALSE(walk(0).ok());
}

TEST_F(ChainTest, ReadableAfterWritableIsRejected) {
  q_.set_desc(0, 0x10000, 16, kDescFlagNext | kDescFlagWrite, 1);
  q_.set_desc(1, 0x11000, 16, 0, 0);
  EXPECT_FALSE(walk(0).ok());
  // Also when the writable descriptor is empty.
  q_.set_desc(0, 0x10000, 0, kDescFlagNext | kDescFlagWrite, 1);
  EXPECT_FALSE(walk(0).ok());
}

TEST_F(ChainTest, DescriptorTableOutsideMemory) {
  auto c = walk_descriptor_chain(mem_, GuestAddress(0xffff8), 16, 1, {});
  EXPECT_FALSE(c.ok());
  c = walk_descriptor_chain(mem_, GuestAddress(UINT64_MAX - 8), 16, 1, {});
  EXPECT_FALSE(c.ok());
}

TEST_F(ChainTest, IndirectTable) {
  // Indirect table at 0x20000 with 3 entries: readable, writable, writable.
  VirtqBuilder::write_desc_at(mem_, 0x20000, 0x30000, 16, kDescFlagNext, 1);
  VirtqBuilder::write_desc_at(mem_, 0x20010, 0x31000, 100, kDescFlagNext | kDescFlagWrite, 2);
  VirtqBuilder::write_desc_at(mem_, 0x20020, 0x32000, 1, kDescFlagWrite, 0);
  q_.set_desc(4, 0x20000, 48, kDescFlagIndirect, 0);
  EXPECT_FALSE(walk(4, /*indirect=*/false).ok());
  auto c = walk(4, true);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->head, 4);
  EXPECT_EQ(c->readable_len, 16u);
  EXPECT_EQ(c->writable_len, 101u);
}

TEST_F(ChainTest, IndirectAfterDirectDescriptors) {
  VirtqBuilder::write_desc_at(mem_, 0x20000, 0x31000, 8, kDescFlagWrite, 0);
  q_.set_desc(0, 0x30000, 16, kDescFlagNext, 1);
  q_.set_desc(1, 0x20000, 16, kDescFlagIndirect, 0);
  auto c = walk(0, true);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->readable_len, 16u);
  EXPECT_EQ(c->writable_len, 8u);
}

TEST_F(ChainTest, HostileIndirectTables) {
  // Length not a multiple of 16.
  q_.set_desc(0, 0x20000, 24, kDescFlagIndirect, 0);
  EXPECT_FALSE(walk(0, true).ok());
  // Empty table.
  q_.set_desc(0, 0x20000, 0, kDescFlagIndirect, 0);
  EXPECT_FALSE(walk(0, true).ok());
  // INDIRECT together with NEXT.
  VirtqBuilder::write_desc_at(mem_, 0x20000, 0x31000, 8, 0, 0);
  q_.set_desc(0, 0x20000, 16, kDescFlagIndirect | kDescFlagNext, 1);
  EXPECT_FALSE(walk(0, true).ok());
  // Table larger than the queue.
  q_.set_desc(0, 0x20000, 16 * 17, kDescFlagIndirect, 0);
  EXPECT_FALSE(walk(0, true).ok());
  // Table outside memory / overflowing.
  q_.set_desc(0, 0xffff0, 32, kDescFlagIndirect, 0);
  EXPECT_FALSE(walk(0, true).ok());
  q_.set_desc(0, UINT64_MAX - 15, 32, kDescFlagIndirect, 0);
  EXPECT_FALSE(walk(0, true).ok());
  // Nested indirect.
  VirtqBuilder::write_desc_at(mem_, 0x20000, 0x21000, 16, kDescFlagIndirect, 0);
  q_.set_desc(0, 0x20000, 16, kDescFlagIndirect, 0);
  EXPECT_FALSE(walk(0, true).ok());
  // Loop inside the indirect table.
  VirtqBuilder::write_desc_at(mem_, 0x20000, 0x31000, 8, kDescFlagNext, 1);
  VirtqBuilder::write_desc_at(mem_, 0x20010, 0x31000, 8, kDescFlagNext, 0);
  q_.set_desc(0, 0x20000, 32, kDescFlagIndirect, 0);
  EXPECT_FALSE(walk(0, true).ok());
  // next beyond the indirect table.
  VirtqBuilder::write_desc_at(mem_, 0x20010, 0x31000, 8, kDescFlagNext, 2);
  EXPECT_FALSE(walk(0, true).ok());
}

TEST(ChainCursor, ReaderAndWriterCrossBuffers) {
  std::vector<uint8_t> a(3), b(5);
  std::vector<std::span<uint8_t>> bufs{a, b};
  ChainWriter w(bufs);
  std::vector<uint8_t> in{1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(w.write(in).ok());
  EXPECT_EQ(w.written(), 6u);
  EXPECT_EQ(w.remaining(), 2u);
  std::vector<uint8_t> too_much(3);
  EXPECT_FALSE(w.write(too_much).ok());
  EXPECT_EQ(w.written(), 6u);
  ChainReader r(bufs);
  std::vector<uint8_t> out(4);
  ASSERT_TRUE(r.read(out).ok());
  EXPECT_EQ(out, (std::vector<uint8_t>{1, 2, 3, 4}));
  auto spans = r.take(3);
  ASSERT_TRUE(spans.ok());
  ASSERT_EQ(spans->size(), 1u);
  EXPECT_EQ((*spans)[0][1], 6);
  EXPECT_FALSE(r.skip(2).ok());
  EXPECT_TRUE(r.skip(1).ok());
  EXPECT_EQ(r.remaining(), 0u);
}

}  // namespace
}  // namespace kiln::vmm::virtio
