// VmmApiClient: PUT/PATCH/GET against kiln-vmm's Firecracker-compatible API on its Unix socket,
// and VmmApi: the calls kilnd makes (wait for the API, configure and start, pause, resume,
// snapshot create/load) with their request bodies. A non-2xx answer becomes an error carrying
// the VMM's {"fault_message": ...}.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"
#include "src/net/network_settings.h"
#include "src/server/net.h"

namespace kiln::kilnd::pool {

struct ApiReply {
  int status = 0;
  std::string body;
};

// One request on a fresh connection, bounded by `deadline`.
asio::awaitable<Result<ApiReply>> vmm_api_call(std::string api_sock, http::verb method, std::string path,
                                               std::string json_body, std::chrono::steady_clock::time_point deadline);

// vmm_api_call that also turns a non-2xx status into an error:
// "PUT /drives/rootfs: 400: <fault_message>".
asio::awaitable<Status> vmm_api_send(std::string api_sock, http::verb method, std::string path, std::string json_body,
                                     std::chrono::steady_clock::time_point deadline);
inline asio::awaitable<Status> vmm_api_put(std::string api_sock, std::string path, std::string json_body,
                                           std::chrono::steady_clock::time_point deadline) {
  return vmm_api_send(std::move(api_sock), http::verb::put, std::move(path), std::move(json_body), deadline);
}

// Extracts fault_message from an error body (or returns the body, shortened).
std::string fault_message(std::string_view body);

// A cold boot's configuration, with every path as the VMM names it (jail paths in a jail).
struct BootConfig {
  std::uint32_t vcpus = 1;
  std::uint32_t memory_mib = 128;
  std::string kernel, initrd, boot_args;  // initrd "" = none
  std::string rootfs;  // attached read-only as drive "rootfs"
  std::uint32_t guest_cid = 3;
  std::string vsock;  // the hybrid-vsock Unix socket
  std::string tap;  // "" = no network interface; else eth0 on this TAP with net::kGuestMac
  net::Bandwidth bandwidth;  // caps on eth0 (its rx/tx rate limiters)
};

// kiln-vmm's (Firecracker's) rate limiter for a cap of `bytes_per_second`: a bandwidth bucket
// holding a tenth of a second's bytes, refilled every 100 ms (frames larger than the bucket
// still pass, paid off afterwards, so the average holds). null without a cap.
nlohmann::json rate_limiter_body(std::optional<std::uint64_t> bytes_per_second);

// Snapshot files as the VMM names them.
struct VmmSnapshotFiles {
  std::string state, mem;
};

class VmmApi {
 public:
  using Clock = std::chrono::steady_clock;
  // `sock`: the API socket's host path; `give_up`: the instance is gone (a wait or a sequence
  // of calls stops early, returning ok: the caller checks its own state).
  VmmApi(std::string sock, std::function<bool()> give_up) : sock_(std::move(sock)), give_up_(std::move(give_up)) {}

  // The API socket appears once kiln-vmm is up: GET / until it answers or `deadline`.
  asio::awaitable<Status> wait_up(Clock::time_point deadline);
  // machine-config, boot-source, drives/rootfs, vsock, then InstanceStart (Firecracker's shapes,
  // see ARCHITECTURE.md "kilnd -> kiln-vmm").
  asio::awaitable<Status> configure_and_start(const BootConfig& config, Clock::time_point deadline);
  asio::awaitable<Status> pause(Clock::time_point deadline);
  // PATCH /vm Resumed: after a pause, or a snapshot loaded paused (its error names the step;
  // a VMM that went away meanwhile, as the owner's give-up says, is not an error here).
  asio::awaitable<Status> resume(Clock::time_point deadline);
  asio::awaitable<Status> create_snapshot(const VmmSnapshotFiles& out, Clock::time_point deadline);
  // PUT /snapshot/load with its own vsock socket; `resume` false leaves the guest paused. A
  // non-2xx answer (the VMM refused the files: corrupt, truncated, wrong version) sets *refused.
  asio::awaitable<Status> load_snapshot(const VmmSnapshotFiles& files, const std::string& vsock, bool resume,
                                        Clock::time_point deadline, bool* refused);

 private:
  std::string sock_;
  std::function<bool()> give_up_;
};

}  // namespace kiln::kilnd::pool
