// kilnd in-process with the fake backend and a fake function server.
#include "tests/unit/kilnd/support/daemon_harness.h"

#include <unistd.h>

#include <filesystem>

#include <nlohmann/json.hpp>

namespace kiln::kilnd::test {

using nlohmann::json;

asio::awaitable<void> fake_guest(local::socket s) {
  beast::flat_buffer buf;
  http::request<http::string_body> req;
  beast::error_code ec;
  co_await http::async_read(s, buf, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  if (req.body().find("crash") != std::string::npos) co_return;  // closes the socket
  if (req.body().find("hang") != std::string::npos) {
    char c;
    co_await s.async_read_some(asio::buffer(&c, 1), asio::redirect_error(asio::use_awaitable, ec));
    co_return;
  }
  if (req.body().find("lambdaerror") != std::string::npos) {  // a lambda runtime's /error, as kiln-init answers it
    http::response<http::string_body> res{http::status::ok, 11};
    res.set("X-Kiln-Function-Error", "Unhandled");
    res.set(http::field::content_type, "application/json");
    res.body() = R"x({"errorMessage":"boom","errorType":"ValueError","stackTrace":["at handler (app.py:3)"]})x";
    res.keep_alive(false);
    res.prepare_payload();
    co_await http::async_write(s, res, asio::redirect_error(asio::use_awaitable, ec));
    co_return;
  }
  json j = {{"method", std::string(req.method_string())},
            {"target", std::string(req.target())},
            {"body", req.body()},
            {"request_id", std::string(req["X-Scf-Request-Id"])},
            {"function", std::string(req["X-Scf-Name"])},
            {"memory", std::string(req["X-Scf-Memory"])},
            {"timeout", std::string(req["X-Kiln-Timeout-Ms"])},
            {"custom", std::string(req["X-Custom"])},
            {"client_context", std::string(req["X-Amz-Client-Context"])},
            {"trace_id", std::string(req["X-Amzn-Trace-Id"])}};
  http::response<http::string_body> res{req.body().find("fail500") != std::string::npos
                                            ? http::status::internal_server_error
                                            : http::status::ok,
                                        11};
  res.set(http::field::content_type, "application/json");
  res.body() = j.dump();
  res.keep_alive(false);
  res.prepare_payload();
  co_await http::async_write(s, res, asio::redirect_error(asio::use_awaitable, ec));
}

Result<registry::ImageStatus> fake_build(const registry::FunctionConfig& c,
                                         const std::function<void(const registry::ImageStatus&)>& progress) {
  if (c.image.find("missing") != std::string::npos) return make_error("manifest unknown: " + c.image);
  registry::ImageStatus s;
  s.stage = "fetch";
  progress(s);
  s.state = registry::ImageState::kReady;
  s.manifest_digest = "sha256:" + std::string(64, 'a');
  s.rootfs_path = "/dev/null";
  s.entrypoint = {"/hello"};
  s.env = {"PATH=/bin", "GREETING=hello"};
  s.working_dir = "/srv";
  return s;
}

DaemonHarness::DaemonHarness(const std::string& state_dir, std::optional<tenants::TenantsConfig> tenants,
                             std::optional<net::NetworkDefaults> network)
    : backend_(&io_) {
  backend_.auto_ready = true;
  backend_.server = [this](local::socket s) { asio::co_spawn(io_, fake_guest(std::move(s)), asio::detached); };
  daemon::DaemonOptions o;
  o.state_dir = state_dir;
  o.server.tcp_host = "127.0.0.1";
  o.server.tcp_port = 0;
  o.server.unix_path = state_dir + "/kilnd.sock";
  o.tick_interval = std::chrono::milliseconds(50);
  o.tenants = std::move(tenants);
  o.network = std::move(network);
  daemon_ = std::make_unique<daemon::Daemon>(io_, o, backend_, fake_build);
  auto st = daemon_->start();
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
  ep_.host = "127.0.0.1";
  ep_.port = std::to_string(daemon_->tcp_port());
  unix_ep_.unix_path = state_dir + "/kilnd.sock";
  thread_ = std::thread([this] { io_.run(); });
}

void DaemonHarness::stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] { daemon_->shutdown([this] { io_.stop(); }); });
  thread_.join();
  daemon_.reset();
}

client::HttpResult DaemonHarness::call(const std::string& method, const std::string& target, const std::string& body,
                                       std::map<std::string, std::string> headers) {
  return call_on(ep_, method, target, body, std::move(headers));
}

client::HttpResult DaemonHarness::call_on(const client::Endpoint& ep, const std::string& method,
                                          const std::string& target, const std::string& body,
                                          std::map<std::string, std::string> headers) {
  client::RequestOptions o;
  o.headers = std::move(headers);
  o.timeout = std::chrono::seconds(30);
  auto r = client::request(ep, method, target, body, o);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : client::HttpResult{};
}

void DaemonHarness::deploy(const std::string& name, const std::string& body, std::map<std::string, std::string> headers) {
  auto r = call("PUT", "/v1/functions/" + name, body, headers);
  ASSERT_TRUE(r.status == 201 || r.status == 200) << r.body;
  for (int i = 0; i < 2000; ++i) {
    auto g = call("GET", "/v1/functions/" + name, "", headers);
    auto j = json::parse(g.body);
    if (j["image"]["state"] == "ready") return;
    ASSERT_NE(j["image"]["state"], "failed") << g.body;
    std::this_thread::yield();
  }
  FAIL() << "image never became ready";
}

void StateDirTest::SetUp() {
  char tmpl[] = "/tmp/kilnd-daemon-XXXXXX";
  char* d = mkdtemp(tmpl);
  ASSERT_NE(d, nullptr);
  dir_ = d;
}

void StateDirTest::TearDown() { std::filesystem::remove_all(dir_); }

}  // namespace kiln::kilnd::test
