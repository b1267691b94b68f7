// Per-instance /30 slots of the instance range: index arithmetic and the taken set.
#include "src/net/address_pool.h"

#include <string>

namespace kiln::net {

namespace {

std::uint32_t to_host_u32(const protocol::IpAddress& a) {
  return (std::uint32_t{a.bytes[0]} << 24) | (std::uint32_t{a.bytes[1]} << 16) |
         (std::uint32_t{a.bytes[2]} << 8) | std::uint32_t{a.bytes[3]};
}

protocol::IpPrefix from_host_u32(std::uint32_t v, std::uint8_t length) {
  protocol::IpPrefix p;
  p.address.family = protocol::IpFamily::kV4;
  p.address.bytes[0] = static_cast<std::uint8_t>(v >> 24);
  p.address.bytes[1] = static_cast<std::uint8_t>(v >> 16);
  p.address.bytes[2] = static_cast<std::uint8_t>(v >> 8);
  p.address.bytes[3] = static_cast<std::uint8_t>(v);
  p.length = length;
  return p;
}

constexpr std::uint8_t kMinRangeLength = 8;
constexpr std::uint32_t kGuestLinkNetwork = 0xac100000;  // 172.16.0.0/30, inside every instance netns

}  // namespace

std::string AddressSlot::host_link_name(std::string_view link_prefix) const {
  return std::string(link_prefix) + std::to_string(index);
}

AddressLease::AddressLease(AddressLease&& o) noexcept : pool_(o.pool_), slot_(o.slot_) { o.pool_ = nullptr; }

AddressLease& AddressLease::operator=(AddressLease&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = o.pool_;
    slot_ = o.slot_;
    o.pool_ = nullptr;
  }
  return *this;
}

void AddressLease::reset() {
  if (pool_ != nullptr) pool_->release(slot_.index);
  pool_ = nullptr;
}

Result<AddressPool> AddressPool::create(const protocol::IpPrefix& range) {
  const std::string text = protocol::format_ip_prefix(range);
  if (range.address.family != protocol::IpFamily::kV4) {
    return make_error("instance range " + text + ": must be IPv4");
  }
  if (range.length < kMinRangeLength || range.length > kSlotPrefixLength) {
    return make_error("instance range " + text + ": prefix length must be 8 to 30");
  }
  std::uint32_t base = to_host_u32(range.address);
  std::uint32_t host_mask = (std::uint32_t{1} << (32 - range.length)) - 1;
  if ((base & host_mask) != 0) {
    return make_error("instance range " + text + ": host bits are set (not a network address)");
  }
  if (protocol::prefix_contains(range, from_host_u32(kGuestLinkNetwork, 30).address)) {
    return make_error("instance range " + text + ": holds the guest link 172.16.0.0/30");
  }
  return AddressPool(range, std::uint32_t{1} << (kSlotPrefixLength - range.length));
}

Result<AddressPool> AddressPool::create(std::string_view range_text) {
  auto range = protocol::parse_ip_prefix(range_text, protocol::IpFamily::kV4);
  if (!range.ok()) return range.error().wrap("instance range");
  return create(*range);
}

AddressPool::AddressPool(const protocol::IpPrefix& range, std::uint32_t capacity)
    : range_(range), base_(to_host_u32(range.address)), taken_(capacity, false) {}

AddressPool::AddressPool(AddressPool&& o) noexcept : range_(o.range_), base_(o.base_) {
  std::lock_guard lock(o.mutex_);
  taken_ = std::move(o.taken_);
  in_use_ = o.in_use_;
  lowest_free_hint_ = o.lowest_free_hint_;
}

Result<AddressLease> AddressPool::acquire() {
  std::lock_guard lock(mutex_);
  for (std::uint32_t i = lowest_free_hint_; i < taken_.size(); ++i) {
    if (!taken_[i]) {
      taken_[i] = true;
      ++in_use_;
      lowest_free_hint_ = i + 1;
      return AddressLease(this, slot(i));
    }
  }
  return make_error("instance range " + protocol::format_ip_prefix(range_) + ": all " +
                    std::to_string(taken_.size()) + " instance subnets are in use");
}

Status AddressPool::reserve(std::uint32_t index) {
  std::lock_guard lock(mutex_);
  if (index >= taken_.size()) {
    return make_error("instance subnet " + std::to_string(index) + " is outside the range " +
                      protocol::format_ip_prefix(range_));
  }
  if (taken_[index]) return make_error("instance subnet " + std::to_string(index) + " is already taken");
  taken_[index] = true;
  ++in_use_;
  return ok_status();
}

void AddressPool::release(std::uint32_t index) {
  std::lock_guard lock(mutex_);
  if (index >= taken_.size() || !taken_[index]) return;
  taken_[index] = false;
  --in_use_;
  if (index < lowest_free_hint_) lowest_free_hint_ = index;
}

AddressSlot AddressPool::slot(std::uint32_t index) const {
  std::uint32_t network = base_ + index * 4;
  return AddressSlot{index, from_host_u32(network + 1, kSlotPrefixLength),
                     from_host_u32(network + 2, kSlotPrefixLength)};
}

std::uint32_t AddressPool::in_use() const {
  std::lock_guard lock(mutex_);
  return in_use_;
}

}  // namespace kiln::net
