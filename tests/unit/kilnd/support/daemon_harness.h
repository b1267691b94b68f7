// DaemonHarness: kilnd in-process for tests, without VMs: the real HTTP server on 127.0.0.1
// port 0 and a Unix socket, the daemon with the fake backend whose guest is an in-process
// HTTP server (echoes the event; "hang" never answers; "crash" hangs up; "fail500" -> 500;
// "lambdaerror" -> a lambda runtime's error as kiln-init reports it).
#pragma once

#include <gtest/gtest.h>

#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "src/client/http_client.h"
#include "src/daemon/daemon.h"
#include "tests/unit/kilnd/support/fake_backend.h"

namespace kiln::kilnd::test {

// The function server of the tests (the guest side of one connection): answers one request
// with its method, target, body and metadata headers as JSON; a body containing "hang" is
// never answered, "crash" hangs up, "fail500" answers 500, "lambdaerror" answers 200 with
// X-Kiln-Function-Error: Unhandled and Lambda's error body (errorType ValueError, "boom").
asio::awaitable<void> fake_guest(local::socket s);

// The image builder of the tests: ready at once ("missing" in the reference: fails).
Result<registry::ImageStatus> fake_build(const registry::FunctionConfig& c,
                                         const std::function<void(const registry::ImageStatus&)>& progress);

class DaemonHarness {
 public:
  // network: the operator's defaults (kilnd --network on); nullopt: --network off.
  explicit DaemonHarness(const std::string& state_dir, std::optional<tenants::TenantsConfig> tenants = std::nullopt,
                         std::optional<net::NetworkDefaults> network = std::nullopt);
  ~DaemonHarness() { stop(); }
  DaemonHarness(const DaemonHarness&) = delete;
  DaemonHarness& operator=(const DaemonHarness&) = delete;

  void stop();

  template <typename F>
  auto on_loop(F f) {
    std::promise<decltype(f())> p;
    asio::post(io_, [&] { p.set_value(f()); });
    return p.get_future().get();
  }

  // One request over TCP (or `ep`); a transport failure fails the test.
  client::HttpResult call(const std::string& method, const std::string& target, const std::string& body = "",
                          std::map<std::string, std::string> headers = {});
  client::HttpResult call_on(const client::Endpoint& ep, const std::string& method, const std::string& target,
                             const std::string& body = "", std::map<std::string, std::string> headers = {});

  // Deploys and waits (on the API, with a deadline) until the image is ready.
  void deploy(const std::string& name, const std::string& body, std::map<std::string, std::string> headers = {});

  asio::io_context io_;
  FakeBackend backend_;
  std::unique_ptr<daemon::Daemon> daemon_;
  client::Endpoint ep_, unix_ep_;
  std::thread thread_;
};

// A fresh state directory under /tmp for each test, removed afterwards.
class StateDirTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::string dir_;
};

}  // namespace kiln::kilnd::test
