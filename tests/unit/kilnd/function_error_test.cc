// A lambda-mode runtime's function error (X-Kiln-Function-Error + Lambda's error body): read once
// (pure), then rendered by each path: Lambda's Invoke (200 + X-Amz-Function-Error: Unhandled and
// the runtime's body), kiln's event and web invocations (502 function_error), and counted. And
// the Lambda path's client context and trace id on their way to the runtime.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/base64/base64.h"
#include "src/invoke/function_error.h"
#include "src/invoke/lambda.h"
#include "tests/unit/kilnd/support/daemon_harness.h"

namespace kiln::kilnd::invoke {
namespace {

using nlohmann::json;

GuestResponse guest(std::string header, std::string body) {
  GuestResponse r{http::status::ok, 11};
  if (!header.empty()) r.set(kFunctionErrorHeader, header);
  r.body() = std::move(body);
  return r;
}

TEST(FunctionError, OnlyWithTheHeader) {
  EXPECT_FALSE(function_error_of(guest("", R"({"errorType":"X","errorMessage":"m"})")).has_value());
  EXPECT_FALSE(has_function_error(guest("", "{}")));
  EXPECT_TRUE(has_function_error(guest("Unhandled", "{}")));
}

TEST(FunctionError, TheRuntimesBodyIsKeptWhole) {
  auto e = function_error_of(guest("Unhandled", R"({"errorMessage":"boom","errorType":"ValueError",)"
                                                 R"("stackTrace":["a","b"],"extra":1})"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, "ValueError");
  EXPECT_EQ(e->message, "boom");
  EXPECT_EQ(e->body, json::parse(R"({"errorMessage":"boom","errorType":"ValueError","stackTrace":["a","b"],"extra":1})"));
}

TEST(FunctionError, TheHeadersTypeAndATextBody) {
  auto e = function_error_of(guest("Runtime.HandlerNotFound", "no handler app.main"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, "Runtime.HandlerNotFound");
  EXPECT_EQ(e->body, json({{"errorType", "Runtime.HandlerNotFound"}, {"errorMessage", "no handler app.main"}}));
  auto bare = function_error_of(guest("Unhandled", ""));
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->type, "Unhandled");
  EXPECT_EQ(bare->body, json({{"errorType", "Unhandled"}, {"errorMessage", ""}}));
  auto typed_wrong = function_error_of(guest("Unhandled", R"({"errorType":7,"errorMessage":["x"]})"));
  ASSERT_TRUE(typed_wrong);
  EXPECT_EQ(typed_wrong->type, "Unhandled");  // wrong types are not taken, the body passes as sent
  EXPECT_EQ(typed_wrong->body["errorType"], 7);
  auto huge = function_error_of(guest("Unhandled", std::string(100000, 'x')));
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->message.size(), 4096u);
}

TEST(FunctionError, KilnsDialect) {
  auto e = function_error_of(guest("Unhandled", R"({"errorMessage":"boom","errorType":"ValueError"})"));
  json b = kiln_function_error_body(*e, "r1");
  EXPECT_EQ(b["error"], "function_error");
  EXPECT_EQ(b["message"], "ValueError: boom");
  EXPECT_EQ(b["request_id"], "r1");
  EXPECT_EQ(b["function_error"]["errorType"], "ValueError");
}

TEST(FunctionError, LambdasDialect) {
  InvokeResult r;
  r.response = guest("Unhandled", R"({"errorMessage":"boom","errorType":"ValueError","stackTrace":[]})");
  LambdaReply reply = lambda_from_result(r, "r1");
  EXPECT_EQ(reply.status, http::status::ok);
  auto has = [&](std::string_view k, std::string_view v) {
    for (const auto& [hk, hv] : reply.headers) {
      if (hk == k && hv == v) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("X-Amz-Function-Error", "Unhandled"));
  EXPECT_TRUE(has("Content-Type", "application/json"));
  EXPECT_EQ(json::parse(reply.body),
            json::parse(R"({"errorMessage":"boom","errorType":"ValueError","stackTrace":[]})"));
  r.response = guest("", R"({"ok":true})");  // no header: the function's payload
  reply = lambda_from_result(r, "r1");
  EXPECT_EQ(reply.body, R"({"ok":true})");
  for (const auto& [k, v] : reply.headers) EXPECT_NE(k, "X-Amz-Function-Error");
}

// The Invoke request's client context (base64 of a JSON object) and trace id, as the runtime
// gets them (decoded, one line); a client context that is not that is refused.
TEST(LambdaContext, ClientContextDecodedAndTraceIdKept) {
  auto c = lambda_context(base64::encode("{\n \"custom\": {\"k\": 1}\n}"), "Root=1-5e1b4151-5ac6c58f5d0e4c9e1b2c3d4e");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->client_context, R"({"custom":{"k":1}})");
  EXPECT_EQ(c->trace_id, "Root=1-5e1b4151-5ac6c58f5d0e4c9e1b2c3d4e");
  auto none = lambda_context("", "");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->client_context.empty() && none->trace_id.empty());
  EXPECT_TRUE(lambda_context("", "bad\ntrace")->trace_id.empty());
  EXPECT_TRUE(lambda_context("", std::string(300, 'a'))->trace_id.empty());
  for (const std::string& bad : {std::string("not base64!"), base64::encode("[1,2]"), base64::encode("nope"),
                                base64::encode("{\"k\":\"" + std::string(3000, 'x') + "\"}")}) {
    auto r = lambda_context(bad, "");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("Client context must be a valid Base64-encoded JSON object"), std::string::npos);
  }
}

using FunctionErrorDaemonTest = test::StateDirTest;

TEST_F(FunctionErrorDaemonTest, TheLambdaPathPassesTheClientContextAndTraceId) {
  test::DaemonHarness k(dir_);
  k.deploy("lf", R"({"image":"oci:/img:1","runtime_api":"lambda"})");
  auto r = k.call("POST", "/2015-03-31/functions/lf/invocations", "{}",
                  {{"X-Amz-Client-Context", base64::encode(R"({"custom":{"k":1}})")}, {"X-Amzn-Trace-Id", "Root=1-a-b"}});
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["client_context"], R"({"custom":{"k":1}})");
  EXPECT_EQ(j["trace_id"], "Root=1-a-b");
  auto bad = k.call("POST", "/2015-03-31/functions/lf/invocations", "{}", {{"X-Amz-Client-Context", "%%%"}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(bad.headers["x-amzn-errortype"], "InvalidRequestContentException");
}

TEST_F(FunctionErrorDaemonTest, EveryPathReportsTheRuntimesError) {
  test::DaemonHarness k(dir_);
  k.deploy("lf", R"({"image":"oci:/img:1","runtime_api":"lambda"})");
  auto lambda = k.call("POST", "/2015-03-31/functions/lf/invocations", R"("lambdaerror")");
  EXPECT_EQ(lambda.status, 200) << lambda.body;
  EXPECT_EQ(lambda.headers["x-amz-function-error"], "Unhandled");
  json lj = json::parse(lambda.body);
  EXPECT_EQ(lj["errorType"], "ValueError");
  EXPECT_EQ(lj["errorMessage"], "boom");
  EXPECT_EQ(lj["stackTrace"], json({"at handler (app.py:3)"}));

  auto event = k.call("POST", "/v1/functions/lf/invoke", R"("lambdaerror")");
  EXPECT_EQ(event.status, 502) << event.body;
  EXPECT_EQ(event.headers["x-kiln-function-error"], "Unhandled");
  EXPECT_FALSE(event.headers["x-kiln-request-id"].empty());
  json ej = json::parse(event.body);
  EXPECT_EQ(ej["error"], "function_error");
  EXPECT_EQ(ej["message"], "ValueError: boom");
  EXPECT_EQ(ej["request_id"], event.headers["x-kiln-request-id"]);
  EXPECT_EQ(ej["function_error"]["stackTrace"], json({"at handler (app.py:3)"}));

  // (text, so the API Gateway event carries the body as it is: the fake runtime looks for it)
  auto web = k.call("POST", "/v1/functions/lf/http/x", "lambdaerror", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(web.status, 502) << web.body;
  EXPECT_EQ(json::parse(web.body)["error"], "function_error");

  // Counted as function errors, like a guest 5xx.
  auto metrics = k.call("GET", "/metrics");
  EXPECT_NE(metrics.body.find(R"(kiln_invocation_errors_total{function="lf",kind="function_error"} 3)"), std::string::npos)
      << metrics.body;
  // Answers without the header are untouched.
  auto ok = k.call("POST", "/v1/functions/lf/invoke", R"({"k":1})");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.headers.count("x-kiln-function-error"), 0u);
}

}  // namespace
}  // namespace kiln::kilnd::invoke
