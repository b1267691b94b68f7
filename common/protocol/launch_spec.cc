// LaunchSpec validation and (de)serialization to a Record payload.
#include "common/protocol/launch_spec.h"

#include "common/protocol/frame.h"
#include "common/protocol/record.h"

namespace kiln::protocol {

namespace {

constexpr std::uint64_t kMaxTimeoutMs = 3600ull * 1000;
constexpr std::uint64_t kMaxOverlayMib = 1ull << 20;

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

bool valid_hostname(std::string_view h) {
  if (h.empty() || h.size() > 64) return false;
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Error net_error(std::string_view key, const std::string& what) {
  return make_error("launch spec: " + std::string(key) + ": " + what);
}

// An address a guest NIC may own: a unicast host address, not a network or broadcast one.
Status check_interface_address(std::string_view key, std::string_view text, IpFamily family) {
  auto p = parse_ip_prefix(text, family);
  if (!p.ok()) return net_error(key, p.error().message);
  if (!is_unicast_host(p->address) || !is_subnet_host(*p)) {
    return net_error(key, format_ip_prefix(*p) + " is not a usable host address");
  }
  return ok_status();
}

Status check_gateway(std::string_view key, std::string_view text, std::string_view address_key,
                     std::string_view address, IpFamily family) {
  if (address.empty()) return net_error(key, "needs " + std::string(address_key));
  auto g = parse_ip(text, family);
  if (!g.ok()) return net_error(key, g.error().message);
  if (!is_unicast_host(*g)) return net_error(key, format_ip(*g) + " is not a unicast address");
  auto own = parse_ip_prefix(address, family);
  if (own.ok() && own->address == *g) return net_error(key, "is the guest's own address");
  if (own.ok() && prefix_contains(*own, *g) && !is_subnet_host(IpPrefix{*g, own->length})) {
    return net_error(key, format_ip(*g) + " is the network or broadcast address of " + std::string(address));
  }
  return ok_status();
}

// Single-valued keys must not repeat: two values would leave which one wins to the decoder.
Status get_single(const Record& r, std::string_view key, std::string& out) {
  auto all = r.get_all(key);
  if (all.size() > 1) return net_error(key, "given more than once");
  if (!all.empty()) {
    if (all[0].empty()) return net_error(key, "empty");
    out = std::string(all[0]);
  }
  return ok_status();
}

// Repeated keys: the count is checked before anything is copied.
Status get_repeated(const Record& r, std::string_view key, std::size_t max, std::vector<std::string>& out) {
  auto all = r.get_all(key);
  if (all.size() > max) return net_error(key, "more than " + std::to_string(max) + " values");
  for (auto v : all) out.emplace_back(v);
  return ok_status();
}

Status decode_network(const Record& r, NetworkSpec& n) {
  KILN_TRY(get_single(r, "net_mac", n.mac));
  KILN_TRY(get_single(r, "net_address", n.address));
  KILN_TRY(get_single(r, "net_gateway", n.gateway));
  KILN_TRY(get_single(r, "net_address6", n.address6));
  KILN_TRY(get_single(r, "net_gateway6", n.gateway6));
  if (r.get_all("net_mtu").size() > 1) return net_error("net_mtu", "given more than once");
  auto mtu = r.get_u64("net_mtu", 0);
  if (!mtu.ok()) return net_error("net_mtu", "not a number");
  // Range-checked by validate_network_spec; here only so that the narrowing below is exact.
  if (r.get("net_mtu") && (*mtu == 0 || *mtu > kMaxMtu)) return net_error("net_mtu", "out of range");
  n.mtu = static_cast<std::uint32_t>(*mtu);
  KILN_TRY(get_repeated(r, "net_dns", kMaxNameservers, n.dns));
  KILN_TRY(get_repeated(r, "net_search", kMaxSearchDomains, n.search));
  KILN_TRY(get_repeated(r, "net_hosts", kMaxHostsEntries, n.hosts));
  return ok_status();
}

// Names, ARNs and regions go into environment values and response headers: printable ASCII only.
bool header_safe(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

Status decode_lambda(const Record& r, LaunchSpec& s) {
  std::string api;
  KILN_TRY(get_single(r, "runtime_api", api));
  if (!api.empty()) {
    auto parsed = parse_runtime_api(api);
    if (!parsed.ok()) return net_error("runtime_api", parsed.error().message);
    s.runtime_api = *parsed;
  }
  LambdaSpec& l = s.lambda;
  KILN_TRY(get_single(r, "function_name", l.function_name));
  KILN_TRY(get_single(r, "function_arn", l.function_arn));
  KILN_TRY(get_single(r, "function_region", l.region));
  KILN_TRY(get_single(r, "function_handler", l.handler));
  for (auto [key, out] : {std::pair<std::string_view, std::uint64_t*>{"memory_mib", &l.memory_mib},
                          std::pair<std::string_view, std::uint64_t*>{"timeout_ms", &l.timeout_ms}}) {
    if (r.get_all(key).size() > 1) return net_error(key, "given more than once");
    auto v = r.get_u64(key, *out);
    if (!v.ok()) return net_error(key, "not a number");
    *out = *v;
  }
  return ok_status();
}

Status validate_lambda(const LambdaSpec& l) {
  if (l.function_name.empty() || l.function_name.size() > kMaxFunctionName || !header_safe(l.function_name)) {
    return net_error("function_name", "empty, longer than " + std::to_string(kMaxFunctionName) +
                                          " bytes or not printable ASCII");
  }
  if (l.function_arn.size() > kMaxFunctionArn || !header_safe(l.function_arn)) {
    return net_error("function_arn", "longer than " + std::to_string(kMaxFunctionArn) + " bytes or not printable ASCII");
  }
  if (l.region.empty() || l.region.size() > 64 || !header_safe(l.region)) {
    return net_error("function_region", "empty, too long or not printable ASCII");
  }
  if (l.handler.size() > 4096 || has_nul(l.handler)) return net_error("function_handler", "too long or has a NUL byte");
  if (l.memory_mib == 0 || l.memory_mib > kMaxMemoryMib) return net_error("memory_mib", "out of range");
  if (l.timeout_ms == 0 || l.timeout_ms > kMaxTimeoutMs) return net_error("timeout_ms", "out of range");
  return ok_status();
}

}  // namespace

const char* runtime_api_name(RuntimeApi api) {
  switch (api) {
    case RuntimeApi::kHttp9000: return "http9000";
    case RuntimeApi::kLambda: return "lambda";
  }
  return "unknown";
}

Result<RuntimeApi> parse_runtime_api(std::string_view text) {
  if (text == "http9000") return RuntimeApi::kHttp9000;
  if (text == "lambda") return RuntimeApi::kLambda;
  return make_error("'" + std::string(text.substr(0, 64)) + "' is not http9000 or lambda");
}

std::string LambdaSpec::invoked_arn() const {
  if (!function_arn.empty()) return function_arn;
  return "arn:aws:lambda:" + region + ":000000000000:function:" + function_name;
}

Result<HostsEntry> parse_hosts_entry(std::string_view line) {
  if (line.size() > kMaxHostsLine) return make_error("line longer than " + std::to_string(kMaxHostsLine) + " bytes");
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t') {
      ++i;
      continue;
    }
    std::size_t end = line.find_first_of(" \t", i);
    if (end == std::string_view::npos) end = line.size();
    words.push_back(line.substr(i, end - i));
    i = end;
  }
  if (words.size() < 2) return make_error("'" + std::string(line.substr(0, 64)) + "' is not 'ADDRESS NAME...'");
  HostsEntry e;
  KILN_ASSIGN_OR_RETURN(e.address, parse_ip(words[0]));
  for (std::size_t w = 1; w < words.size(); ++w) {
    // Names are DNS names, so no newline, NUL, '#' or other byte can change the file's meaning.
    if (!is_dns_name(words[w])) return make_error("'" + std::string(words[w].substr(0, 64)) + "' is not a host name");
    e.names.emplace_back(words[w]);
  }
  return e;
}

Status validate_network_spec(const NetworkSpec& n) {
  if (!n.enabled()) {
    // Every other key describes the NIC net_mac names: alone it would silently do nothing.
    const std::pair<const char*, bool> keys[] = {
        {"net_address", !n.address.empty()}, {"net_gateway", !n.gateway.empty()},
        {"net_address6", !n.address6.empty()}, {"net_gateway6", !n.gateway6.empty()},
        {"net_mtu", n.mtu != 0}, {"net_dns", !n.dns.empty()},
        {"net_search", !n.search.empty()}, {"net_hosts", !n.hosts.empty()}};
    for (const auto& [key, present] : keys) {
      if (present) return net_error(key, "needs net_mac");
    }
    return ok_status();
  }
  if (auto m = parse_mac(n.mac); !m.ok()) return net_error("net_mac", m.error().message);
  if (!n.address.empty()) KILN_TRY(check_interface_address("net_address", n.address, IpFamily::kV4));
  if (!n.address6.empty()) KILN_TRY(check_interface_address("net_address6", n.address6, IpFamily::kV6));
  if (!n.gateway.empty()) {
    KILN_TRY(check_gateway("net_gateway", n.gateway, "net_address", n.address, IpFamily::kV4));
  }
  if (!n.gateway6.empty()) {
    KILN_TRY(check_gateway("net_gateway6", n.gateway6, "net_address6", n.address6, IpFamily::kV6));
  }
  if (n.mtu != 0) {
    if (n.mtu < kMinMtu || n.mtu > kMaxMtu) {
      return net_error("net_mtu", std::to_string(n.mtu) + " is outside " + std::to_string(kMinMtu) + ".." +
                                      std::to_string(kMaxMtu));
    }
    if (!n.address6.empty() && n.mtu < kMinMtuIpv6) {
      return net_error("net_mtu", std::to_string(n.mtu) + " is under IPv6's minimum " + std::to_string(kMinMtuIpv6));
    }
  }
  if (n.dns.size() > kMaxNameservers) {
    return net_error("net_dns", "more than " + std::to_string(kMaxNameservers) + " nameservers");
  }
  for (const auto& d : n.dns) {
    auto a = parse_ip(d);
    if (!a.ok()) return net_error("net_dns", a.error().message);
    if (!is_unicast_host(*a)) return net_error("net_dns", format_ip(*a) + " is not a unicast address");
  }
  if (n.search.size() > kMaxSearchDomains) {
    return net_error("net_search", "more than " + std::to_string(kMaxSearchDomains) + " domains");
  }
  for (const auto& d : n.search) {
    if (!is_dns_name(d)) return net_error("net_search", "'" + d.substr(0, 64) + "' is not a domain name");
  }
  if (n.hosts.size() > kMaxHostsEntries) {
    return net_error("net_hosts", "more than " + std::to_string(kMaxHostsEntries) + " lines");
  }
  for (const auto& h : n.hosts) {
    if (auto e = parse_hosts_entry(h); !e.ok()) return net_error("net_hosts", e.error().message);
  }
  return ok_status();
}

Status validate_launch_spec(const LaunchSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) return make_error("launch spec: empty command");
  if (spec.argv.size() > kMaxArgs) return make_error("launch spec: too many arguments");
  if (spec.env.size() > kMaxEnv) return make_error("launch spec: too many env entries");
  for (const auto& a : spec.argv) {
    if (has_nul(a)) return make_error("launch spec: argument contains a NUL byte");
  }
  for (const auto& e : spec.env) {
    auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0) {
      return make_error("launch spec: env entry without NAME=: '" + e.substr(0, 64) + "'");
    }
    if (has_nul(e)) return make_error("launch spec: env entry contains a NUL byte");
  }
  if (spec.working_dir.empty() || spec.working_dir[0] != '/' || has_nul(spec.working_dir)) {
    return make_error("launch spec: working dir must be an absolute path");
  }
  if (has_nul(spec.user) || spec.user.size() > 256) return make_error("launch spec: bad user");
  if (!valid_hostname(spec.hostname)) return make_error("launch spec: bad hostname");
  if (has_nul(spec.instance_id) || spec.instance_id.size() > 256) {
    return make_error("launch spec: bad instance id");
  }
  if (spec.port == 0) return make_error("launch spec: port 0");
  if (spec.ready_timeout_ms > kMaxTimeoutMs || spec.stop_grace_ms > kMaxTimeoutMs) {
    return make_error("launch spec: timeout over one hour");
  }
  if (spec.overlay_mib == 0 || spec.overlay_mib > kMaxOverlayMib) {
    return make_error("launch spec: overlay size out of range");
  }
  KILN_TRY(validate_lambda(spec.lambda));
  return validate_network_spec(spec.net);
}

Result<std::string> encode_launch_spec(const LaunchSpec& spec) {
  KILN_TRY(validate_launch_spec(spec));
  Record r;
  for (const auto& a : spec.argv) r.add("arg", a);
  for (const auto& e : spec.env) r.add("env", e);
  r.add("cwd", spec.working_dir);
  r.add("user", spec.user);
  r.add("hostname", spec.hostname);
  r.add("instance_id", spec.instance_id);
  r.add_u64("port", spec.port);
  r.add_u64("ready_timeout_ms", spec.ready_timeout_ms);
  r.add_u64("stop_grace_ms", spec.stop_grace_ms);
  r.add_u64("overlay_mib", spec.overlay_mib);
  if (spec.wall_clock_ns != 0) r.add_u64("wall_clock_ns", spec.wall_clock_ns);
  // Network keys only when set, so a spec without a network encodes as it always did.
  const NetworkSpec& n = spec.net;
  auto add_if = [&r](std::string_view key, const std::string& v) {
    if (!v.empty()) r.add(key, v);
  };
  add_if("net_mac", n.mac);
  add_if("net_address", n.address);
  add_if("net_gateway", n.gateway);
  add_if("net_address6", n.address6);
  add_if("net_gateway6", n.gateway6);
  if (n.mtu != 0) r.add_u64("net_mtu", n.mtu);
  for (const auto& d : n.dns) r.add("net_dns", d);
  for (const auto& d : n.search) r.add("net_search", d);
  for (const auto& h : n.hosts) r.add("net_hosts", h);
  // Lambda keys only in lambda mode, so an http9000 spec encodes as it always did.
  if (spec.runtime_api == RuntimeApi::kLambda) {
    const LambdaSpec& l = spec.lambda;
    r.add("runtime_api", runtime_api_name(spec.runtime_api));
    r.add("function_name", l.function_name);
    add_if("function_arn", l.function_arn);
    r.add("function_region", l.region);
    add_if("function_handler", l.handler);
    r.add_u64("memory_mib", l.memory_mib);
    r.add_u64("timeout_ms", l.timeout_ms);
  }
  return r.encode();
}

Result<LaunchSpec> decode_launch_spec(std::string_view payload) {
  KILN_ASSIGN_OR_RETURN(Record r, Record::decode(payload));
  LaunchSpec s;
  auto args = r.get_all("arg");
  if (args.size() > kMaxArgs) return make_error("launch spec: too many arguments");
  for (auto a : args) s.argv.emplace_back(a);
  auto envs = r.get_all("env");
  if (envs.size() > kMaxEnv) return make_error("launch spec: too many env entries");
  for (auto e : envs) s.env.emplace_back(e);
  if (auto v = r.get("cwd")) s.working_dir = std::string(*v);
  if (auto v = r.get("user")) s.user = std::string(*v);
  if (auto v = r.get("hostname")) s.hostname = std::string(*v);
  if (auto v = r.get("instance_id")) s.instance_id = std::string(*v);
  KILN_ASSIGN_OR_RETURN(std::uint64_t port, r.get_u64("port", 9000));
  if (port == 0 || port > 65535) return make_error("launch spec: port out of range");
  s.port = static_cast<std::uint16_t>(port);
  KILN_ASSIGN_OR_RETURN(s.ready_timeout_ms, r.get_u64("ready_timeout_ms", s.ready_timeout_ms));
  KILN_ASSIGN_OR_RETURN(s.stop_grace_ms, r.get_u64("stop_grace_ms", s.stop_grace_ms));
  KILN_ASSIGN_OR_RETURN(s.overlay_mib, r.get_u64("overlay_mib", s.overlay_mib));
  KILN_ASSIGN_OR_RETURN(s.wall_clock_ns, r.get_u64("wall_clock_ns", 0));
  KILN_TRY(decode_network(r, s.net));
  KILN_TRY(decode_lambda(r, s));
  KILN_TRY(validate_launch_spec(s));
  return s;
}

Result<std::string> encode_config_drive(const LaunchSpec& spec) {
  KILN_ASSIGN_OR_RETURN(std::string payload, encode_launch_spec(spec));
  return encode_frame(FrameType::kLaunchSpec, payload);
}

Result<LaunchSpec> decode_config_drive(std::string_view bytes) {
  KILN_ASSIGN_OR_RETURN(DecodeResult d, decode_frame(bytes));
  if (d.state != DecodeState::kFrame) return make_error("config drive: truncated frame");
  if (d.frame.type != FrameType::kLaunchSpec) {
    return make_error("config drive: frame is not a launch spec");
  }
  return decode_launch_spec(d.frame.payload);
}

}  // namespace kiln::protocol
