// The per-instance /30 pool: slot arithmetic, lowest-free order, exhaustion, release and
// reserve, and the ranges it refuses.
#include "src/net/address_pool.h"
#include "src/net/instance_addresses.h"

#include <gtest/gtest.h>

#include <vector>

namespace kiln::net {
namespace {

using protocol::format_ip_prefix;

AddressPool make_pool(const char* range) {
  auto pool = AddressPool::create(range);
  EXPECT_TRUE(pool.ok()) << (pool.ok() ? "" : pool.error().message);
  return std::move(pool).value();
}

TEST(AddressPool, SlotsAreConsecutiveSlash30s) {
  AddressPool pool = std::move(AddressPool::create(kDefaultInstanceRange).value());
  EXPECT_EQ(pool.capacity(), 16384u);
  AddressSlot s0 = pool.slot(0);
  EXPECT_EQ(format_ip_prefix(s0.host_end), "10.200.0.1/30");
  EXPECT_EQ(format_ip_prefix(s0.instance_end), "10.200.0.2/30");
  EXPECT_EQ(s0.host_link_name(), "kv0");
  AddressSlot s65 = pool.slot(65);
  EXPECT_EQ(format_ip_prefix(s65.host_end), "10.200.1.5/30");
  EXPECT_EQ(format_ip_prefix(s65.instance_end), "10.200.1.6/30");
  AddressSlot last = pool.slot(pool.capacity() - 1);
  EXPECT_EQ(format_ip_prefix(last.host_end), "10.200.255.253/30");
  EXPECT_EQ(format_ip_prefix(last.instance_end), "10.200.255.254/30");
  EXPECT_EQ(last.host_link_name(), "kv16383");
}

TEST(AddressPool, HandsOutLowestFreeAndNeverTwiceAtOnce) {
  AddressPool pool = make_pool("10.9.0.0/28");  // 4 slots
  ASSERT_EQ(pool.capacity(), 4u);
  std::vector<AddressLease> leases;
  for (std::uint32_t i = 0; i < 4; ++i) {
    auto lease = pool.acquire();
    ASSERT_TRUE(lease.ok());
    EXPECT_EQ(lease->slot().index, i);
    leases.push_back(std::move(lease).value());
  }
  EXPECT_EQ(pool.in_use(), 4u);
  auto none = pool.acquire();
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("all 4 instance subnets are in use"), std::string::npos);

  leases[2].reset();  // returned: the next acquire gets it again
  EXPECT_EQ(pool.in_use(), 3u);
  auto again = pool.acquire();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->slot().index, 2u);
  EXPECT_FALSE(pool.acquire().ok());
}

TEST(AddressPool, LeaseReturnsSlotOnDestructionAndMove) {
  AddressPool pool = make_pool("10.9.0.0/29");
  {
    auto a = pool.acquire();
    ASSERT_TRUE(a.ok());
    AddressLease moved = std::move(a).value();
    AddressLease target;
    target = std::move(moved);
    EXPECT_FALSE(moved.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_TRUE(target.valid());
    EXPECT_EQ(pool.in_use(), 1u);
  }
  EXPECT_EQ(pool.in_use(), 0u);
  {
    auto leaked = pool.acquire();
    ASSERT_TRUE(leaked.ok());
    leaked->release();
  }
  EXPECT_EQ(pool.in_use(), 1u);  // released leases stay taken (the plumbing outlives kilnd)
  pool.release(0);
  EXPECT_EQ(pool.in_use(), 0u);
}

TEST(AddressPool, ReserveSkipsSlotsFoundInUse) {
  AddressPool pool = make_pool("10.9.0.0/28");
  ASSERT_TRUE(pool.reserve(0).ok());
  ASSERT_TRUE(pool.reserve(2).ok());
  EXPECT_FALSE(pool.reserve(2).ok());  // already taken
  auto outside = pool.reserve(4);
  ASSERT_FALSE(outside.ok());
  EXPECT_NE(outside.error().message.find("outside the range 10.9.0.0/28"), std::string::npos);
  auto a = pool.acquire();
  auto b = pool.acquire();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->slot().index, 1u);
  EXPECT_EQ(b->slot().index, 3u);
  EXPECT_FALSE(pool.acquire().ok());
  pool.release(2);
  auto c = pool.acquire();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->slot().index, 2u);
}

TEST(AddressPool, RefusesUnusableRanges) {
  struct Case {
    const char* range;
    const char* says;
  };
  for (const Case& c : {Case{"10.200.0.1/16", "host bits are set"}, Case{"10.0.0.0/7", "prefix length must be 8 to 30"},
                        Case{"10.0.0.0/31", "prefix length must be 8 to 30"},
                        Case{"172.16.0.0/12", "holds the guest link 172.16.0.0/30"},
                        Case{"172.16.0.0/30", "holds the guest link"}, Case{"10.0.0.0", "instance range"},
                        Case{"fd00::/64", "instance range"}}) {
    auto pool = AddressPool::create(c.range);
    ASSERT_FALSE(pool.ok()) << c.range;
    EXPECT_NE(pool.error().message.find(c.says), std::string::npos) << c.range << ": " << pool.error().message;
  }
  EXPECT_TRUE(AddressPool::create("172.16.0.4/30").ok());  // next to the guest link is fine
  EXPECT_EQ(make_pool("10.0.0.0/8").capacity(), 1u << 22);
}

}  // namespace
}  // namespace kiln::net
