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

}  // namespace

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
  return ok_status();
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
