// Each admission refusal as each API dialect renders it: kiln's JSON errors (status, "error",
// "message", Retry-After) and Lambda's service errors as AWS sends them (status,
// x-amzn-ErrorType, {"Type","message"}, x-amzn-RequestId); then the same refusals through
// kilnd's HTTP API (in-process, fake backend) on both paths; and base64 (X-Amz-Log-Result).
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "src/api/invoke_api.h"
#include "src/api/lambda_api.h"
#include "src/tenants/tenant_config.h"
#include "tests/unit/kilnd/support/daemon_harness.h"

namespace kiln::kilnd::api {
namespace {

using nlohmann::json;
using invoke::Refusal;
using invoke::RefusalKind;

Refusal refusal_of(RefusalKind kind) {
  Refusal r;
  r.kind = kind;
  r.name = "f";
  if (kind == RefusalKind::kNotReady) {
    r.image_state = registry::ImageState::kFailed;
    r.image_reason = "manifest unknown";
  }
  if (kind == RefusalKind::kQuota) {
    r.quota = "max_concurrent_invocations";
    r.message = "quota exceeded: tenant acme already has 1 invocations in flight";
  }
  return r;
}

std::string header(const server::Response& res, const char* name) { return std::string(res[name]); }

struct KilnCase {
  RefusalKind kind;
  unsigned status;
  const char* error;
  const char* message;
  const char* retry_after;
};

TEST(RefusalDialects, KilnJson) {
  const server::Request req{http::verb::post, "/v1/functions/f/invoke", 11};
  for (const KilnCase& c : {
           KilnCase{RefusalKind::kNotFound, 404, "not_found", "no function named f", ""},
           KilnCase{RefusalKind::kStopping, 503, "stopping", "kilnd is shutting down", ""},
           KilnCase{RefusalKind::kNotReady, 503, "not_ready", "function f is not ready: image failed (manifest unknown)",
                    "1"},
           KilnCase{RefusalKind::kPayloadTooLarge, 413, "payload_too_large",
                    "payload larger than 6 MiB (6291456 bytes)", ""},
           KilnCase{RefusalKind::kQuota, 429, "quota_exceeded",
                    "quota exceeded: tenant acme already has 1 invocations in flight", "1"},
       }) {
    auto res = invoke_refusal(req, refusal_of(c.kind));
    SCOPED_TRACE(c.error);
    EXPECT_EQ(res.result_int(), c.status);
    EXPECT_EQ(header(res, "Content-Type"), "application/json");
    EXPECT_EQ(header(res, "Retry-After"), c.retry_after);
    auto body = json::parse(res.body());
    EXPECT_EQ(body["error"], c.error);
    EXPECT_EQ(body["message"], c.message);
    if (c.kind == RefusalKind::kQuota) {
      EXPECT_EQ(body["quota"], "max_concurrent_invocations");
    }
  }
}

struct LambdaCase {
  RefusalKind kind;
  unsigned status;
  const char* error_type;
  const char* message;
};

TEST(RefusalDialects, LambdaServiceErrors) {
  const server::Request req{http::verb::post, "/2015-03-31/functions/f/invocations", 11};
  const std::string conflict = "The operation cannot be performed at this time. The function is currently in the "
                               "following state: ";
  for (const LambdaCase& c : {
           LambdaCase{RefusalKind::kNotFound, 404, "ResourceNotFoundException", "Function not found: f"},
           LambdaCase{RefusalKind::kStopping, 409, "ResourceConflictException", ""},
           LambdaCase{RefusalKind::kNotReady, 409, "ResourceConflictException", ""},
           LambdaCase{RefusalKind::kPayloadTooLarge, 413, "RequestTooLargeException",
                      "Request must be smaller than 6291456 bytes for the InvokeFunction operation"},
           LambdaCase{RefusalKind::kQuota, 429, "TooManyRequestsException",
                      "quota exceeded: tenant acme already has 1 invocations in flight"},
       }) {
    auto res = lambda_refusal(req, refusal_of(c.kind));
    SCOPED_TRACE(c.error_type);
    EXPECT_EQ(res.result_int(), c.status);
    EXPECT_EQ(header(res, "x-amzn-ErrorType"), c.error_type);
    EXPECT_EQ(header(res, "Content-Type"), "application/json");
    EXPECT_EQ(header(res, "x-amzn-RequestId").size(), 36u);  // a UUID, as on every AWS answer
    auto body = json::parse(res.body());
    EXPECT_EQ(body["Type"], "User");
    std::string message = c.message;
    if (c.kind == RefusalKind::kStopping) message = conflict + "Stopping";
    if (c.kind == RefusalKind::kNotReady) message = conflict + "failed";
    EXPECT_EQ(body["message"], message);
  }
  // Fresh request ids.
  EXPECT_NE(header(lambda_refusal(req, refusal_of(RefusalKind::kNotFound)), "x-amzn-RequestId"),
            header(lambda_refusal(req, refusal_of(RefusalKind::kNotFound)), "x-amzn-RequestId"));
}

using RefusalApiTest = test::StateDirTest;

// `kiln invoke helo --lambda` on a missing function: AWS's answer, whole.
TEST_F(RefusalApiTest, LambdaNotFoundIsWhatAwsSends) {
  test::DaemonHarness k(dir_);
  auto r = k.call("POST", "/2015-03-31/functions/helo/invocations", "");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.headers["x-amzn-errortype"], "ResourceNotFoundException");
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_EQ(r.headers["x-amzn-requestid"].size(), 36u);
  EXPECT_EQ(json::parse(r.body), json::parse(R"({"Type":"User","message":"Function not found: helo"})"));
}

TEST_F(RefusalApiTest, EachRefusalOnBothPaths) {
  auto tenants = tenants::parse_tenants_config(R"({"tenants": [
      {"name": "acme", "token": "acme-token-0123456789", "quotas": {"max_concurrent_invocations": 1}}]})");
  ASSERT_TRUE(tenants.ok()) << tenants.error().message;
  test::DaemonHarness k(dir_, *tenants);
  const std::map<std::string, std::string> acme = {{"Authorization", "Bearer acme-token-0123456789"}};
  // The refusal of an invocation of `name` on kiln's path and on Lambda's.
  auto expect_refused = [&](const std::string& name, const std::string& body, int kiln_status, const char* error,
                            const char* retry_after, int lambda_status, const char* error_type) {
    SCOPED_TRACE(error);
    auto kiln = k.call("POST", "/v1/functions/" + name + "/invoke", body, acme);
    EXPECT_EQ(kiln.status, kiln_status);
    EXPECT_EQ(json::parse(kiln.body)["error"], error);
    EXPECT_EQ(kiln.headers.count("retry-after") ? kiln.headers["retry-after"] : "", retry_after);
    auto lambda = k.call("POST", "/2015-03-31/functions/" + name + "/invocations", body, acme);
    EXPECT_EQ(lambda.status, lambda_status);
    EXPECT_EQ(lambda.headers["x-amzn-errortype"], error_type);
  };
  expect_refused("nope", "{}", 404, "not_found", "", 404, "ResourceNotFoundException");

  ASSERT_EQ(k.call("PUT", "/v1/functions/broken", R"({"image":"oci:/missing:1"})", acme).status, 201);
  json state;
  for (int i = 0; i < 2000 && state != "failed"; ++i) {
    state = json::parse(k.call("GET", "/v1/functions/broken", "", acme).body)["image"]["state"];
    std::this_thread::yield();
  }
  ASSERT_EQ(state, "failed");
  expect_refused("broken", "{}", 503, "not_ready", "1", 409, "ResourceConflictException");

  k.deploy("f", R"({"image":"oci:/img:1","timeout_ms":3000})", acme);
  expect_refused("f", std::string(6 * 1024 * 1024 + 1, ' '), 413, "payload_too_large", "", 413,
                 "RequestTooLargeException");

  // One invocation in flight holds acme's only slot.
  auto hanging = std::async(std::launch::async, [&] { return k.call("POST", "/v1/functions/f/invoke", "hang", acme); });
  for (int i = 0; i < 100000; ++i) {
    if (json::parse(k.call("GET", "/v1/status", "", acme).body)["invocations_in_flight"] == 1) break;
    std::this_thread::yield();
  }
  expect_refused("f", "{}", 429, "quota_exceeded", "1", 429, "TooManyRequestsException");
  // A DryRun only checks: no slot needed.
  EXPECT_EQ(k.call("POST", "/2015-03-31/functions/f/invocations", "{}",
                   {{"Authorization", "Bearer acme-token-0123456789"}, {"X-Amz-Invocation-Type", "DryRun"}})
                .status,
            204);
  EXPECT_EQ(hanging.get().status, 504);
}

}  // namespace
}  // namespace kiln::kilnd::api
