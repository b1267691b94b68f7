// What `kiln` prints besides the API's answers: API error lines (Lambda's error type from its
// header, never an empty type), the logs limit notice, and kiln's flags in registry hints.
#include "src/cli/kiln_output.h"

#include <gtest/gtest.h>

#include "rootfs-builder/registry/error_hints.h"
#include "common/percent_encode.h"

namespace kiln::kilnd::cli {
namespace {

client::HttpResult result(int status, std::string body, std::map<std::string, std::string> headers = {}) {
  client::HttpResult r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

TEST(KilnOutput, LambdaErrorTypeFromTheHeader) {
  auto r = result(404, R"({"Type":"User","message":"Function not found: helo"})",
                  {{"x-amzn-errortype", "ResourceNotFoundException"}});
  EXPECT_EQ(api_error_line(r), "404 ResourceNotFoundException: Function not found: helo");
  r.headers["x-amzn-errortype"] = "ResourceNotFoundException:http://internal.amazon.com/coral/";
  EXPECT_EQ(api_error_line(r), "404 ResourceNotFoundException: Function not found: helo");
}

TEST(KilnOutput, ErrorTypeFromTheBodyOtherwise) {
  EXPECT_EQ(api_error_line(result(404, R"({"error":"not_found","message":"no function named x"})")),
            "404 not_found: no function named x");
  EXPECT_EQ(api_error_line(result(200, R"({"errorType":"Runtime.ExitError","errorMessage":"boom"})")),
            "200 Runtime.ExitError: boom");
  EXPECT_EQ(api_error_line(result(400, R"({"__type":"InvalidRequestContentException","message":"bad"})")),
            "400 InvalidRequestContentException: bad");
  EXPECT_EQ(api_error_line(result(404, R"({"Type":"User","message":"Function not found: helo"})")),
            "404 User: Function not found: helo");
}

TEST(KilnOutput, NeverAnEmptyType) {
  EXPECT_EQ(api_error_line(result(404, R"({"message":"Function not found"})")), "404 Function not found");
  EXPECT_EQ(api_error_line(result(404, R"({"error":"","message":"gone"})", {{"x-amzn-errortype", ""}})), "404 gone");
  EXPECT_EQ(api_error_line(result(404, "no such route\n")), "404 no such route");
  EXPECT_EQ(api_error_line(result(502, "")), "502");
}

TEST(KilnOutput, LogsLimitNotice) {
  EXPECT_FALSE(logs_limit_notice("a\nb\n", 3).has_value());
  EXPECT_FALSE(logs_limit_notice("", 1000).has_value());
  auto n = logs_limit_notice("a\nb\nc\n", 3);
  ASSERT_TRUE(n.has_value());
  EXPECT_NE(n->find("showing the newest 3 lines"), std::string::npos) << *n;
  EXPECT_NE(n->find("--limit N"), std::string::npos) << *n;
  EXPECT_NE(n->find("--since"), std::string::npos) << *n;
}

TEST(KilnOutput, RegistryHintsNameKilnFlags) {
  const std::string creds = "pulling: registry r " + std::string(rootfs::kNoCredentialsHint);
  EXPECT_EQ(with_kiln_flag_hints(creds),
            "pulling: registry r requires authentication and no credentials were given "
            "(deploy with --username U --password P)");
  const std::string plain = "wrong version number (" + std::string(rootfs::kPlainHttpHint) + ")";
  EXPECT_EQ(with_kiln_flag_hints(plain),
            "wrong version number (the registry may speak plain HTTP: deploy with --insecure-registry)");
  EXPECT_EQ(with_kiln_flag_hints("manifest unknown"), "manifest unknown");
}

TEST(KilnOutput, NetworkSummary) {
  using nlohmann::json;
  EXPECT_FALSE(network_summary(json::parse(R"({"name": "f"})")).has_value());
  EXPECT_EQ(network_summary(json::parse(R"({"network": {}})")), "network: kilnd's default mode");
  EXPECT_EQ(network_summary(json::parse(
                R"({"network": {"mode": "none", "allow": ["10.1.0.0/16", "192.168.5.7/32"], "deny": ["10.1.2.0/24"],
                                "dns": ["10.1.0.53"]}})")),
            "network: none; allow 10.1.0.0/16, 192.168.5.7/32; deny 10.1.2.0/24; dns 10.1.0.53");
}

TEST(KilnOutput, PercentEncodedPathSegments) {
  EXPECT_EQ(percent_encode("hello-1_a.b~c"), "hello-1_a.b~c");
  EXPECT_EQ(percent_encode("bad/name"), "bad%2Fname");
  EXPECT_EQ(percent_encode("a b?c#d%"), "a%20b%3Fc%23d%25");
  EXPECT_EQ(percent_encode("\xc3\xa9"), "%C3%A9");
}

}  // namespace
}  // namespace kiln::kilnd::cli
