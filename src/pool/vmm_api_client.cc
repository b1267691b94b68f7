// Firecracker-style API calls to kiln-vmm over its Unix socket.
#include "src/pool/vmm_api_client.h"

#include <nlohmann/json.hpp>

namespace kiln::kilnd::pool {
namespace {
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

}  // namespace kiln::kilnd::pool
