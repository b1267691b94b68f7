// RuntimeApiCore: long poll, response/error, init error, deadline header, a second next before
// a response, unknown and answered ids, oversize responses.
#include "guest-agent/agent/runtime_api.h"

#include <gtest/gtest.h>

namespace kiln::agent {
namespace {

constexpr const char* kArn = "arn:aws:lambda:us-east-1:000000000000:function:f";

HttpRequest req(std::string method, std::string target, std::string body = "") {
  HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.body = std::move(body);
  return r;
}

HttpRequest next() { return req("GET", "/2018-06-01/runtime/invocation/next"); }

Invocation inv(std::string id, std::string payload = "{}") {
  return Invocation{std::move(id), std::move(payload), 1700000003000ull, "Root=1-a-b", "", ""};
}

std::string header(const ApiAnswer& a, std::string_view name) {
  for (const auto& [n, v] : a.headers) {
    if (n == name) return v;
  }
  return "<absent>";
}

TEST(RuntimeApiCore, LongPollGetsTheNextInvocationWithItsHeaders) {
  RuntimeApiCore api(kArn);
  auto o = api.handle(next());
  EXPECT_TRUE(o.park);
  EXPECT_TRUE(o.first_next);
  EXPECT_FALSE(api.dispatch());  // nothing queued yet
  ASSERT_TRUE(api.submit(inv("req-1", "{\"k\":1}")).ok());
  auto a = api.dispatch();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, "{\"k\":1}");
  EXPECT_EQ(header(*a, "Lambda-Runtime-Aws-Request-Id"), "req-1");
  EXPECT_EQ(header(*a, "Lambda-Runtime-Deadline-Ms"), "1700000003000");
  EXPECT_EQ(header(*a, "Lambda-Runtime-Invoked-Function-Arn"), kArn);
  EXPECT_EQ(header(*a, "Lambda-Runtime-Trace-Id"), "Root=1-a-b");
  EXPECT_EQ(header(*a, "Lambda-Runtime-Client-Context"), "<absent>");
  EXPECT_FALSE(api.parked());
  EXPECT_EQ(api.outstanding(), "req-1");

  auto r = api.handle(req("POST", "/2018-06-01/runtime/invocation/req-1/response", "\"done\""));
  EXPECT_EQ(r.answer.status, 202);
  ASSERT_TRUE(r.result);
  EXPECT_FALSE(r.result->function_error);
  EXPECT_EQ(r.result->body, "\"done\"");
  EXPECT_FALSE(api.busy());
}

TEST(RuntimeApiCore, QueuedInvocationIsHandedOutAtOnceAndOnlyOneAtATime) {
  RuntimeApiCore api(kArn);
  ASSERT_TRUE(api.submit(inv("a")).ok());
  EXPECT_FALSE(api.submit(inv("b")).ok());  // concurrency 1
  auto o = api.handle(next());
  EXPECT_FALSE(o.park);
  EXPECT_EQ(header(o.answer, "Lambda-Runtime-Aws-Request-Id"), "a");
  EXPECT_FALSE(api.submit(inv("b")).ok());  // "a" is outstanding
}

TEST(RuntimeApiCore, SecondNextBeforeAResponseIsRefusedAndStateKept) {
  RuntimeApiCore api(kArn);
  ASSERT_TRUE(api.submit(inv("a")).ok());
  ASSERT_EQ(api.handle(next()).answer.status, 200);
  auto again = api.handle(next());
  EXPECT_FALSE(again.park);
  EXPECT_EQ(again.answer.status, 400);
  EXPECT_NE(again.answer.body.find("InvalidStateTransition"), std::string::npos);
  EXPECT_FALSE(again.first_next);
  EXPECT_EQ(api.outstanding(), "a");
  EXPECT_EQ(api.handle(req("POST", "/2018-06-01/runtime/invocation/a/response")).answer.status, 202);
  EXPECT_TRUE(api.handle(next()).park);
  // Two pollers at once: the second is refused, the first stays parked.
  EXPECT_EQ(api.handle(next()).answer.status, 400);
  EXPECT_TRUE(api.parked());
  api.unpark();
  EXPECT_TRUE(api.handle(next()).park);
}

TEST(RuntimeApiCore, ErrorCarriesTheRuntimesTypeAndBody) {
  RuntimeApiCore api(kArn);
  ASSERT_TRUE(api.submit(inv("e")).ok());
  api.handle(next());
  HttpRequest r = req("POST", "/2018-06-01/runtime/invocation/e/error",
                      R"({"errorMessage":"boom","errorType":"ValueError","stackTrace":[]})");
  r.headers.emplace_back("Lambda-Runtime-Function-Error-Type", "Runtime.ValueError");
  auto o = api.handle(r);
  EXPECT_EQ(o.answer.status, 202);
  ASSERT_TRUE(o.result);
  EXPECT_TRUE(o.result->function_error);
  EXPECT_EQ(o.result->error_type, "Runtime.ValueError");
  EXPECT_EQ(o.result->body, r.body);
}

TEST(RuntimeApiCore, UnknownAndAlreadyAnsweredIds) {
  RuntimeApiCore api(kArn);
  auto unknown = api.handle(req("POST", "/2018-06-01/runtime/invocation/nope/response"));
  EXPECT_EQ(unknown.answer.status, 400);
  EXPECT_NE(unknown.answer.body.find("\"errorType\":\"InvalidRequestID\""), std::string::npos);
  EXPECT_FALSE(unknown.result);
  ASSERT_TRUE(api.submit(inv("x")).ok());
  api.handle(next());
  ASSERT_EQ(api.handle(req("POST", "/2018-06-01/runtime/invocation/x/response")).answer.status, 202);
  auto twice = api.handle(req("POST", "/2018-06-01/runtime/invocation/x/error"));
  EXPECT_EQ(twice.answer.status, 400);
  EXPECT_NE(twice.answer.body.find("InvalidStateTransition"), std::string::npos);
  EXPECT_FALSE(twice.result);
}

TEST(RuntimeApiCore, InitErrorOnlyBeforeTheFirstNext) {
  RuntimeApiCore api(kArn);
  auto o = api.handle(req("POST", "/2018-06-01/runtime/init/error", R"({"errorType":"Runtime.ImportModuleError"})"));
  EXPECT_EQ(o.answer.status, 202);
  ASSERT_TRUE(o.init_error);
  EXPECT_NE(o.init_error->find("ImportModuleError"), std::string::npos);
  api.handle(next());
  auto late = api.handle(req("POST", "/2018-06-01/runtime/init/error"));
  EXPECT_EQ(late.answer.status, 403);
  EXPECT_FALSE(late.init_error);
}

TEST(RuntimeApiCore, OversizeResponseIsRefusedAndReportedAsAFunctionError) {
  RuntimeApiCore api(kArn);
  ASSERT_TRUE(api.submit(inv("big")).ok());
  api.handle(next());
  auto o = api.handle_oversize(req("POST", "/2018-06-01/runtime/invocation/big/response"));
  EXPECT_EQ(o.answer.status, 413);
  EXPECT_NE(o.answer.body.find("RequestEntityTooLarge"), std::string::npos);
  ASSERT_TRUE(o.result);
  EXPECT_TRUE(o.result->function_error);
  EXPECT_EQ(o.result->error_type, "Function.ResponseSizeTooLarge");
  EXPECT_FALSE(api.busy());
  // An oversize GET does not park anything.
  EXPECT_EQ(api.handle_oversize(next()).answer.status, 413);
  EXPECT_FALSE(api.parked());
}

TEST(RuntimeApiCore, RoutingOfOtherPathsAndMethods) {
  RuntimeApiCore api(kArn);
  EXPECT_EQ(api.handle(req("POST", "/2018-06-01/runtime/invocation/next")).answer.status, 405);
  EXPECT_EQ(api.handle(req("GET", "/2018-06-01/runtime/invocation/x/response")).answer.status, 405);
  EXPECT_EQ(api.handle(req("GET", "/2020-01-01/extension/register")).answer.status, 404);
  EXPECT_EQ(api.handle(req("GET", "/2018-06-01/runtime/whatever")).answer.status, 404);
  EXPECT_FALSE(api.parked());
  // A cancelled invocation (kilnd went away) frees the slot.
  ASSERT_TRUE(api.submit(inv("c")).ok());
  api.handle(next());
  api.cancel("c");
  EXPECT_FALSE(api.busy());
  EXPECT_EQ(api.handle(req("POST", "/2018-06-01/runtime/invocation/c/response")).answer.status, 400);
}

}  // namespace
}  // namespace kiln::agent
