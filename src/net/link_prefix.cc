// Link prefix validation and the host table name derived from it.
#include "src/net/link_prefix.h"

#include <algorithm>

#include "src/net/egress_rules.h"

namespace kiln::net {

namespace {

bool is_letter(char c) { return c >= 'a' && c <= 'z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<std::string> link_prefix_problem(std::string_view prefix, const protocol::IpPrefix& instance_range) {
  if (prefix.empty()) return "must not be empty";
  if (!std::all_of(prefix.begin(), prefix.end(), [](char c) { return is_letter(c) || is_digit(c); })) {
    return "may hold only a-z and 0-9";
  }
  if (!is_letter(prefix.front()) || !is_letter(prefix.back())) return "must start and end with a letter";
  if (prefix != kDefaultLinkPrefix && prefix.starts_with(kDefaultLinkPrefix)) {
    return "must not start with \"" + std::string(kDefaultLinkPrefix) + "\" (the default kilnd's links)";
  }
  // Slot N is the N-th /30 of the range; the range is /8 or longer, so shifts stay below 32.
  const unsigned slot_bits = instance_range.length <= 30 ? 30u - instance_range.length : 0u;
  const std::string largest = std::to_string((std::uint64_t{1} << slot_bits) - 1);
  if (prefix.size() + largest.size() > kMaxLinkNameLength) {
    return "'" + std::string(prefix) + "' is too long: with slot numbers up to " + largest + " (instance_range " +
           protocol::format_ip_prefix(instance_range) + ") link names exceed " + std::to_string(kMaxLinkNameLength) +
           " characters";
  }
  return std::nullopt;
}

std::string host_table_name(std::string_view link_prefix) {
  if (link_prefix == kDefaultLinkPrefix) return std::string(kHostTable);
  return std::string(kHostTable) + "_" + std::string(link_prefix);
}

}  // namespace kiln::net
