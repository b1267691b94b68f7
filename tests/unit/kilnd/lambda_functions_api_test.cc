// Lambda's control plane on kilnd (in-process, fake backend and image builder): create, get,
// get-configuration, list with Marker/MaxItems pages, update code and configuration, delete;
// Lambda's errors (404 ResourceNotFound, 409 ResourceConflict, 400 InvalidParameterValue with
// x-amzn-ErrorType and x-amzn-RequestId); one record seen by both APIs; tenants kept apart.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "src/functions/lambda_shapes.h"
#include "src/tenants/tenant_config.h"
#include "tests/unit/kilnd/support/daemon_harness.h"

namespace kiln::kilnd::api {
namespace {

using nlohmann::json;
using Headers = std::map<std::string, std::string>;
using Kilnd = test::DaemonHarness;
using LambdaControlPlane = test::StateDirTest;

const std::string kFunctions = "/2015-03-31/functions";

json create_body(const std::string& name, const std::string& image = "registry.example.com/fn:v1") {
  return {{"FunctionName", name},
          {"PackageType", "Image"},
          {"Code", {{"ImageUri", image}}},
          {"Role", "arn:aws:iam::000000000000:role/x"}};
}

// Asserts a Lambda service error: status, x-amzn-ErrorType, a request id, and the message part.
void expect_lambda_error(const client::HttpResult& r, int status, const std::string& type,
                         const std::string& message_part) {
  EXPECT_EQ(r.status, status) << r.body;
  auto it = r.headers.find("x-amzn-errortype");
  EXPECT_EQ(it == r.headers.end() ? "" : it->second, type) << r.body;
  EXPECT_TRUE(r.headers.count("x-amzn-requestid")) << r.body;
  auto j = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("message")) << r.body;
  EXPECT_NE(j["message"].get<std::string>().find(message_part), std::string::npos) << r.body;
}

// GetFunctionConfiguration until State is `state` (deadline 10 s; the fake build is at once).
json wait_state(Kilnd& k, const std::string& name, const std::string& state, const Headers& h = {}) {
  json j;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = k.call("GET", kFunctions + "/" + name + "/configuration", "", h);
    j = json::parse(r.body, nullptr, false);
    if (r.status == 200 && j["State"] == state) return j;
    std::this_thread::yield();
  }
  ADD_FAILURE() << name << " never reached " << state << ": " << j.dump();
  return j;
}

TEST_F(LambdaControlPlane, CreateGetUpdateDelete) {
  Kilnd k(dir_);
  json body = create_body("f");
  body["MemorySize"] = 256;
  body["Timeout"] = 10;
  body["Environment"] = {{"Variables", {{"STAGE", "test"}}}};
  body["ImageConfig"] = {{"Command", {"app.handler"}}};
  auto created = k.call("POST", kFunctions, body.dump());
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_TRUE(created.headers.count("x-amzn-requestid"));
  json c = json::parse(created.body);
  EXPECT_EQ(c["FunctionName"], "f");
  EXPECT_EQ(c["FunctionArn"], "arn:aws:lambda:local:000000000000:function:f");
  EXPECT_EQ(c["MemorySize"], 256);
  EXPECT_EQ(c["Timeout"], 10);
  EXPECT_EQ(c["PackageType"], "Image");

  json active = wait_state(k, "f", "Active");
  EXPECT_EQ(active["LastUpdateStatus"], "Successful");
  EXPECT_EQ(active["CodeSha256"], std::string(64, 'a'));
  EXPECT_EQ(active["Environment"]["Variables"]["STAGE"], "test");
  EXPECT_EQ(active["ImageConfigResponse"]["ImageConfig"]["Command"], json({"app.handler"}));

  auto got = k.call("GET", kFunctions + "/f");
  ASSERT_EQ(got.status, 200) << got.body;
  json g = json::parse(got.body);
  EXPECT_EQ(g["Configuration"], active);
  EXPECT_EQ(g["Code"]["ImageUri"], "registry.example.com/fn:v1");
  EXPECT_EQ(g["Code"]["ResolvedImageUri"], "registry.example.com/fn@sha256:" + std::string(64, 'a'));
  // By ARN and with the $LATEST qualifier too; another version does not exist.
  EXPECT_EQ(k.call("GET", kFunctions + "/arn%3Aaws%3Alambda%3Alocal%3A000000000000%3Afunction%3Af").status, 200);
  EXPECT_EQ(k.call("GET", kFunctions + "/f?Qualifier=%24LATEST").status, 200);
  expect_lambda_error(k.call("GET", kFunctions + "/f?Qualifier=3"), 404, "ResourceNotFoundException",
                      "Function not found: arn:aws:lambda:local:000000000000:function:f");

  // One record, two views: kiln's API shows the same function and settings.
  json native = json::parse(k.call("GET", "/v1/functions/f").body);
  EXPECT_EQ(native["config"]["memory_mib"], 256);
  EXPECT_EQ(native["config"]["timeout_ms"], 10000);
  EXPECT_EQ(native["config"]["args"], json({"app.handler"}));
  EXPECT_EQ(native["version"], 1);

  auto updated = k.call("PUT", kFunctions + "/f/configuration", R"({"MemorySize": 1024, "Timeout": 30})");
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_EQ(json::parse(updated.body)["MemorySize"], 1024);
  native = json::parse(k.call("GET", "/v1/functions/f").body);
  EXPECT_EQ(native["config"]["memory_mib"], 1024);
  EXPECT_EQ(native["config"]["timeout_ms"], 30000);
  EXPECT_EQ(native["config"]["env"]["STAGE"], "test");  // not named by the update: kept
  EXPECT_EQ(native["version"], 2);

  auto code = k.call("PUT", kFunctions + "/f/code", R"({"ImageUri": "registry.example.com/fn:v2"})");
  ASSERT_EQ(code.status, 200) << code.body;
  json after = wait_state(k, "f", "Active");
  EXPECT_EQ(json::parse(k.call("GET", kFunctions + "/f").body)["Code"]["ImageUri"], "registry.example.com/fn:v2");
  EXPECT_EQ(after["MemorySize"], 1024);
  auto dry = k.call("PUT", kFunctions + "/f/code", R"({"ImageUri": "registry.example.com/fn:v3", "DryRun": true})");
  ASSERT_EQ(dry.status, 200) << dry.body;
  EXPECT_EQ(json::parse(k.call("GET", "/v1/functions/f").body)["config"]["image"], "registry.example.com/fn:v2");

  auto deleted = k.call("DELETE", kFunctions + "/f");
  EXPECT_EQ(deleted.status, 204);
  EXPECT_TRUE(deleted.headers.count("x-amzn-requestid"));
  expect_lambda_error(k.call("GET", kFunctions + "/f"), 404, "ResourceNotFoundException", "Function not found");
  EXPECT_EQ(k.call("GET", "/v1/functions/f").status, 404);
}

TEST_F(LambdaControlPlane, Errors) {
  Kilnd k(dir_);
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", kFunctions + "/nope"}, {"GET", kFunctions + "/nope/configuration"},
           {"PUT", kFunctions + "/nope/configuration"}, {"PUT", kFunctions + "/nope/code"},
           {"DELETE", kFunctions + "/nope"}}) {
    expect_lambda_error(k.call(method, target, R"({"MemorySize": 256})"), 404, "ResourceNotFoundException",
                        "Function not found: arn:aws:lambda:local:000000000000:function:nope");
  }
  ASSERT_EQ(k.call("POST", kFunctions, create_body("f").dump()).status, 201);
  expect_lambda_error(k.call("POST", kFunctions, create_body("f").dump()), 409, "ResourceConflictException",
                      "Function already exist: f");
  json big = create_body("g");
  big["MemorySize"] = 20000;
  expect_lambda_error(k.call("POST", kFunctions, big.dump()), 400, "InvalidParameterValueException", "MemorySize");
  expect_lambda_error(k.call("PUT", kFunctions + "/f/configuration", R"({"MemorySize": 64})"), 400,
                      "InvalidParameterValueException", "MemorySize: must be an integer from 128 to 10240");
  json zip = create_body("g");
  zip["PackageType"] = "Zip";
  expect_lambda_error(k.call("POST", kFunctions, zip.dump()), 400, "InvalidParameterValueException",
                      "PackageType: kiln serves container image functions only");
  expect_lambda_error(k.call("POST", kFunctions, "{nope"), 400, "InvalidRequestContentException", "body");
  expect_lambda_error(k.call("GET", kFunctions + "/bad%20name"), 400, "InvalidParameterValueException",
                      "FunctionName");
  expect_lambda_error(k.call("GET", kFunctions + "?MaxItems=0"), 400, "InvalidParameterValueException", "MaxItems");
  EXPECT_EQ(k.call("GET", "/v1/functions/g").status, 404);  // nothing refused was created

  // An image that cannot be prepared: State Failed with the builder's reason, honestly.
  ASSERT_EQ(k.call("POST", kFunctions, create_body("broken", "registry.example.com/missing:1").dump()).status, 201);
  json failed = wait_state(k, "broken", "Failed");
  EXPECT_EQ(failed["LastUpdateStatus"], "Failed");
  EXPECT_EQ(failed["StateReasonCode"], "InvalidImage");
  EXPECT_NE(failed["StateReason"].get<std::string>().find("manifest unknown"), std::string::npos);
}

TEST_F(LambdaControlPlane, ListPagesThroughTheCallersFunctions) {
  Kilnd k(dir_);
  const std::vector<std::string> names = {"a1", "b2", "c3", "d4", "e5"};
  for (const auto& n : {"d4", "a1", "e5", "c3"}) {
    ASSERT_EQ(k.call("POST", kFunctions, create_body(n).dump()).status, 201);
  }
  k.deploy("b2", R"({"image":"oci:/img:1"})");  // deployed through kiln's API: listed all the same

  for (const std::string& base : {kFunctions, kFunctions + "/"}) {
    json all = json::parse(k.call("GET", base).body);
    ASSERT_EQ(all["Functions"].size(), names.size()) << all.dump();
    EXPECT_FALSE(all.contains("NextMarker"));
  }
  std::vector<std::string> seen;
  std::string marker;
  for (int page = 0; page < 10; ++page) {
    auto r = k.call("GET", kFunctions + "/?MaxItems=2" + (marker.empty() ? "" : "&Marker=" + marker));
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    EXPECT_LE(j["Functions"].size(), 2u);
    for (const auto& f : j["Functions"]) seen.push_back(f["FunctionName"]);
    if (!j.contains("NextMarker")) break;
    marker = j["NextMarker"];
  }
  EXPECT_EQ(seen, names);
  // A marker whose function was deleted since still continues after it.
  ASSERT_EQ(k.call("DELETE", kFunctions + "/b2").status, 204);
  json rest = json::parse(k.call("GET", kFunctions + "?Marker=b2&MaxItems=10").body);
  ASSERT_EQ(rest["Functions"].size(), 3u);
  EXPECT_EQ(rest["Functions"][0]["FunctionName"], "c3");
}

tenants::TenantsConfig tenants_config() {
  auto c = tenants::parse_tenants_config(R"({
    "tenants": [
      {"name": "acme", "token": "acme-token-0123456789", "quotas": {"max_functions": 2}},
      {"name": "beta", "token": "beta-token-0123456789"},
      {"name": "ops", "token": "ops-token-0123456789", "admin": true}
    ]})");
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return *c;
}

TEST_F(LambdaControlPlane, TenantsSeeOnlyTheirOwn) {
  const Headers acme = {{"Authorization", "Bearer acme-token-0123456789"}};
  const Headers beta = {{"Authorization", "Bearer beta-token-0123456789"}};
  const Headers ops = {{"Authorization", "Bearer ops-token-0123456789"}};
  Kilnd k(dir_, tenants_config());
  EXPECT_EQ(k.call("POST", kFunctions, create_body("f").dump()).status, 401);
  EXPECT_EQ(k.call("GET", kFunctions).status, 401);

  auto created = k.call("POST", kFunctions, create_body("f").dump(), acme);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string acme_arn = functions::lambda_function_arn("acme", "f");
  EXPECT_EQ(json::parse(created.body)["FunctionArn"], acme_arn);
  wait_state(k, "f", "Active", acme);

  // beta: acme's function is answered as a missing one, by name and by ARN.
  const std::string beta_missing = "Function not found: " + functions::lambda_function_arn("beta", "f");
  expect_lambda_error(k.call("GET", kFunctions + "/f", "", beta), 404, "ResourceNotFoundException", beta_missing);
  expect_lambda_error(k.call("DELETE", kFunctions + "/f", "", beta), 404, "ResourceNotFoundException", beta_missing);
  expect_lambda_error(k.call("PUT", kFunctions + "/f/configuration", R"({"MemorySize": 512})", beta), 404,
                      "ResourceNotFoundException", beta_missing);
  expect_lambda_error(k.call("GET", kFunctions + "/" + acme_arn, "", beta), 404, "ResourceNotFoundException",
                      "Function not found");
  EXPECT_TRUE(json::parse(k.call("GET", kFunctions, "", beta).body)["Functions"].empty());
  // beta's own "f" is another function.
  ASSERT_EQ(k.call("POST", kFunctions, create_body("f").dump(), beta).status, 201);
  ASSERT_EQ(k.call("DELETE", kFunctions + "/f", "", beta).status, 204);
  json still = json::parse(k.call("GET", kFunctions + "/f", "", acme).body);
  EXPECT_EQ(still["Configuration"]["FunctionArn"], acme_arn);

  // An admin lists its own namespace, or a tenant's with X-Kiln-Tenant.
  EXPECT_TRUE(json::parse(k.call("GET", kFunctions, "", ops).body)["Functions"].empty());
  Headers ops_acme = ops;
  ops_acme["X-Kiln-Tenant"] = "acme";
  json as_acme = json::parse(k.call("GET", kFunctions, "", ops_acme).body);
  ASSERT_EQ(as_acme["Functions"].size(), 1u);
  EXPECT_EQ(as_acme["Functions"][0]["FunctionArn"], acme_arn);

  // The tenant's quotas hold on this path too (max_functions 2).
  ASSERT_EQ(k.call("POST", kFunctions, create_body("g").dump(), acme).status, 201);
  expect_lambda_error(k.call("POST", kFunctions, create_body("h").dump(), acme), 400,
                      "InvalidParameterValueException", "max_functions");
}

}  // namespace
}  // namespace kiln::kilnd::api
