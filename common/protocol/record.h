// Record: the payload encoding of every frame, a flat list of (key, value) byte strings.
// Tiny and dependency-free so the static guest agent needs no JSON library; keys may repeat.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace kiln::protocol {

// Entry layout, repeated until the payload ends (integers little-endian):
//   u8  key length K (1..255)   K bytes key ([a-z0-9_], ASCII)
//   u32 value length V           V bytes value (arbitrary bytes)
// Numbers are decimal ASCII (no sign, no leading '+', at most 20 digits, fits u64).
class Record {
 public:
  Record& add(std::string_view key, std::string_view value);
  Record& add_u64(std::string_view key, std::uint64_t value);

  // First value for the key, if present.
  std::optional<std::string_view> get(std::string_view key) const;
  std::vector<std::string_view> get_all(std::string_view key) const;
  // Missing key -> `fallback`; present but malformed -> error.
  Result<std::uint64_t> get_u64(std::string_view key, std::uint64_t fallback) const;
  // Missing or malformed -> error.
  Result<std::uint64_t> require_u64(std::string_view key) const;

  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

  // Fails only if a key is invalid or the result would exceed kMaxPayload.
  Result<std::string> encode() const;
  // Hostile-input safe: every length is bounded by the remaining bytes; entry count capped.
  static Result<Record> decode(std::string_view bytes);

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

// Strict decimal u64 parse (used for record numbers and numeric uids).
std::optional<std::uint64_t> parse_u64(std::string_view s);

}  // namespace kiln::protocol
