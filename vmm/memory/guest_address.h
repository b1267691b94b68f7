// GuestAddress: a guest-physical address as a distinct type, so host pointers, offsets and
// guest addresses cannot be mixed up. All arithmetic on it is overflow-checked.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>

namespace kiln::vmm {

struct GuestAddress {
  constexpr GuestAddress() = default;
  constexpr explicit GuestAddress(uint64_t v) : value_(v) {}

  constexpr uint64_t value() const { return value_; }

  // this + offset, or nullopt when it wraps past 2^64.
  constexpr std::optional<GuestAddress> checked_add(uint64_t offset) const {
    uint64_t r = 0;
    if (__builtin_add_overflow(value_, offset, &r)) return std::nullopt;
    return GuestAddress(r);
  }
  // this - base, or nullopt when this < base.
  constexpr std::optional<uint64_t> offset_from(GuestAddress base) const {
    if (value_ < base.value_) return std::nullopt;
    return value_ - base.value_;
  }

  constexpr auto operator<=>(const GuestAddress&) const = default;

 private:
  uint64_t value_ = 0;
};

}  // namespace kiln::vmm
