// Parsing of the function's `network` setting and the operator's defaults (kiln_json's strict
// reader, net_address's parsers), and the policy they make together.
#include "src/net/network_settings.h"

#include <algorithm>
#include <utility>

#include "src/net/link_prefix.h"

namespace kiln::net {
namespace {

using json::FieldError;
using json::FieldResult;
using json::FieldStatus;
using json::Json;
using json::Nulls;
using json::ObjectReader;
using json::StringRules;
using protocol::IpFamily;

constexpr StringRules kAddressText{.max_bytes = 64, .allow_nul = false};
constexpr std::size_t kMaxOperatorCidrs = 1024;

constexpr IpPrefix v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint8_t length) {
  return IpPrefix{{IpFamily::kV4, {a, b, c, d}}, length};
}

bool looks_ipv6(const std::string& text) { return text.find(':') != std::string::npos; }

// The fixed range `prefix` lies in, if any.
const NamedRange* never_range_of(const IpPrefix& prefix) {
  for (const auto& r : never_reachable_ranges()) {
    if (prefix_within(prefix, r.prefix)) return &r;
  }
  return nullptr;
}

// "A.B.C.D/N" or a bare "A.B.C.D" (/32), IPv4, host bits clear.
FieldResult<IpPrefix> read_cidr(const Json& v, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string text, json::read_string(v, path, kAddressText));
  if (looks_ipv6(text)) return json::field_error(path, "IPv6 egress is not supported yet");
  IpPrefix prefix;
  if (text.find('/') == std::string::npos) {
    auto address = protocol::parse_ip(text, IpFamily::kV4);
    if (!address.ok()) return json::field_error(path, address.error().message);
    prefix = IpPrefix{*address, 32};
  } else {
    auto parsed = protocol::parse_ip_prefix(text, IpFamily::kV4);
    if (!parsed.ok()) return json::field_error(path, parsed.error().message);
    prefix = *parsed;
  }
  if (network_of(prefix) != prefix) {
    return json::field_error(path, "'" + text + "' has host bits set (the network is " +
                                       protocol::format_ip_prefix(network_of(prefix)) + ")");
  }
  return prefix;
}

FieldResult<std::vector<IpPrefix>> read_cidrs(const ObjectReader& r, std::string_view key, std::size_t max_entries,
                                              bool refuse_never) {
  KILN_ASSIGN_OR_RETURN(const Json* list, r.opt_array(key));
  std::vector<IpPrefix> out;
  if (!list) return out;
  if (list->size() > max_entries) {
    return r.error(key, "has more than " + std::to_string(max_entries) + " entries");
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    std::string path = json::element_path(r.field(key), i);
    KILN_ASSIGN_OR_RETURN(IpPrefix prefix, read_cidr((*list)[i], path));
    if (const NamedRange* never = refuse_never ? never_range_of(prefix) : nullptr) {
      return json::field_error(path, protocol::format_ip_prefix(prefix) + " is never reachable (" + never->name + ")");
    }
    out.push_back(prefix);
  }
  return out;
}

FieldResult<std::vector<IpAddress>> read_dns(const ObjectReader& r) {
  KILN_ASSIGN_OR_RETURN(const Json* list, r.opt_array("dns"));
  std::vector<IpAddress> out;
  if (!list) return out;
  if (list->size() > kMaxDnsServers) {
    return r.error("dns", "has more than " + std::to_string(kMaxDnsServers) + " entries");
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    std::string path = json::element_path(r.field("dns"), i);
    KILN_ASSIGN_OR_RETURN(std::string text, json::read_string((*list)[i], path, kAddressText));
    if (looks_ipv6(text)) return json::field_error(path, "IPv6 egress is not supported yet");
    auto address = protocol::parse_ip(text, IpFamily::kV4);
    if (!address.ok()) return json::field_error(path, address.error().message);
    if (const NamedRange* never = never_range_of(IpPrefix{*address, 32})) {
      return json::field_error(path, text + " is never reachable (" + never->name + ")");
    }
    out.push_back(*address);
  }
  return out;
}

FieldResult<std::optional<NetworkMode>> read_mode(const ObjectReader& r) {
  KILN_ASSIGN_OR_RETURN(auto text, r.opt_string("mode", kAddressText));
  if (!text) return std::optional<NetworkMode>();
  if (*text == "none") return std::optional<NetworkMode>(NetworkMode::kNone);
  if (*text == "egress") return std::optional<NetworkMode>(NetworkMode::kEgress);
  return r.error("mode", "must be \"none\" or \"egress\"");
}

FieldResult<IpPrefix> read_instance_range(const ObjectReader& r, IpPrefix fallback) {
  const Json* v = r.opt_value("instance_range");
  if (!v) return fallback;
  std::string path = r.field("instance_range");
  KILN_ASSIGN_OR_RETURN(IpPrefix range, read_cidr(*v, path));
  // Each instance takes a /30: a /28 holds four, a /8 four million.
  if (range.length < 8 || range.length > 28) return json::field_error(path, "prefix length must be 8..28");
  for (const auto& r2 : never_reachable_ranges()) {
    if (prefix_within(range, r2.prefix) || prefix_within(r2.prefix, range)) {
      return json::field_error(path, "overlaps " + protocol::format_ip_prefix(r2.prefix) + " (" + r2.name + ")");
    }
  }
  return range;
}

FieldResult<Bandwidth> read_bandwidth(const ObjectReader& r) {
  KILN_ASSIGN_OR_RETURN(auto object, r.opt_object("bandwidth", {"rx", "tx"}));
  Bandwidth b;
  if (!object) return b;
  KILN_TRY(object->check_unknown());
  KILN_ASSIGN_OR_RETURN(b.rx, object->opt_uint_in("rx", kMinBandwidth, kMaxBandwidth));
  KILN_ASSIGN_OR_RETURN(b.tx, object->opt_uint_in("tx", kMinBandwidth, kMaxBandwidth));
  return b;
}

}  // namespace

const char* network_mode_name(NetworkMode mode) { return mode == NetworkMode::kNone ? "none" : "egress"; }

const std::vector<NamedRange>& never_reachable_ranges() {
  static const std::vector<NamedRange> ranges = {
      {v4(0, 0, 0, 0, 8), "\"this network\""},
      {v4(127, 0, 0, 0, 8), "loopback"},
      {v4(169, 254, 0, 0, 16), "link-local, with the metadata address 169.254.169.254"},
      {v4(172, 16, 0, 0, 30), "the guest's own link"},
      {v4(224, 0, 0, 0, 4), "multicast"},
      {v4(240, 0, 0, 0, 4), "reserved, with the broadcast address 255.255.255.255"},
  };
  return ranges;
}

const std::vector<NamedRange>& private_ranges() {
  static const std::vector<NamedRange> ranges = {
      {v4(10, 0, 0, 0, 8), "private (RFC 1918)"},
      {v4(100, 64, 0, 0, 10), "shared address space (RFC 6598)"},
      {v4(172, 16, 0, 0, 12), "private (RFC 1918)"},
      {v4(192, 168, 0, 0, 16), "private (RFC 1918)"},
  };
  return ranges;
}

IpPrefix network_of(const IpPrefix& prefix) {
  IpPrefix out = prefix;
  std::size_t bits = prefix.length;
  for (std::size_t i = 0; i < out.address.size(); ++i) {
    std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
    out.address.bytes[i] &= mask;
    bits = bits >= 8 ? bits - 8 : 0;
  }
  return out;
}

bool prefix_within(const IpPrefix& inner, const IpPrefix& outer) {
  return inner.length >= outer.length && protocol::prefix_contains(outer, inner.address);
}

std::vector<IpPrefix> normalize_prefixes(std::vector<IpPrefix> prefixes) {
  for (auto& p : prefixes) p = network_of(p);
  std::sort(prefixes.begin(), prefixes.end(), [](const IpPrefix& a, const IpPrefix& b) {
    if (a.address.family != b.address.family) return a.address.family < b.address.family;
    if (a.address.bytes != b.address.bytes) return a.address.bytes < b.address.bytes;
    return a.length < b.length;  // the wider one first, so the narrower ones fold into it
  });
  std::vector<IpPrefix> out;
  for (const auto& p : prefixes) {
    // Sorted by address, a prefix inside another one comes right after it or after one of
    // its own nested prefixes; both end up inside out.back()'s range.
    if (!out.empty() && prefix_within(p, out.back())) continue;
    out.push_back(p);
  }
  return out;
}

FieldResult<NetworkSettings> parse_network_settings(const Json& value, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::make(value, path, {"mode", "allow", "deny", "dns", "bandwidth"},
                                                           Nulls::kValue));
  KILN_TRY(r.check_unknown());
  NetworkSettings s;
  KILN_ASSIGN_OR_RETURN(s.mode, read_mode(r));
  KILN_ASSIGN_OR_RETURN(s.allow, read_cidrs(r, "allow", kMaxNetworkCidrs, /*refuse_never=*/true));
  KILN_ASSIGN_OR_RETURN(s.deny, read_cidrs(r, "deny", kMaxNetworkCidrs, /*refuse_never=*/false));
  KILN_ASSIGN_OR_RETURN(s.dns, read_dns(r));
  KILN_ASSIGN_OR_RETURN(s.bandwidth, read_bandwidth(r));
  return s;
}

Json network_settings_json(const NetworkSettings& s) {
  Json j = Json::object();
  if (s.mode) j["mode"] = network_mode_name(*s.mode);
  auto prefixes = [](const std::vector<IpPrefix>& list) {
    Json a = Json::array();
    for (const auto& p : list) a.push_back(protocol::format_ip_prefix(p));
    return a;
  };
  if (!s.allow.empty()) j["allow"] = prefixes(s.allow);
  if (!s.deny.empty()) j["deny"] = prefixes(s.deny);
  if (!s.dns.empty()) {
    j["dns"] = Json::array();
    for (const auto& a : s.dns) j["dns"].push_back(protocol::format_ip(a));
  }
  if (s.bandwidth.rx || s.bandwidth.tx) {
    j["bandwidth"] = Json::object();
    if (s.bandwidth.rx) j["bandwidth"]["rx"] = *s.bandwidth.rx;
    if (s.bandwidth.tx) j["bandwidth"]["tx"] = *s.bandwidth.tx;
  }
  return j;
}

FieldResult<NetworkDefaults> parse_network_defaults(const Json& value, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::make(value, path,
                                                           {"mode", "allow_private", "deny", "dns", "instance_range",
                                                            "link_prefix"},
                                                           Nulls::kValue));
  KILN_TRY(r.check_unknown());
  NetworkDefaults d;
  KILN_ASSIGN_OR_RETURN(auto mode, read_mode(r));
  d.mode = mode.value_or(d.mode);
  KILN_ASSIGN_OR_RETURN(auto allow_private, r.opt_bool("allow_private"));
  d.allow_private = allow_private.value_or(false);
  KILN_ASSIGN_OR_RETURN(d.deny, read_cidrs(r, "deny", kMaxOperatorCidrs, /*refuse_never=*/false));
  KILN_ASSIGN_OR_RETURN(d.dns, read_dns(r));
  KILN_ASSIGN_OR_RETURN(d.instance_range, read_instance_range(r, d.instance_range));
  KILN_ASSIGN_OR_RETURN(auto prefix, r.opt_string("link_prefix", kAddressText));
  if (prefix) {
    if (auto problem = link_prefix_problem(*prefix, d.instance_range)) return r.error("link_prefix", *problem);
    d.link_prefix = std::move(*prefix);
  }
  return d;
}

EgressPolicy resolve_policy(const NetworkSettings& settings, const NetworkDefaults& defaults) {
  EgressPolicy p;
  p.mode = settings.mode.value_or(defaults.mode);
  p.allow_private = defaults.allow_private;
  p.allow = normalize_prefixes(settings.allow);
  p.deny = normalize_prefixes(settings.deny);
  std::vector<IpPrefix> never = defaults.deny;
  for (const auto& r : never_reachable_ranges()) never.push_back(r.prefix);
  never.push_back(defaults.instance_range);  // other instances, and the host ends of their veths
  p.never = normalize_prefixes(std::move(never));
  p.dns = settings.dns.empty() ? defaults.dns : settings.dns;
  p.bandwidth = settings.bandwidth;
  return p;
}

bool needs_interface(const EgressPolicy& policy) {
  return policy.mode == NetworkMode::kEgress || !policy.allow.empty();
}

}  // namespace kiln::net
