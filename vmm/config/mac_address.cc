// MAC address text <-> bytes.
#include "vmm/config/mac_address.h"

#include <charconv>
#include <cstdio>

namespace kiln::vmm::config {

namespace {
constexpr size_t kMacTextBytes = 17;  // "xx:" * 5 + "xx"
}  // namespace

Result<MacAddress> parse_mac_address(std::string_view text) {
  auto refuse = [&] {
    return make_error("expected six two-digit hex groups separated by ':' (like 06:00:ac:10:00:02), got \"" +
                      std::string(text.substr(0, 64)) + "\"");
  };
  if (text.size() != kMacTextBytes) return refuse();
  MacAddress mac{};
  for (size_t i = 0; i < mac.size(); ++i) {
    const char* group = text.data() + i * 3;
    if (i + 1 < mac.size() && group[2] != ':') return refuse();
    // from_chars takes no sign, prefix or space: exactly two hex digits or an error.
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(group, group + 2, value, 16);
    if (ec != std::errc() || end != group + 2) return refuse();
    mac[i] = static_cast<std::uint8_t>(value);
  }
  return mac;
}

std::string format_mac_address(const MacAddress& mac) {
  char out[kMacTextBytes + 1];
  std::snprintf(out, sizeof out, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  return std::string(out, kMacTextBytes);
}

}  // namespace kiln::vmm::config
