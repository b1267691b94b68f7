// GuestMemory: region layout rules and checked access, including overflow at 2^64.
#include "vmm/memory/guest_memory.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

namespace kiln::vmm {
namespace {

TEST(GuestAddress, CheckedAddDetectsWrap) {
  EXPECT_EQ(GuestAddress(10).checked_add(5)->value(), 15u);
  EXPECT_FALSE(GuestAddress(UINT64_MAX).checked_add(1).has_value());
  EXPECT_TRUE(GuestAddress(UINT64_MAX - 1).checked_add(1).has_value());
  EXPECT_EQ(GuestAddress(10).offset_from(GuestAddress(4)), 6u);
  EXPECT_FALSE(GuestAddress(3).offset_from(GuestAddress(4)).has_value());
}

TEST(GuestMemory, RejectsOverlapEmptyAndWrappingRegions) {
  EXPECT_FALSE(GuestMemory::create_anonymous({{GuestAddress(0), 0x2000}, {GuestAddress(0x1000), 0x1000}}).ok());
  EXPECT_FALSE(GuestMemory::create_anonymous({{GuestAddress(0), 0}}).ok());
  EXPECT_FALSE(GuestMemory::create_anonymous({{GuestAddress(UINT64_MAX - 0xfff + 1), 0x2000}}).ok());
  // Exactly reaching the top of the address space is fine.
  EXPECT_TRUE(GuestMemory::create_anonymous({{GuestAddress(UINT64_MAX - 0xfff), 0x1000}}).ok());
  EXPECT_TRUE(GuestMemory::create_anonymous({{GuestAddress(0x1000), 0x1000}, {GuestAddress(0), 0x1000}}).ok());
}

TEST(GuestMemory, RegionsAreSortedAndExposeHostPointers) {
  auto mem = GuestMemory::create_anonymous({{GuestAddress(0x100000), 0x1000}, {GuestAddress(0), 0x2000}});
  ASSERT_TRUE(mem.ok());
  auto regions = mem->regions();
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0].base.value(), 0u);
  EXPECT_EQ(regions[0].size, 0x2000u);
  EXPECT_EQ(regions[1].base.value(), 0x100000u);
  ASSERT_NE(regions[0].host, nullptr);
  regions[1].host[5] = 0xab;
  EXPECT_EQ(*mem->read_obj<uint8_t>(GuestAddress(0x100005)), 0xab);
}

TEST(GuestMemory, AdoptsExistingMappings) {
  auto map = MappedRegion::anonymous(0x1000);
  ASSERT_TRUE(map.ok());
  map->data()[0] = 42;
  std::vector<GuestMemory::Adopted> adopted;
  adopted.push_back({GuestAddress(0x5000), std::move(*map)});
  auto mem = GuestMemory::from_mappings(std::move(adopted));
  ASSERT_TRUE(mem.ok());
  EXPECT_EQ(*mem->read_obj<uint8_t>(GuestAddress(0x5000)), 42);
  EXPECT_FALSE(mem->read_obj<uint8_t>(GuestAddress(0x4fff)).ok());
}

TEST(GuestMemory, ReadWriteObjRoundTripAndBounds) {
  auto mem = GuestMemory::create_anonymous({{GuestAddress(0x1000), 0x1000}});
  ASSERT_TRUE(mem.ok());
  ASSERT_TRUE(mem->write_obj<uint64_t>(GuestAddress(0x1ff8), 0x1122334455667788ull).ok());
  EXPECT_EQ(*mem->read_obj<uint64_t>(GuestAddress(0x1ff8)), 0x1122334455667788ull);
  EXPECT_FALSE(mem->write_obj<uint64_t>(GuestAddress(0x1ff9), 1).ok());  // crosses the end
  EXPECT_FALSE(mem->read_obj<uint32_t>(GuestAddress(0xffc)).ok());       // starts before
  EXPECT_FALSE(mem->read_obj<uint32_t>(GuestAddress(0x3000)).ok());
}

TEST(GuestMemory, FailedWriteChangesNothing) {
  auto mem = GuestMemory::create_anonymous({{GuestAddress(0), 0x1000}});
  ASSERT_TRUE(mem.ok());
  std::array<uint8_t, 16> data;
  data.fill(0xee);
  EXPECT_FALSE(mem->write(GuestAddress(0xff8), data).ok());
  EXPECT_EQ(*mem->read_obj<uint8_t>(GuestAddress(0xff8)), 0);
}

TEST(GuestMemory, SliceStaysInsideOneRegion) {
  auto mem = GuestMemory::create_anonymous({{GuestAddress(0), 0x1000}, {GuestAddress(0x1000), 0x1000}});
  ASSERT_TRUE(mem.ok());
  EXPECT_TRUE(mem->slice(GuestAddress(0x800), 0x800).ok());
  EXPECT_TRUE(mem->slice(GuestAddress(0xfff), 0).ok());
  EXPECT_FALSE(mem->slice(GuestAddress(0x800), 0x801).ok());  // crosses into the next region
  EXPECT_FALSE(mem->slice(GuestAddress(0x2000), 0).ok());     // outside RAM
  EXPECT_FALSE(mem->slice(GuestAddress(0x10), UINT64_MAX).ok());
  auto s = mem->slice(GuestAddress(0x10), 4);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->size(), 4u);
}

TEST(GuestMemory, ReadAndWriteSpanAdjacentRegions) {
  auto mem = GuestMemory::create_anonymous({{GuestAddress(0), 0x1000}, {GuestAddress(0x1000), 0x1000}});
  ASSERT_TRUE(mem.ok());
  std::array<uint8_t, 8> in{1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_TRUE(mem->write(GuestAddress(0xffc), in).ok());
  std::array<uint8_t, 8> out{};
  ASSERT_TRUE(mem->read(GuestAddress(0xffc), out).ok());
  EXPECT_EQ(in, out);
  EXPECT_TRUE(mem->check_range(GuestAddress(0), 0x2000));
  EXPECT_FALSE(mem->check_range(GuestAddress(0), 0x2001));
}

TEST(GuestMemory, GapBetweenRegionsIsNotMemory) {
  auto mem = GuestMemory::create_anonymous({{GuestAddress(0), 0x1000}, {GuestAddress(0x3000), 0x1000}});
  ASSERT_TRUE(mem.ok());
  EXPECT_FALSE(mem->check_range(GuestAddress(0xfff), 2));
  EXPECT_FALSE(mem->read_obj<uint8_t>(GuestAddress(0x2000)).ok());
}

TEST(GuestMemory, OverflowingRangesAreRejected) {
  auto mem = GuestMemory::create_anonymous({{GuestAddress(UINT64_MAX - 0xfff), 0x1000}});
  ASSERT_TRUE(mem.ok());
  EXPECT_TRUE(mem->check_range(GuestAddress(UINT64_MAX - 0xfff), 0x1000));
  EXPECT_TRUE(mem->read_obj<uint8_t>(GuestAddress(UINT64_MAX)).ok());
  EXPECT_FALSE(mem->read_obj<uint16_t>(GuestAddress(UINT64_MAX)).ok());
  EXPECT_FALSE(mem->check_range(GuestAddress(UINT64_MAX), 2));
  EXPECT_FALSE(mem->slice(GuestAddress(UINT64_MAX), 2).ok());
  EXPECT_FALSE(mem->check_range(GuestAddress(UINT64_MAX - 0xfff), UINT64_MAX));
}

}  // namespace
}  // namespace kiln::vmm
