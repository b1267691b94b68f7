// VmmApiClient: PUT/PATCH/GET against kiln-vmm's Firecracker-compatible API on its Unix socket.
// A non-2xx answer becomes an error carrying the VMM's {"fault_message": ...}.
#pragma once

#include <chrono>
#include <string>

#include "common/result.h"
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

}  // namespace kiln::kilnd::pool
