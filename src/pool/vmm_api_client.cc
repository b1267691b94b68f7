// Firecracker-style API calls to kiln-vmm over its Unix socket.
#include "src/pool/vmm_api_client.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "src/net/instance_networks.h"

namespace kiln::kilnd::pool {
namespace {
using nlohmann::json;
using LocalStream = beast::basic_stream<local, asio::any_io_executor, beast::unlimited_rate_policy>;
}  // namespace

std::string fault_message(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("fault_message") && j["fault_message"].is_string()) {
    return j["fault_message"].get<std::string>();
  }
  return std::string(body.substr(0, 512));
}

asio::awaitable<Result<ApiReply>> vmm_api_call(std::string api_sock, http::verb method, std::string path,
                                               std::string json_body, std::chrono::steady_clock::time_point deadline) {
  auto ex = co_await asio::this_coro::executor;
  LocalStream stream(ex);
  stream.expires_at(deadline);
  beast::error_code ec;
  co_await stream.async_connect(local::endpoint(api_sock), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return make_error("connect " + api_sock + ": " + ec.message());
  http::request<http::string_body> req{method, path, 11};
  req.set(http::field::host, "localhost");
  req.set(http::field::accept, "application/json");
  if (!json_body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = std::move(json_body);
  req.keep_alive(false);
  req.prepare_payload();
  co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return make_error(std::string(req.method_string()) + " " + path + ": " + ec.message());
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1024 * 1024);
  co_await http::async_read(stream, buf, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return make_error(std::string(req.method_string()) + " " + path + ": " + ec.message());
  ApiReply reply;
  reply.status = parser.get().result_int();
  reply.body = parser.get().body();
  co_return reply;
}

asio::awaitable<Status> vmm_api_send(std::string api_sock, http::verb method, std::string path, std::string json_body,
                                     std::chrono::steady_clock::time_point deadline) {
  auto r = co_await vmm_api_call(api_sock, method, path, std::move(json_body), deadline);
  if (!r.ok()) co_return r.error();
  if (r->status < 200 || r->status >= 300) {
    co_return make_error(std::string(sv(http::to_string(method))) + " " + path + ": " + std::to_string(r->status) + ": " +
                         fault_message(r->body));
  }
  co_return ok_status();
}

asio::awaitable<Status> VmmApi::wait_up(Clock::time_point deadline) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer retry(ex);
  beast::error_code ec;
  while (true) {
    if (give_up_()) co_return ok_status();
    auto r = co_await vmm_api_call(sock_, http::verb::get, "/", "", deadline);
    if (r.ok()) co_return ok_status();
    if (Clock::now() >= deadline) co_return r.error().wrap("kiln-vmm API did not come up");
    retry.expires_after(std::chrono::milliseconds(5));
    co_await retry.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

json rate_limiter_body(std::optional<std::uint64_t> bytes_per_second) {
  if (!bytes_per_second) return nullptr;
  constexpr std::uint64_t kRefillMs = 100;
  return {{"bandwidth", {{"size", std::max<std::uint64_t>(*bytes_per_second * kRefillMs / 1000, 1)},
                         {"refill_time", kRefillMs}}}};
}

asio::awaitable<Status> VmmApi::configure_and_start(const BootConfig& c, Clock::time_point deadline) {
  json machine = {{"vcpu_count", c.vcpus}, {"mem_size_mib", c.memory_mib}, {"smt", false}};
  json boot_source = {{"kernel_image_path", c.kernel}, {"boot_args", c.boot_args}};
  if (!c.initrd.empty()) boot_source["initrd_path"] = c.initrd;
  json drive = {{"drive_id", "rootfs"}, {"path_on_host", c.rootfs}, {"is_root_device", false}, {"is_read_only", true}};
  json vsock = {{"guest_cid", c.guest_cid}, {"uds_path", c.vsock}};
  json start = {{"action_type", "InstanceStart"}};
  std::vector<std::pair<const char*, json>> steps = {
      {"/machine-config", machine}, {"/boot-source", boot_source}, {"/drives/rootfs", drive}, {"/vsock", vsock}};
  if (!c.tap.empty()) {
    steps.push_back({"/network-interfaces/eth0",
                     {{"iface_id", "eth0"},
                      {"host_dev_name", c.tap},
                      {"guest_mac", net::kGuestMac},
                      {"rx_rate_limiter", rate_limiter_body(c.bandwidth.rx)},
                      {"tx_rate_limiter", rate_limiter_body(c.bandwidth.tx)}}});
  }
  steps.push_back({"/actions", start});
  for (const auto& [path, body] : steps) {
    if (give_up_()) co_return ok_status();
    Status put = co_await vmm_api_put(sock_, path, body.dump(), deadline);
    if (!put.ok()) co_return put.error().wrap("configuring kiln-vmm");
  }
  co_return ok_status();
}

asio::awaitable<Status> VmmApi::pause(Clock::time_point deadline) {
  co_return co_await vmm_api_send(sock_, http::verb::patch, "/vm", R"({"state": "Paused"})", deadline);
}

asio::awaitable<Status> VmmApi::resume(Clock::time_point deadline) {
  auto resumed = co_await vmm_api_call(sock_, http::verb::patch, "/vm", R"({"state": "Resumed"})", deadline);
  if (!resumed.ok() || give_up_()) co_return resumed.ok() ? ok_status() : Status(resumed.error());
  if (resumed->status < 200 || resumed->status >= 300) {
    co_return make_error("PATCH /vm Resumed: " + std::to_string(resumed->status) + ": " + fault_message(resumed->body));
  }
  co_return ok_status();
}

asio::awaitable<Status> VmmApi::create_snapshot(const VmmSnapshotFiles& out, Clock::time_point deadline) {
  json create = {{"snapshot_type", "Full"}, {"snapshot_path", out.state}, {"mem_file_path", out.mem}};
  co_return co_await vmm_api_put(sock_, "/snapshot/create", create.dump(), deadline);
}

asio::awaitable<Status> VmmApi::load_snapshot(const VmmSnapshotFiles& files, const std::string& vsock, bool resume,
                                              Clock::time_point deadline, bool* refused) {
  json load = {{"snapshot_path", files.state},
               {"mem_backend", {{"backend_type", "File"}, {"backend_path", files.mem}}},
               {"vsock_override", {{"uds_path", vsock}}},
               {"resume_vm", resume}};
  auto loaded = co_await vmm_api_call(sock_, http::verb::put, "/snapshot/load", load.dump(), deadline);
  if (!loaded.ok() || give_up_()) co_return loaded.ok() ? ok_status() : Status(loaded.error());
  if (loaded->status < 200 || loaded->status >= 300) {
    *refused = true;
    co_return make_error("PUT /snapshot/load: " + std::to_string(loaded->status) + ": " + fault_message(loaded->body));
  }
  co_return ok_status();
}

}  // namespace kiln::kilnd::pool
