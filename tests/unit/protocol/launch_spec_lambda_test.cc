// LaunchSpec's Lambda keys: runtime_api and the function facts a Lambda runtime is told.
#include <gtest/gtest.h>

#include "common/protocol/launch_spec.h"
#include "common/protocol/record.h"

namespace kiln::protocol {
namespace {

Record base() {
  Record r;
  r.add("arg", "/bootstrap");
  return r;
}

TEST(LaunchSpecLambda, DefaultIsHttp9000AndEncodesWithoutLambdaKeys) {
  LaunchSpec s;
  s.argv = {"/bin/true"};
  auto p = encode_launch_spec(s);
  ASSERT_TRUE(p.ok());
  auto r = Record::decode(*p);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->get("runtime_api"));
  EXPECT_FALSE(r->get("function_name"));
  auto d = decode_launch_spec(*p);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->runtime_api, RuntimeApi::kHttp9000);
  EXPECT_EQ(d->lambda, LambdaSpec{});
}

TEST(LaunchSpecLambda, RoundTrip) {
  LaunchSpec s;
  s.argv = {"app.handler"};
  s.runtime_api = RuntimeApi::kLambda;
  s.lambda.function_name = "orders";
  s.lambda.region = "eu-west-1";
  s.lambda.memory_mib = 512;
  s.lambda.timeout_ms = 15000;
  s.lambda.handler = "app.handler";
  auto p = encode_launch_spec(s);
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto d = decode_launch_spec(*p);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->runtime_api, RuntimeApi::kLambda);
  EXPECT_EQ(d->lambda, s.lambda);
  EXPECT_EQ(d->lambda.invoked_arn(), "arn:aws:lambda:eu-west-1:000000000000:function:orders");
  s.lambda.function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders";
  d = decode_launch_spec(*encode_launch_spec(s));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->lambda.invoked_arn(), s.lambda.function_arn);
}

TEST(LaunchSpecLambda, RejectsMalformedKnownKeys) {
  auto with = [](std::string_view key, std::string_view value) {
    Record r = base();
    r.add(key, value);
    return decode_launch_spec(*r.encode());
  };
  EXPECT_FALSE(with("runtime_api", "grpc").ok());
  EXPECT_FALSE(with("runtime_api", "").ok());
  EXPECT_FALSE(with("function_name", "has space").ok());
  EXPECT_FALSE(with("function_name", std::string(141, 'f')).ok());
  EXPECT_FALSE(with("function_arn", "arn\nX-Injected: 1").ok());
  EXPECT_FALSE(with("function_region", "").ok());
  EXPECT_FALSE(with("memory_mib", "0").ok());
  EXPECT_FALSE(with("memory_mib", "lots").ok());
  EXPECT_FALSE(with("timeout_ms", "0").ok());
  EXPECT_FALSE(with("timeout_ms", "3600001").ok());
  Record twice = base();
  twice.add("runtime_api", "lambda");
  twice.add("runtime_api", "http9000");
  auto d = decode_launch_spec(*twice.encode());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("runtime_api"), std::string::npos);
  EXPECT_TRUE(with("runtime_api", "lambda").ok());
  EXPECT_TRUE(with("lambda_future_key", "x").ok());  // unknown keys are still ignored
}

}  // namespace
}  // namespace kiln::protocol
