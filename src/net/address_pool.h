// Per-instance /30 subnets out of kilnd's instance range (default 10.200.0.0/16): slot N is the
// N-th /30, its host end (.1) on link <prefix><N> (kv<N> by default), its instance end (.2) in
// the instance's netns.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol/net_address.h"
#include "src/net/instance_addresses.h"
#include "common/result.h"

namespace kiln::net {

inline constexpr std::uint8_t kSlotPrefixLength = 30;

// One instance's subnet.
struct AddressSlot {
  std::uint32_t index = 0;
  protocol::IpPrefix host_end;      // base + 4N + 1 / 30
  protocol::IpPrefix instance_end;  // base + 4N + 2 / 30

  // The host end's link name, "<link_prefix><N>" (kv<N>: at most 9 characters for the largest
  // range; link_prefix_problem keeps every prefix within the 15-byte limit).
  std::string host_link_name(std::string_view link_prefix = kDefaultLinkPrefix) const;
};

class AddressPool;

// A slot held by one instance; returns it to its pool when destroyed. The pool must outlive it.
class AddressLease {
 public:
  AddressLease() = default;
  AddressLease(AddressPool* pool, AddressSlot slot) : pool_(pool), slot_(slot) {}
  ~AddressLease() { reset(); }
  AddressLease(AddressLease&& o) noexcept;
  AddressLease& operator=(AddressLease&& o) noexcept;
  AddressLease(const AddressLease&) = delete;
  AddressLease& operator=(const AddressLease&) = delete;

  bool valid() const { return pool_ != nullptr; }
  const AddressSlot& slot() const { return slot_; }
  // Gives the slot back now.
  void reset();
  // Keeps the slot taken without returning it (the plumbing was leaked on purpose).
  void release() { pool_ = nullptr; }

 private:
  AddressPool* pool_ = nullptr;
  AddressSlot slot_;
};

// Hands out the /30 slots of an IPv4 range, lowest free index first, never one twice at once.
// Thread-safe.
class AddressPool {
 public:
  // `range`: IPv4, /8 to /30, its address the network itself (host bits zero), and not holding
  // the guest link's 172.16.0.0/30 (that subnet exists inside every instance netns).
  static Result<AddressPool> create(const protocol::IpPrefix& range);
  static Result<AddressPool> create(std::string_view range_text);

  AddressPool(AddressPool&& o) noexcept;
  AddressPool& operator=(AddressPool&&) = delete;
  AddressPool(const AddressPool&) = delete;

  // The lowest free slot, or an error when every slot is taken.
  Result<AddressLease> acquire();
  // Marks slot `index` taken (found in use at start-up); error when out of range or taken.
  Status reserve(std::uint32_t index);
  // Returns slot `index` (AddressLease does this; also for slots reserve() took).
  void release(std::uint32_t index);

  AddressSlot slot(std::uint32_t index) const;
  std::uint32_t capacity() const { return static_cast<std::uint32_t>(taken_.size()); }
  std::uint32_t in_use() const;
  const protocol::IpPrefix& range() const { return range_; }

 private:
  AddressPool(const protocol::IpPrefix& range, std::uint32_t capacity);

  protocol::IpPrefix range_;
  std::uint32_t base_ = 0;  // host byte order
  mutable std::mutex mutex_;
  std::vector<bool> taken_;
  std::uint32_t in_use_ = 0;
  std::uint32_t lowest_free_hint_ = 0;  // no free slot below this index
};

}  // namespace kiln::net
