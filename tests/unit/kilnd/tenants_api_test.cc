// kilnd's API with a tenants file (in-process, fake backend): 401 without or with a bad
// token, another tenant's function answered exactly like a missing one on every route,
// quotas (functions, instances, concurrent invocations) answered with 429, name validation
// 400s, restart keeps each function's owner, the Unix socket as admin, admin views.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "src/tenants/tenant_config.h"
#include "tests/unit/kilnd/support/daemon_harness.h"

namespace kiln::kilnd::daemon {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Headers = std::map<std::string, std::string>;

const Headers kAcme = {{"Authorization", "Bearer acme-token-0123456789"}};
const Headers kBeta = {{"Authorization", "Bearer beta-token-0123456789"}};
const Headers kOps = {{"Authorization", "Bearer ops-token-0123456789"}};

tenants::TenantsConfig tenants_config(bool unix_admin = true) {
  auto c = tenants::parse_tenants_config(R"({
    "tenants": [
      {"name": "acme", "token": "acme-token-0123456789",
       "quotas": {"max_functions": 2, "max_instances": 1, "max_concurrent_invocations": 1}},
      {"name": "beta", "token": "beta-token-0123456789"},
      {"name": "ops", "token": "ops-token-0123456789", "admin": true}
    ]})");
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  c->unix_socket_admin = unix_admin;
  return *c;
}

class TenantsApiTest : public test::StateDirTest {};

// Every route that names a function, as (method, target, body).
struct RouteCall {
  std::string method, target, body;
};
std::vector<RouteCall> function_routes(const std::string& name) {
  return {{"GET", "/v1/functions/" + name, ""},
          {"DELETE", "/v1/functions/" + name, ""},
          {"POST", "/v1/functions/" + name + "/invoke", "{}"},
          {"GET", "/v1/functions/" + name + "/http/some/path?q=1", ""},
          {"POST", "/v1/functions/" + name + "/http", "x"},
          {"GET", "/v1/functions/" + name + "/logs", ""},
          {"GET", "/v1/functions/" + name + "/logs?follow=1", ""},
          {"POST", "/2015-03-31/functions/" + name + "/invocations", "{}"},
          {"GET", "/2015-03-31/functions/" + name, ""},
          {"GET", "/2015-03-31/functions/" + name + "/configuration", ""},
          {"PUT", "/2015-03-31/functions/" + name + "/configuration", R"({"MemorySize":256})"},
          {"PUT", "/2015-03-31/functions/" + name + "/code", R"({"ImageUri":"oci:/beta:1"})"},
          {"DELETE", "/2015-03-31/functions/" + name, ""}};
}

// What a caller learns from an answer: status, body and the headers that could differ.
std::string observable(const client::HttpResult& r) {
  std::string out = std::to_string(r.status) + "\n" + r.body;
  for (const char* h : {"content-type", "x-amzn-errortype", "retry-after", "www-authenticate"}) {
    auto it = r.headers.find(h);
    out += std::string("\n") + h + ": " + (it == r.headers.end() ? "-" : it->second);
  }
  return out;
}

TEST_F(TenantsApiTest, MissingOrBadTokenIs401AndHealthzStaysOpen) {
  test::DaemonHarness k(dir_, tenants_config());
  EXPECT_EQ(k.call("GET", "/healthz").status, 200);
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/functions"}, {"GET", "/v1/status"}, {"GET", "/metrics"}, {"PUT", "/v1/functions/f"},
           {"POST", "/v1/functions/f/invoke"}, {"POST", "/2015-03-31/functions/f/invocations"}, {"GET", "/nope"}}) {
    auto none = k.call(method, target, "{}");
    EXPECT_EQ(none.status, 401) << method << " " << target;
    EXPECT_EQ(none.headers["www-authenticate"], R"(Bearer realm="kiln")") << target;
    EXPECT_EQ(json::parse(none.body)["error"], "unauthorized");
    auto bad = k.call(method, target, "{}", {{"Authorization", "Bearer not-a-token-of-anyone"}});
    EXPECT_EQ(bad.status, 401) << target;
    EXPECT_EQ(bad.headers["www-authenticate"], R"(Bearer realm="kiln", error="invalid_token")");
    EXPECT_EQ(k.call(method, target, "{}", {{"Authorization", "Basic YWNtZTp4"}}).status, 401);
  }
  EXPECT_EQ(k.call("GET", "/v1/functions", "", kAcme).status, 200);
  EXPECT_EQ(k.call("GET", "/v1/functions", "", {{"authorization", "bearer acme-token-0123456789"}}).status, 200);
  // Nothing was created by the refused PUT.
  EXPECT_EQ(json::parse(k.call("GET", "/v1/functions", "", kOps).body)["functions"].size(), 0u);
}

TEST_F(TenantsApiTest, AnotherTenantsFunctionIsIndistinguishableFromAMissingOne) {
  test::DaemonHarness k(dir_, tenants_config());
  // Beta's view of "secret" while it does not exist ...
  std::vector<std::string> before;
  for (const auto& c : function_routes("secret")) before.push_back(observable(k.call(c.method, c.target, c.body, kBeta)));
  k.deploy("secret", R"({"image":"oci:/acme:1"})", kAcme);
  ASSERT_EQ(k.call("POST", "/v1/functions/secret/invoke", "{}", kAcme).status, 200);
  // ... is exactly its view once acme has it, on every route.
  auto routes = function_routes("secret");
  for (std::size_t i = 0; i < routes.size(); ++i) {
    auto r = k.call(routes[i].method, routes[i].target, routes[i].body, kBeta);
    EXPECT_EQ(r.status, 404) << routes[i].method << " " << routes[i].target;
    EXPECT_EQ(observable(r), before[i]) << routes[i].method << " " << routes[i].target;
  }
  // Acme's function survived beta's DELETE and serves acme.
  auto mine = k.call("GET", "/v1/functions/secret", "", kAcme);
  ASSERT_EQ(mine.status, 200);
  EXPECT_EQ(json::parse(mine.body)["tenant"], "acme");
  auto inv = k.call("POST", "/v1/functions/secret/invoke", R"({"n":1})", kAcme);
  ASSERT_EQ(inv.status, 200);
  EXPECT_EQ(json::parse(inv.body)["function"], "secret");  // the guest sees the plain name
  auto logs = k.call("GET", "/v1/functions/secret/logs", "", kAcme);
  EXPECT_NE(logs.body.find("START RequestId:"), std::string::npos);

  // Names are per tenant: beta's "secret" is its own function.
  ASSERT_EQ(k.call("PUT", "/v1/functions/secret", R"({"image":"oci:/beta:1"})", kBeta).status, 201);
  EXPECT_EQ(json::parse(k.call("GET", "/v1/functions/secret", "", kAcme).body)["config"]["image"], "oci:/acme:1");
  EXPECT_EQ(json::parse(k.call("GET", "/v1/functions/secret", "", kBeta).body)["config"]["image"], "oci:/beta:1");
  // Listings show only one's own functions; admins see all, with owners.
  auto acme_list = json::parse(k.call("GET", "/v1/functions", "", kAcme).body)["functions"];
  ASSERT_EQ(acme_list.size(), 1u);
  EXPECT_EQ(acme_list[0]["name"], "secret");
  EXPECT_EQ(acme_list[0]["tenant"], "acme");
  EXPECT_EQ(json::parse(k.call("GET", "/v1/status", "", kBeta).body)["functions"], 1);
  EXPECT_EQ(json::parse(k.call("GET", "/v1/status", "", kBeta).body).count("state_dir"), 0u);
  auto all = json::parse(k.call("GET", "/v1/functions", "", kOps).body)["functions"];
  EXPECT_EQ(all.size(), 2u);
  auto over_unix = k.call_on(k.unix_ep_, "GET", "/v1/functions");
  ASSERT_EQ(over_unix.status, 200);  // the Unix socket is trusted as admin
  EXPECT_EQ(json::parse(over_unix.body)["functions"].size(), 2u);
  // An admin acts in a tenant's namespace with X-Kiln-Tenant; tenants cannot.
  Headers ops_as_acme = kOps;
  ops_as_acme["X-Kiln-Tenant"] = "acme";
  EXPECT_EQ(k.call("POST", "/v1/functions/secret/invoke", "{}", ops_as_acme).status, 200);
  EXPECT_EQ(json::parse(k.call("GET", "/v1/functions", "", ops_as_acme).body)["functions"].size(), 1u);
  EXPECT_EQ(k.call("GET", "/v1/functions/secret", "", ops_as_acme).status, 200);
  EXPECT_EQ(k.call("GET", "/v1/functions/secret", "", kOps).status, 404);  // not in the admin namespace
  Headers beta_as_acme = kBeta;
  beta_as_acme["X-Kiln-Tenant"] = "acme";
  EXPECT_EQ(k.call("GET", "/v1/functions/secret", "", beta_as_acme).status, 403);
  Headers ops_bad = kOps;
  ops_bad["X-Kiln-Tenant"] = "../x";
  EXPECT_EQ(json::parse(k.call("GET", "/v1/functions", "", ops_bad).body)["field"], "X-Kiln-Tenant");
  // Metrics span every tenant: admins only.
  EXPECT_EQ(k.call("GET", "/metrics", "", kAcme).status, 403);
  auto metrics = k.call("GET", "/metrics", "", kOps);
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("kiln_invocations_total{function=\"acme/secret\",kind=\"event\"}"), std::string::npos);
  // Admin deletes a tenant's function; its VM stops.
  EXPECT_EQ(k.call("DELETE", "/v1/functions/secret", "", ops_as_acme).status, 204);
  EXPECT_EQ(k.call("GET", "/v1/functions/secret", "", kAcme).status, 404);
  EXPECT_EQ(k.call("GET", "/v1/functions/secret", "", kBeta).status, 200);
}

TEST_F(TenantsApiTest, UnixSocketTrustCanBeTurnedOff) {
  test::DaemonHarness k(dir_, tenants_config(false));
  EXPECT_EQ(k.call_on(k.unix_ep_, "GET", "/v1/functions").status, 401);
  EXPECT_EQ(k.call_on(k.unix_ep_, "GET", "/v1/functions", "", kAcme).status, 200);
  EXPECT_EQ(k.call_on(k.unix_ep_, "GET", "/healthz").status, 200);
}

TEST_F(TenantsApiTest, FunctionQuotaIs429) {
  test::DaemonHarness k(dir_, tenants_config());
  ASSERT_EQ(k.call("PUT", "/v1/functions/f1", R"({"image":"oci:/i:1"})", kAcme).status, 201);
  ASSERT_EQ(k.call("PUT", "/v1/functions/f2", R"({"image":"oci:/i:1"})", kAcme).status, 201);
  auto third = k.call("PUT", "/v1/functions/f3", R"({"image":"oci:/i:1"})", kAcme);
  EXPECT_EQ(third.status, 429);
  auto j = json::parse(third.body);
  EXPECT_EQ(j["error"], "quota_exceeded");
  EXPECT_EQ(j["quota"], "max_functions");
  EXPECT_NE(j["message"].get<std::string>().find("already has 2 functions (max_functions 2)"), std::string::npos);
  EXPECT_EQ(k.call("GET", "/v1/functions/f3", "", kAcme).status, 404);
  // Updating one is not creating one; another tenant has its own count; admins have none.
  EXPECT_EQ(k.call("PUT", "/v1/functions/f1", R"({"image":"oci:/i:1","memory_mib":256})", kAcme).status, 200);
  EXPECT_EQ(k.call("PUT", "/v1/functions/f3", R"({"image":"oci:/i:1"})", kBeta).status, 201);
  // min_instances over the tenant's functions must fit its instance quota.
  auto warm = k.call("PUT", "/v1/functions/f1", R"({"image":"oci:/i:1","min_instances":2,"max_instances":2})", kAcme);
  EXPECT_EQ(warm.status, 429);
  EXPECT_EQ(json::parse(warm.body)["quota"], "max_instances");
  // A delete frees a place.
  EXPECT_EQ(k.call("DELETE", "/v1/functions/f2", "", kAcme).status, 204);
  EXPECT_EQ(k.call("PUT", "/v1/functions/f3", R"({"image":"oci:/i:1"})", kAcme).status, 201);
}

// Waits (on the API, at most 30 s) until `pred(status json)` holds.
template <typename Pred>
bool wait_status(test::DaemonHarness& k, const Headers& h, Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred(json::parse(k.call("GET", "/v1/status", "", h).body))) return true;
    std::this_thread::yield();
  }
  return false;
}

TEST_F(TenantsApiTest, ConcurrentInvocationAndInstanceQuotasAre429) {
  test::DaemonHarness k(dir_, tenants_config());
  k.deploy("slow", R"({"image":"oci:/i:1","timeout_ms":3000,"concurrency":2})", kAcme);
  k.deploy("other", R"({"image":"oci:/i:1","timeout_ms":3000})", kAcme);
  auto hanging = std::async(std::launch::async, [&k] { return k.call("POST", "/v1/functions/slow/invoke", "hang", kAcme); });
  ASSERT_TRUE(wait_status(k, kAcme, [](const json& s) { return s["invocations_in_flight"] == 1 && s["instances"] == 1; }));
  // One invocation in flight (max_concurrent_invocations 1): the next is refused on every path.
  auto second = k.call("POST", "/v1/functions/slow/invoke", "{}", kAcme);
  EXPECT_EQ(second.status, 429);
  EXPECT_EQ(second.headers["retry-after"], "1");
  EXPECT_EQ(json::parse(second.body)["quota"], "max_concurrent_invocations");
  EXPECT_NE(json::parse(second.body)["message"].get<std::string>().find("max_concurrent_invocations 1"), std::string::npos);
  EXPECT_EQ(k.call("GET", "/v1/functions/slow/http/", "", kAcme).status, 429);
  auto lambda = k.call("POST", "/2015-03-31/functions/slow/invocations", "{}", kAcme);
  EXPECT_EQ(lambda.status, 429);
  EXPECT_EQ(lambda.headers["x-amzn-errortype"], "TooManyRequestsException");
  // Another tenant is not affected.
  k.deploy("free", R"({"image":"oci:/i:1"})", kBeta);
  EXPECT_EQ(k.call("POST", "/v1/functions/free/invoke", "{}", kBeta).status, 200);
  EXPECT_EQ(hanging.get().status, 504);  // its deadline; the slot is given back
  ASSERT_TRUE(wait_status(k, kAcme, [](const json& s) { return s["invocations_in_flight"] == 0; }));
  EXPECT_EQ(k.call("POST", "/v1/functions/slow/invoke", "{}", kAcme).status, 200);

  // max_instances 1: "slow" holds the tenant's one instance, so "other" (which would need a
  // new one) is refused.
  auto other = k.call("POST", "/v1/functions/other/invoke", "{}", kAcme);
  EXPECT_EQ(other.status, 429);
  EXPECT_EQ(json::parse(other.body)["quota"], "max_instances");
  // Once "slow" goes away, "other" may start its instance.
  ASSERT_EQ(k.call("DELETE", "/v1/functions/slow", "", kAcme).status, 204);
  EXPECT_EQ(k.call("POST", "/v1/functions/other/invoke", "{}", kAcme).status, 200);
}

TEST_F(TenantsApiTest, HostileNamesAre400NamingTheField) {
  test::DaemonHarness k(dir_, tenants_config());
  for (const auto& [encoded, why] : std::vector<std::pair<std::string, std::string>>{
           {"..", "'..'"}, {"%2E%2E", "'..'"}, {"a..b", "'..'"}, {"a%00b", "NUL"}, {"%00", "NUL"},
           {"a%2Fb", "'/'"}, {"..%2F..%2Fetc", "'/'"}, {std::string(65, 'n'), "at most 64"}, {"a.b", "[A-Za-z0-9_-]"}}) {
    for (const char* method : {"PUT", "GET", "DELETE"}) {
      auto r = k.call(method, "/v1/functions/" + encoded, R"({"image":"oci:/i:1"})", kAcme);
      EXPECT_EQ(r.status, 400) << method << " " << encoded;
      auto j = json::parse(r.body);
      EXPECT_EQ(j["field"], "name") << encoded;
      EXPECT_NE(j["message"].get<std::string>().find(why), std::string::npos) << j["message"];
    }
    EXPECT_EQ(k.call("POST", "/v1/functions/" + encoded + "/invoke", "{}", kAcme).status, 400) << encoded;
    auto l = k.call("POST", "/2015-03-31/functions/" + encoded + "/invocations", "{}", kAcme);
    EXPECT_EQ(l.status, 400) << encoded;
    EXPECT_EQ(l.headers["x-amzn-errortype"], "InvalidParameterValueException");
    for (const char* method : {"GET", "DELETE"}) {  // Lambda's control plane
      auto c = k.call(method, "/2015-03-31/functions/" + encoded, "", kAcme);
      EXPECT_EQ(c.status, 400) << method << " " << encoded;
      EXPECT_EQ(c.headers["x-amzn-errortype"], "InvalidParameterValueException") << encoded;
      EXPECT_NE(c.body.find("FunctionName"), std::string::npos) << c.body;
    }
  }
  // The body's name must match the path's.
  auto mismatch = k.call("PUT", "/v1/functions/ok", R"({"image":"oci:/i:1","name":"../other"})", kAcme);
  EXPECT_EQ(mismatch.status, 400);
  EXPECT_EQ(json::parse(mismatch.body)["field"], "name");
  EXPECT_EQ(json::parse(k.call("GET", "/v1/functions", "", kOps).body)["functions"].size(), 0u);
  EXPECT_FALSE(fs::exists(dir_ + "/functions/acme/ok.json"));
}

TEST_F(TenantsApiTest, RestartKeepsOwnership) {
  {
    test::DaemonHarness k(dir_, tenants_config());
    k.deploy("keep", R"({"image":"oci:/acme:1"})", kAcme);
    k.deploy("keep", R"({"image":"oci:/admin:1"})", kOps);
    ASSERT_EQ(k.call("POST", "/v1/functions/keep/invoke", "{}", kAcme).status, 200);
  }
  EXPECT_TRUE(fs::exists(dir_ + "/functions/acme/keep.json"));
  EXPECT_TRUE(fs::exists(dir_ + "/functions/keep.json"));
  test::DaemonHarness again(dir_, tenants_config());
  auto mine = again.call("GET", "/v1/functions/keep", "", kAcme);
  ASSERT_EQ(mine.status, 200);
  EXPECT_EQ(json::parse(mine.body)["config"]["image"], "oci:/acme:1");
  EXPECT_EQ(json::parse(mine.body)["tenant"], "acme");
  EXPECT_EQ(again.call("GET", "/v1/functions/keep", "", kBeta).status, 404);
  EXPECT_EQ(json::parse(again.call("GET", "/v1/functions/keep", "", kOps).body)["config"]["image"], "oci:/admin:1");
  EXPECT_EQ(again.call("POST", "/v1/functions/keep/invoke", "{}", kAcme).status, 200);
  EXPECT_NE(again.call("GET", "/v1/functions/keep/logs", "", kAcme).body.find("START RequestId:"), std::string::npos);
  // Without the tenants file, the admin sees every function and the tenant's stays its own.
  again.stop();
  test::DaemonHarness plain(dir_);
  auto list = json::parse(plain.call("GET", "/v1/functions").body)["functions"];
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(plain.call("GET", "/v1/functions/keep", "", {{"X-Kiln-Tenant", "acme"}}).status, 200);
}

// A new tenants file (SIGHUP) swaps tokens at once; functions keep their owner.
TEST_F(TenantsApiTest, ReloadSwapsTokens) {
  test::DaemonHarness k(dir_, tenants_config());
  k.deploy("kept", R"({"image":"oci:/i:1"})", kAcme);
  auto rotated = tenants::parse_tenants_config(
      R"({"tenants": [{"name": "acme", "token": "acme-new-token-987654321"}], "unix_socket_admin": false})");
  ASSERT_TRUE(rotated.ok()) << rotated.error().message;
  k.on_loop([&] {
    k.daemon_->set_tenants(*rotated);
    return 0;
  });
  EXPECT_EQ(k.call("GET", "/v1/functions/kept", "", kAcme).status, 401);
  EXPECT_EQ(k.call("GET", "/v1/functions", "", kOps).status, 401);
  EXPECT_EQ(k.call_on(k.unix_ep_, "GET", "/v1/functions").status, 401);
  const Headers fresh = {{"Authorization", "Bearer acme-new-token-987654321"}};
  EXPECT_EQ(k.call("GET", "/v1/functions/kept", "", fresh).status, 200);
  // No quotas any more: a third function is fine.
  for (const char* n : {"b", "c"}) EXPECT_EQ(k.call("PUT", std::string("/v1/functions/") + n, R"({"image":"oci:/i:1"})", fresh).status, 201);
}

// Instance ids are kiln-vmm --id values (1-64 of [A-Za-z0-9-]) whatever the tenant and name.
TEST_F(TenantsApiTest, InstanceIdsAreValidVmmIds) {
  test::DaemonHarness k(dir_, tenants_config());
  const std::string long_name = "f_" + std::string(62, 'x');
  for (const auto& [name, headers] : std::vector<std::pair<std::string, Headers>>{
           {"my_func", kBeta}, {long_name, kBeta}, {"plain", kOps}}) {
    k.deploy(name, R"({"image":"oci:/i:1"})", headers);
    auto r = k.call("POST", "/v1/functions/" + name + "/invoke", "{}", headers);
    ASSERT_EQ(r.status, 200) << r.body;
    std::string id = r.headers["x-kiln-instance-id"];
    EXPECT_FALSE(id.empty());
    EXPECT_LE(id.size(), 64u) << id;
    EXPECT_EQ(id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-"), std::string::npos)
        << id;
  }
}

TEST_F(TenantsApiTest, WithoutATenantsFileNothingChanges) {
  test::DaemonHarness k(dir_);
  k.deploy("plain", R"({"image":"oci:/i:1"})");
  // Any Authorization header is ignored; everything is the admin namespace, as before.
  EXPECT_EQ(k.call("POST", "/v1/functions/plain/invoke", "{}", {{"Authorization", "Bearer whatever"}}).status, 200);
  auto list = json::parse(k.call("GET", "/v1/functions").body)["functions"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].count("tenant"), 0u);
  EXPECT_TRUE(fs::exists(dir_ + "/functions/plain.json"));
  EXPECT_EQ(k.call("GET", "/metrics").status, 200);
  EXPECT_EQ(json::parse(k.call("GET", "/v1/status").body).count("tenant"), 0u);
}

}  // namespace
}  // namespace kiln::kilnd::daemon
