// Routing and per-route handling of the Firecracker REST API (swagger firecracker.yaml:
// paths /, /actions, /boot-source, /drives/{drive_id}, /entropy, /logger, /machine-config,
// /metrics, /network-interfaces/{iface_id}, /serial, /snapshot/create, /snapshot/load, /version,
// /vm, /vm/config, /vsock).
#include "vmm/api/api_router.h"

#include <exception>
#include <vector>

#include "common/json/field_reader.h"
#include "vmm/config/snapshot_config.h"
#include "vmm/logging/logger.h"

#ifndef KILN_VMM_VERSION
#define KILN_VMM_VERSION "0.0.0"
#endif

namespace kiln::vmm::api {

using nlohmann::json;

namespace {

constexpr int kOk = 200;
constexpr int kBadRequest = 400;
constexpr int kInternalError = 500;

ApiResponse bad_request(std::string_view message) { return ApiResponse::fault(kBadRequest, message); }
ApiResponse bad_request(const Error& e) { return ApiResponse::fault(kBadRequest, e.message); }

constexpr std::string_view kIdMismatch = "The id from the path does not match the id from the body!";

// "/drives/rootfs/" -> {"drives", "rootfs"}: leading and trailing '/' ignored, like
// Firecracker's trim_start_matches('/').split_terminator('/').
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!path.empty()) {
    const size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

}  // namespace

std::string_view vmm_version() { return KILN_VMM_VERSION; }

ApiResponse ApiResponse::json(int status, const nlohmann::json& body) {
  return ApiResponse{status, kiln::json::dump(body)};
}

ApiResponse ApiResponse::fault(int status, std::string_view message) {
  return json(status, nlohmann::json{{"fault_message", std::string(message)}});
}

ApiRouter::ApiRouter(VmController& controller, RouterOptions options)
    : controller_(controller), options_(std::move(options)) {}

config::VmConfig ApiRouter::config() const {
  std::lock_guard<std::mutex> lock(mu_);
  return config_;
}

InstanceState ApiRouter::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_.state();
}

bool ApiRouter::boot_resources_configured() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_.boot_resources_configured();
}

ApiResponse ApiRouter::handle(std::string_view method, std::string_view target, std::string_view body) {
  std::lock_guard<std::mutex> lock(mu_);
  if (const size_t q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  ApiResponse response;
  try {
    response = dispatch(method, target, body);
  } catch (const std::exception& e) {
    // Nothing below should throw; if it does, the client gets a 500 and the VMM lives on.
    response = ApiResponse::fault(kInternalError, std::string("internal error: ") + e.what());
  } catch (...) {
    response = ApiResponse::fault(kInternalError, "internal error");
  }
  if (options_.metrics != nullptr) {
    options_.metrics->counter("api_server.requests").inc();
    if (response.status >= 400) options_.metrics->counter("api_server.errors").inc();
  }
  if (response.status >= 400) {
    KILN_LOG_WARN("API %.*s %.*s -> %d %s", static_cast<int>(method.size()), method.data(),
                  static_cast<int>(target.size()), target.data(), response.status, response.body.c_str());
  } else {
    KILN_LOG_INFO("API %.*s %.*s -> %d", static_cast<int>(method.size()), method.data(),
                  static_cast<int>(target.size()), target.data(), response.status);
  }
  return response;
}

ApiResponse ApiRouter::dispatch(std::string_view method, std::string_view path, std::string_view body) {
  const auto tokens = split_path(path);
  const std::string_view first = tokens.empty() ? std::string_view() : tokens[0];
  const size_t n = tokens.size();
  auto invalid = [&] {
    return bad_request("Invalid request method and/or path: " + std::string(method) + " " + std::string(path) + ".");
  };

  if (method == "GET") {
    if (!body.empty()) return bad_request("GET request cannot have a body.");
    if (n == 0) return get_instance_info();
    if (first == "machine-config" && n == 1) return ApiResponse::json(kOk, to_json(config_.machine_config));
    if (first == "vm" && n == 2 && tokens[1] == "config") return ApiResponse::json(kOk, to_json(config_));
    if (first == "metrics" && n == 1) return ApiResponse::json(kOk, controller_.metrics());
    if (first == "version" && n == 1) {
      return ApiResponse::json(kOk, json{{"firecracker_version", std::string(vmm_version())}});
    }
    return invalid();
  }
  if (method != "PUT" && method != "PATCH") return invalid();
  if (body.empty()) return bad_request("Empty " + std::string(method) + " request.");

  // Route first, so an unknown path is reported as such even with a malformed body.
  enum class Route { kNone, kActions, kBootSource, kMachineConfig, kDrive, kNetworkInterface, kVsock, kEntropy,
                     kSerial, kLogger, kMetrics, kSnapshotCreate, kSnapshotLoad, kVm };
  Route route = Route::kNone;
  std::string_view resource_id;  // {drive_id} or {iface_id} from the path
  // "/drives/{id}", "/network-interfaces/{id}": an empty id is refused before routing, as
  // Firecracker does.
  auto with_id = [&](Route r) -> bool {
    if (n == 1) return false;
    if (n == 2) {
      route = r;
      resource_id = tokens[1];
    }
    return true;
  };
  if (method == "PUT") {
    if (n == 1 && first == "actions") route = Route::kActions;
    if (n == 1 && first == "boot-source") route = Route::kBootSource;
    if (n == 1 && first == "machine-config") route = Route::kMachineConfig;
    if (n == 1 && first == "vsock") route = Route::kVsock;
    if (n == 1 && first == "entropy") route = Route::kEntropy;
    if (n == 1 && first == "serial") route = Route::kSerial;
    if (n == 1 && first == "logger") route = Route::kLogger;
    if (n == 1 && first == "metrics") route = Route::kMetrics;
    if (n == 2 && first == "snapshot" && tokens[1] == "create") route = Route::kSnapshotCreate;
    if (n == 2 && first == "snapshot" && tokens[1] == "load") route = Route::kSnapshotLoad;
    if (first == "drives" && !with_id(Route::kDrive)) return bad_request("The ID cannot be empty.");
    if (first == "network-interfaces" && !with_id(Route::kNetworkInterface)) {
      return bad_request("The ID cannot be empty.");
    }
  } else {
    if (n == 1 && first == "machine-config") route = Route::kMachineConfig;
    if (n == 1 && first == "vm") route = Route::kVm;
    if (first == "network-interfaces" && !with_id(Route::kNetworkInterface)) {
      return bad_request("The ID cannot be empty.");
    }
  }
  if (route == Route::kNone) return invalid();
  if (route == Route::kDrive || route == Route::kNetworkInterface) {
    if (!config::is_valid_resource_id(resource_id)) {
      // Firecracker's text without the field prefix: the id came from the path.
      return bad_request(resource_id.empty() ? "The ID cannot be empty."
                                             : "API Resource IDs can only contain alphanumeric characters and underscores.");
    }
  }

  auto parsed = config::parse_json_text(body);
  if (!parsed.ok()) return bad_request(parsed.error());
  const json& j = parsed.value();

  switch (route) {
    case Route::kActions: return put_actions(j);
    case Route::kBootSource: return put_boot_source(j);
    case Route::kMachineConfig: return method == "PUT" ? put_machine_config(j) : patch_machine_config(j);
    case Route::kDrive: return put_drive(resource_id, j);
    case Route::kNetworkInterface:
      return method == "PUT" ? put_network_interface(resource_id, j) : patch_network_interface(resource_id, j);
    case Route::kVsock: return put_vsock(j);
    case Route::kEntropy: return put_entropy(j);
    case Route::kSerial: return put_serial(j);
    case Route::kLogger: return put_logger(j);
    case Route::kMetrics: return put_metrics(j);
    case Route::kSnapshotCreate: return put_snapshot_create(j);
    case Route::kSnapshotLoad: return put_snapshot_load(j);
    case Route::kVm: return patch_vm(j);
    case Route::kNone: break;
  }
  return invalid();
}

ApiResponse ApiRouter::get_instance_info() const {
  return ApiResponse::json(kOk, json{{"id", options_.instance_id},
                                     {"state", std::string(instance_state_name(state_.state()))},
                                     {"vmm_version", std::string(vmm_version())},
                                     {"app_name", "kiln"}});
}

// ---------------------------------------------------------------- pre-boot resources

ApiResponse ApiRouter::put_boot_source(const json& body) {
  if (auto st = state_.check(Operation::kConfigure); !st.ok()) return bad_request(st.error());
  auto bs = config::parse_boot_source(body);
  if (!bs.ok()) return bad_request(bs.error());
  if (auto st = config::check_boot_source_files(bs.value()); !st.ok()) return bad_request(st.error());
  config_.boot_source = std::move(bs.value());
  state_.commit(Operation::kConfigure);
  return ApiResponse::no_content();
}

ApiResponse ApiRouter::put_machine_config(const json& body) {
  if (auto st = state_.check(Operation::kConfigure); !st.ok()) return bad_request(st.error());
  auto mc = config::parse_machine_config(body);
  if (!mc.ok()) return bad_request(mc.error());
  config_.machine_config = mc.value();
  state_.commit(Operation::kConfigure);
  return ApiResponse::no_content();
}

ApiResponse ApiRouter::patch_machine_config(const json& body) {
  if (auto st = state_.check(Operation::kConfigure); !st.ok()) return bad_request(st.error());
  auto mc = config::patch_machine_config(config_.machine_config, body);
  if (!mc.ok()) return bad_request(mc.error());
  config_.machine_config = mc.value();
  state_.commit(Operation::kConfigure);
  return ApiResponse::no_content();
}

ApiResponse ApiRouter::put_drive(std::string_view id, const json& body) {
  if (auto st = state_.check(Operation::kConfigure); !st.ok()) return bad_request(st.error());
  auto drive = config::parse_drive(body);
  if (!drive.ok()) return bad_request(drive.error());
  if (drive->drive_id != id) return bad_request(kIdMismatch);
  if (auto st = config::check_drive_file(drive.value()); !st.ok()) return bad_request(st.error());
  if (auto st = config::upsert_drive(config_, std::move(drive.value())); !st.ok()) return bad_request(st.error());
  state_.commit(Operation::kConfigure);
  return ApiResponse::no_content();
}

ApiResponse ApiRouter::put_network_interface(std::string_view id, const json& body) {
  if (auto st = state_.check(Operation::kConfigure); !st.ok()) return bad_request(st.error());
  auto iface = config::parse_network_interface(body);
  if (!iface.ok()) return bad_request(iface.error());
  if (iface->iface_id != id) return bad_request(kIdMismatch);
  if (auto st = controller_.check_network_interface(iface.value()); !st.ok()) return bad_request(st.error());
  if (auto st = config::upsert_network_interface(config_, std::move(iface.value())); !st.ok()) {
    return bad_request(st.error());
  }
  state_.commit(Operation::kConfigure);
  return ApiResponse::no_content();
}

ApiResponse ApiRouter::put_vsock(const json& body) {
  if (auto st = state_.check(Operation::kConfigure); !st.ok()) return bad_request(st.error());
  auto v = config::parse_vsock(body);
  if (!v.ok()) return bad_request(v.error());
  config_.vsock = std::move(v.value());
  state_.commit(Operation::kConfigure);
  return ApiResponse::no_content();
}

ApiResponse ApiRouter::put_entropy(const json& body) {
  if (auto st = state_.check(Operation::kConfigure); !st.ok()) return bad_request(st.error());
  auto e = config::parse_entropy(body);
  if (!e.ok()) return bad_request(e.error());
  config_.entropy = e.value();
  state_.commit(Operation::kConfigure);
  return ApiResponse::no_content();
}

ApiResponse ApiRouter::put_serial(const json& body) {
  if (auto st = state_.check(Operation::kConfigure); !st.ok()) return bad_request(st.error());
  auto s = config::parse_serial(body);
  if (!s.ok()) return bad_request(s.error());
  config_.serial = std::move(s.value());
  state_.commit(Operation::kConfigure);
  return ApiResponse::no_content();
}

// Logger and metrics are not boot-specific: configuring them keeps snapshot load allowed.
ApiResponse ApiRouter::put_logger(const json& body) {
  if (auto st = state_.check(Operation::kConfigure); !st.ok()) return bad_request(st.error());
  auto l = config::parse_logger(body);
  if (!l.ok()) return bad_request(l.error());
  if (auto st = controller_.configure_logger(l.value()); !st.ok()) return bad_request(st.error());
  config_.logger = std::move(l.value());
  return ApiResponse::no_content();
}

ApiResponse ApiRouter::put_metrics(const json& body) {
  if (auto st = state_.check(Operation::kConfigure); !st.ok()) return bad_request(st.error());
  if (config_.metrics) return bad_request("Reinitialization of metrics not allowed.");
  auto m = config::parse_metrics(body);
  if (!m.ok()) return bad_request(m.error());
  if (auto st = controller_.configure_metrics(m.value()); !st.ok()) return bad_request(st.error());
  config_.metrics = std::move(m.value());
  return ApiResponse::no_content();
}

// ---------------------------------------------------------------- actions and runtime

Status ApiRouter::set_config(config::VmConfig vm) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_TRY(state_.check(Operation::kConfigure));
  if (vm.logger) KILN_TRY(controller_.configure_logger(*vm.logger));
  if (vm.metrics) KILN_TRY(controller_.configure_metrics(*vm.metrics));
  config_ = std::move(vm);
  state_.commit(Operation::kConfigure);
  return ok_status();
}

Status ApiRouter::start_instance() {
  std::lock_guard<std::mutex> lock(mu_);
  return start_instance_locked();
}

Status ApiRouter::start_instance_locked() {
  KILN_TRY(state_.check(Operation::kInstanceStart));
  KILN_TRY(config::validate_for_start(config_));
  auto st = controller_.start_instance(config_);
  if (!st.ok()) return st.error().wrap("Failed to start microVM");
  state_.commit(Operation::kInstanceStart);
  return ok_status();
}

ApiResponse ApiRouter::put_actions(const json& body) {
  auto r = kiln::json::ObjectReader::make(body, "", {"action_type"});
  if (!r.ok()) return bad_request(r.error());
  auto type = r->req_string("action_type");
  if (!type.ok()) return bad_request(type.error());
  if (auto st = r->check_unknown(); !st.ok()) return bad_request(st.error());

  if (*type == "InstanceStart") {
    if (auto st = start_instance_locked(); !st.ok()) return bad_request(st.error());
    return ApiResponse::no_content();
  }
  if (*type == "SendCtrlAltDel") {
    if (auto st = state_.check(Operation::kSendCtrlAltDel); !st.ok()) return bad_request(st.error());
    if (auto st = controller_.send_ctrl_alt_del(); !st.ok()) return bad_request(st.error());
    return ApiResponse::no_content();
  }
  if (*type == "FlushMetrics") {
    if (auto st = controller_.flush_metrics(); !st.ok()) return bad_request(st.error());
    return ApiResponse::no_content();
  }
  return bad_request("action_type: must be one of InstanceStart, SendCtrlAltDel, FlushMetrics, got \"" + *type +
                     "\"");
}

ApiResponse ApiRouter::patch_network_interface(std::string_view id, const json& body) {
  if (auto st = state_.check(Operation::kUpdateDevice); !st.ok()) return bad_request(st.error());
  auto update = config::parse_network_interface_update(body);
  if (!update.ok()) return bad_request(update.error());
  if (update->iface_id != id) return bad_request(kIdMismatch);
  config::NetworkInterface* iface = nullptr;
  for (config::NetworkInterface& n : config_.network_interfaces) {
    if (n.iface_id == id) iface = &n;
  }
  if (iface == nullptr) return bad_request("iface_id: no network interface \"" + std::string(id) + "\"");
  // The controller gets each changed direction's whole limiter; unchanged ones as nullopt.
  using Limiter = std::optional<config::RateLimiterConfig>;
  Limiter rx = iface->rx_rate_limiter;
  Limiter tx = iface->tx_rate_limiter;
  if (update->rx_rate_limiter) rx = config::apply_rate_limiter_update(rx, *update->rx_rate_limiter);
  if (update->tx_rate_limiter) tx = config::apply_rate_limiter_update(tx, *update->tx_rate_limiter);
  auto changed = [](const std::optional<config::RateLimiterUpdate>& u, const Limiter& rl) -> Limiter {
    if (!u) return std::nullopt;
    return rl.value_or(config::RateLimiterConfig{});  // no bucket left: an empty limiter (no limit)
  };
  if (auto st = controller_.update_network_interface(iface->iface_id, changed(update->rx_rate_limiter, rx),
                                                     changed(update->tx_rate_limiter, tx));
      !st.ok()) {
    return bad_request(st.error());
  }
  iface->rx_rate_limiter = std::move(rx);
  iface->tx_rate_limiter = std::move(tx);
  return ApiResponse::no_content();
}

ApiResponse ApiRouter::patch_vm(const json& body) {
  auto req = config::parse_vm_state(body);
  if (!req.ok()) return bad_request(req.error());
  const Operation op = *req == config::VmStateRequest::kPaused ? Operation::kPause : Operation::kResume;
  if (auto st = state_.check(op); !st.ok()) return bad_request(st.error());
  if (!state_.is_noop(op)) {
    auto st = op == Operation::kPause ? controller_.pause() : controller_.resume();
    if (!st.ok()) return bad_request(st.error());
  }
  state_.commit(op);
  return ApiResponse::no_content();
}

ApiResponse ApiRouter::put_snapshot_create(const json& body) {
  auto params = config::parse_snapshot_create(body);
  if (!params.ok()) return bad_request(params.error());
  if (auto st = state_.check(Operation::kSnapshotCreate); !st.ok()) return bad_request(st.error());
  if (auto st = controller_.create_snapshot(params.value()); !st.ok()) {
    return bad_request(st.error().wrap("Create snapshot error"));
  }
  return ApiResponse::no_content();
}

ApiResponse ApiRouter::put_snapshot_load(const json& body) {
  auto params = config::parse_snapshot_load(body);
  if (!params.ok()) return bad_request(params.error());
  if (auto st = state_.check(Operation::kSnapshotLoad); !st.ok()) return bad_request(st.error());
  auto restored = controller_.load_snapshot(params.value());
  if (!restored.ok()) return bad_request(restored.error().wrap("Load snapshot error"));
  // Logger/metrics configured on this process survive; the rest comes from the snapshot.
  auto logger = std::move(config_.logger);
  auto metrics = std::move(config_.metrics);
  config_ = std::move(restored.value());
  config_.logger = std::move(logger);
  config_.metrics = std::move(metrics);
  state_.commit(Operation::kSnapshotLoad, params->resume_vm);
  return ApiResponse::no_content();
}

}  // namespace kiln::vmm::api
