// Web invocations of lambda-mode functions: the API Gateway v2.0 event built from fixed requests,
// and results mapped back as function URLs do, hostile ones included (a 502's message).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "src/invoke/apigw_event.h"

namespace kiln::kilnd::invoke {
namespace {

using nlohmann::json;

WebEventContext context() {
  WebEventContext c;
  c.request_id = "req-1";
  c.account_id = "000000000000";
  c.api_id = "hello";
  c.source_ip = "10.1.2.3";
  c.time_ms = 1796656886123;  // 2026-12-07T15:21:26.123Z
  return c;
}

http::request<http::string_body> incoming(http::verb method, std::string body = "") {
  http::request<http::string_body> req{method, "/v1/functions/hello/http/a%20b/c?x=1", 11};
  req.set(http::field::host, "fn.example.com:8900");
  req.set(http::field::user_agent, "curl/8.0");
  req.body() = std::move(body);
  return req;
}

TEST(ApigwEvent, AGetWithQueryHeadersAndCookies) {
  auto req = incoming(http::verb::get);
  req.insert("X-Multi", "one");
  req.insert("x-multi", "two");
  req.insert(http::field::cookie, "a=1; b=2");
  req.insert(http::field::cookie, "c=3");
  req.set(http::field::connection, "keep-alive, X-Hop");
  req.set("X-Hop", "secret");
  req.set("X-Kiln-Request-Id", "forged");
  req.set("X-Scf-Name", "forged");
  json e = json::parse(make_apigw_event(req, "/a%20b/c", "x=1&y=a%2Fb&x=2&flag&sp=a+b", context()));
  EXPECT_EQ(e["version"], "2.0");
  EXPECT_EQ(e["routeKey"], "$default");
  EXPECT_EQ(e["rawPath"], "/a%20b/c");
  EXPECT_EQ(e["rawQueryString"], "x=1&y=a%2Fb&x=2&flag&sp=a+b");
  EXPECT_EQ(e["cookies"], json({"a=1", "b=2", "c=3"}));
  EXPECT_EQ(e["headers"]["x-multi"], "one,two");
  EXPECT_EQ(e["headers"]["host"], "fn.example.com:8900");
  EXPECT_EQ(e["headers"]["user-agent"], "curl/8.0");
  for (const char* gone : {"cookie", "connection", "x-hop", "x-kiln-request-id", "x-scf-name"}) {
    EXPECT_FALSE(e["headers"].contains(gone)) << gone;
  }
  EXPECT_EQ(e["queryStringParameters"], json({{"x", "1,2"}, {"y", "a/b"}, {"flag", ""}, {"sp", "a b"}}));
  const json& rc = e["requestContext"];
  EXPECT_EQ(rc["accountId"], "000000000000");
  EXPECT_EQ(rc["apiId"], "hello");
  EXPECT_EQ(rc["domainName"], "fn.example.com:8900");
  EXPECT_EQ(rc["domainPrefix"], "fn");
  EXPECT_EQ(rc["http"], json({{"method", "GET"}, {"path", "/a%20b/c"}, {"protocol", "HTTP/1.1"},
                             {"sourceIp", "10.1.2.3"}, {"userAgent", "curl/8.0"}}));
  EXPECT_EQ(rc["requestId"], "req-1");
  EXPECT_EQ(rc["stage"], "$default");
  EXPECT_EQ(rc["time"], "07/Dec/2026:15:21:26 +0000");
  EXPECT_EQ(rc["timeEpoch"], 1796656886123u);
  EXPECT_FALSE(e.contains("body"));
  EXPECT_EQ(e["isBase64Encoded"], false);
}

TEST(ApigwEvent, NoQueryNoCookiesAndTextOrBinaryBodies) {
  auto req = incoming(http::verb::post, R"({"k":"v"})");
  req.set(http::field::content_type, "application/json; charset=utf-8");
  json e = json::parse(make_apigw_event(req, "/", "", context()));
  EXPECT_FALSE(e.contains("cookies"));
  EXPECT_FALSE(e.contains("queryStringParameters"));
  EXPECT_EQ(e["rawQueryString"], "");
  EXPECT_EQ(e["body"], R"({"k":"v"})");
  EXPECT_EQ(e["isBase64Encoded"], false);
  EXPECT_EQ(e["requestContext"]["http"]["method"], "POST");

  auto bin = incoming(http::verb::put, std::string("\x00\xff\x01", 3));
  bin.set(http::field::content_type, "application/octet-stream");
  e = json::parse(make_apigw_event(bin, "/up", "", context()));
  EXPECT_EQ(e["body"], "AP8B");
  EXPECT_EQ(e["isBase64Encoded"], true);

  auto bad_text = incoming(http::verb::post, "caf\xe9");  // text/plain but not UTF-8
  bad_text.set(http::field::content_type, "text/plain");
  e = json::parse(make_apigw_event(bad_text, "/", "", context()));
  EXPECT_EQ(e["isBase64Encoded"], true);
  EXPECT_EQ(e["body"], "Y2Fm6Q==");
}

TEST(ApigwEvent, HostileRequestBytesStillMakeJson) {
  auto req = incoming(http::verb::get);
  req.set("X-Weird", "\xff\xfe");
  json e = json::parse(make_apigw_event(req, "/%ff", "k=%zz&%ff=1", context()), nullptr, false);
  ASSERT_FALSE(e.is_discarded());
  EXPECT_EQ(e["queryStringParameters"]["k"], "%zz");  // a malformed escape is passed on as sent
  EXPECT_TRUE(e["headers"].contains("x-weird"));
}

std::string header(const http::response<http::string_body>& r, std::string_view name) {
  return std::string(r[bsv(name)]);
}

TEST(ApigwResult, StructuredResult) {
  auto r = web_response_from_result(R"({"statusCode":201,"headers":{"Content-Type":"text/plain","X-N":7},
      "multiValueHeaders":{"X-M":["a","b"]},"cookies":["s=1; Path=/","t=2"],"body":"made"})", 11);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->result_int(), 201);
  EXPECT_EQ(header(*r, "Content-Type"), "text/plain");
  EXPECT_EQ(header(*r, "X-N"), "7");
  EXPECT_EQ(r->count("X-M"), 2u);
  EXPECT_EQ(r->count("Set-Cookie"), 2u);
  EXPECT_EQ(r->body(), "made");
  EXPECT_EQ(header(*r, "Content-Length"), "4");

  auto b64 = web_response_from_result(R"({"statusCode":200,"body":"AP8B","isBase64Encoded":true})", 11);
  ASSERT_TRUE(b64.ok());
  EXPECT_EQ(b64->body(), std::string("\x00\xff\x01", 3));
  auto empty = web_response_from_result(R"({"statusCode":204})", 11);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->result_int(), 204);
  EXPECT_EQ(empty->body(), "");
  // Hop-by-hop headers of the result never reach the client.
  auto hop = web_response_from_result(R"({"statusCode":200,"headers":{"Transfer-Encoding":"chunked","Connection":"x"},"body":"b"})", 11);
  ASSERT_TRUE(hop.ok());
  EXPECT_EQ(hop->count(http::field::transfer_encoding), 0u);
  EXPECT_EQ(hop->count(http::field::connection), 0u);
}

TEST(ApigwResult, AnythingElseIsA200JsonBody) {
  for (const char* text : {R"({"message":"hi"})", R"("hello")", "42", "[1,2]", "null", ""}) {
    auto r = web_response_from_result(text, 11);
    ASSERT_TRUE(r.ok()) << text;
    EXPECT_EQ(r->result_int(), 200) << text;
    EXPECT_EQ(header(*r, "Content-Type"), "application/json");
    EXPECT_EQ(r->body(), text);
  }
}

TEST(ApigwResult, HostileResultsAreErrors) {
  struct Case {
    std::string result;
    std::string message;
  };
  std::string many = R"({"statusCode":200,"headers":{)";
  for (int i = 0; i < 101; ++i) many += (i ? "," : "") + std::string("\"h") + std::to_string(i) + "\":\"v\"";
  many += "}}";
  std::string huge = R"({"statusCode":200,"headers":{"X-Big":")" + std::string(17 * 1024, 'a') + "\"}}";
  std::vector<Case> cases = {
      {"not json {", "the function's result is not JSON"},
      {R"({"statusCode":"200"})", "statusCode must be an integer"},
      {R"({"statusCode":200.5})", "statusCode must be an integer"},
      {R"({"statusCode":99})", "statusCode 99 is not 100-599"},
      {R"({"statusCode":600})", "statusCode 600 is not 100-599"},
      {R"({"statusCode":-1})", "statusCode -1 is not 100-599"},
      {R"({"statusCode":200,"headers":[]})", "headers must be an object"},
      {R"({"statusCode":200,"headers":{"X":{}}})", "headers.X must be a string"},
      {R"({"statusCode":200,"headers":{"Bad Name":"v"}})", "header name 'Bad Name' is not valid"},
      {R"({"statusCode":200,"headers":{"X":"a\r\nInjected: 1"}})", "header X has CR, LF or NUL in its value"},
      {R"({"statusCode":200,"multiValueHeaders":{"X":"a"}})", "multiValueHeaders.X must be an array"},
      {R"({"statusCode":200,"cookies":"a=1"})", "cookies must be an array"},
      {R"({"statusCode":200,"cookies":[1]})", "cookies must be strings"},
      {R"({"statusCode":200,"body":{"a":1}})", "body must be a string"},
      {R"({"statusCode":200,"isBase64Encoded":"yes","body":"x"})", "isBase64Encoded must be a boolean"},
      {R"({"statusCode":200,"isBase64Encoded":true,"body":"not base64!"})",
       "isBase64Encoded is true but body is not valid base64"},
      {many, "more than 100 headers"},
      {huge, "headers larger than 16384 bytes"},
  };
  for (const auto& c : cases) {
    auto r = web_response_from_result(c.result, 11);
    ASSERT_FALSE(r.ok()) << c.result.substr(0, 80);
    std::string want = c.message == "the function's result is not JSON"
                           ? c.message
                           : "the function's result is not a valid HTTP response: " + c.message;
    EXPECT_EQ(r.error().message, want);
  }
}

}  // namespace
}  // namespace kiln::kilnd::invoke
