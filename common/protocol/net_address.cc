// Address parsing and formatting for the launch spec's network keys (inet_pton/inet_ntop do the
// address text itself; everything around them is checked here).
#include "common/protocol/net_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

#include "common/protocol/record.h"

namespace kiln::protocol {

namespace {

constexpr std::size_t kMaxAddressText = 64;  // longer than any IPv6 text form

std::string quoted(std::string_view text) {
  return "'" + std::string(text.substr(0, kMaxAddressText)) + (text.size() > kMaxAddressText ? "...'" : "'");
}

const char* family_name(IpFamily f) { return f == IpFamily::kV4 ? "IPv4" : "IPv6"; }

}  // namespace

Result<IpAddress> parse_ip(std::string_view text, IpFamily family) {
  // inet_pton needs a C string; anything longer than an address (or holding a NUL) is not one.
  if (text.empty() || text.size() > kMaxAddressText || text.find('\0') != std::string_view::npos) {
    return make_error(quoted(text) + " is not an " + family_name(family) + " address");
  }
  std::string c(text);
  IpAddress a;
  a.family = family;
  int af = family == IpFamily::kV4 ? AF_INET : AF_INET6;
  if (::inet_pton(af, c.c_str(), a.bytes.data()) != 1) {
    return make_error(quoted(text) + " is not an " + family_name(family) + " address");
  }
  return a;
}

Result<IpAddress> parse_ip(std::string_view text) {
  if (auto v4 = parse_ip(text, IpFamily::kV4); v4.ok()) return v4;
  if (auto v6 = parse_ip(text, IpFamily::kV6); v6.ok()) return v6;
  return make_error(quoted(text) + " is not an IP address");
}

Result<IpPrefix> parse_ip_prefix(std::string_view text, IpFamily family) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return make_error(quoted(text) + " has no /prefix length");
  }
  KILN_ASSIGN_OR_RETURN(IpAddress address, parse_ip(text.substr(0, slash), family));
  std::string_view len_text = text.substr(slash + 1);
  const std::uint64_t max_len = family == IpFamily::kV4 ? 32 : 128;
  auto len = parse_u64(len_text);
  if (!len || (len_text.size() > 1 && len_text[0] == '0') || *len == 0 || *len > max_len) {
    return make_error(quoted(text) + ": prefix length must be 1.." + std::to_string(max_len));
  }
  return IpPrefix{address, static_cast<std::uint8_t>(*len)};
}

Result<MacAddress> parse_mac(std::string_view text) {
  // Exactly "xx:xx:xx:xx:xx:xx".
  MacAddress mac{};
  bool shape = text.size() == 17;
  for (std::size_t i = 0; shape && i < 6; ++i) {
    const char* first = text.data() + 3 * i;
    auto [end, ec] = std::from_chars(first, first + 2, mac[i], 16);
    if (ec != std::errc() || end != first + 2 || (i < 5 && text[3 * i + 2] != ':')) shape = false;
  }
  if (!shape) return make_error(quoted(text) + " is not a MAC address (aa:bb:cc:dd:ee:ff)");
  if (mac[0] & 1) return make_error(quoted(text) + " is a multicast MAC address");
  if (mac == MacAddress{}) return make_error(quoted(text) + " is the all-zero MAC address");
  return mac;
}

std::string format_ip(const IpAddress& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(a.family == IpFamily::kV4 ? AF_INET : AF_INET6, a.bytes.data(), buf, sizeof(buf));
  return buf;
}

std::string format_ip_prefix(const IpPrefix& p) { return format_ip(p.address) + "/" + std::to_string(p.length); }

std::string format_mac(const MacAddress& m) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return buf;
}

bool prefix_contains(const IpPrefix& p, const IpAddress& a) {
  if (p.address.family != a.family) return false;
  std::size_t bits = p.length;
  for (std::size_t i = 0; i < a.size() && bits > 0; ++i) {
    std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
    if ((p.address.bytes[i] & mask) != (a.bytes[i] & mask)) return false;
    bits = bits >= 8 ? bits - 8 : 0;
  }
  return true;
}

bool is_unicast_host(const IpAddress& a) {
  const auto& b = a.bytes;
  if (a.family == IpFamily::kV4) {
    if (b[0] == 0 || b[0] == 127 || b[0] >= 224) return false;  // "this network", loopback, multicast/reserved
    return true;
  }
  bool zero_head = true;  // first 10 bytes zero
  for (std::size_t i = 0; i < 10; ++i) zero_head = zero_head && b[i] == 0;
  if (zero_head && b[10] == 0xff && b[11] == 0xff) return false;  // ::ffff:a.b.c.d
  bool all_zero_but_last = zero_head && b[10] == 0 && b[11] == 0 && b[12] == 0 && b[13] == 0 && b[14] == 0;
  if (all_zero_but_last && (b[15] == 0 || b[15] == 1)) return false;  // :: and ::1
  return b[0] != 0xff;  // multicast
}

bool is_subnet_host(const IpPrefix& p) {
  if (p.address.family != IpFamily::kV4 || p.length > 30) return true;
  std::uint32_t v = (std::uint32_t{p.address.bytes[0]} << 24) | (std::uint32_t{p.address.bytes[1]} << 16) |
                    (std::uint32_t{p.address.bytes[2]} << 8) | p.address.bytes[3];
  std::uint32_t host_mask = (std::uint32_t{1} << (32 - p.length)) - 1;
  std::uint32_t host = v & host_mask;
  return host != 0 && host != host_mask;
}

bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label != 0;
}

}  // namespace kiln::protocol
