// lambda_environment: Lambda's reserved variables win over the image's, defaults do not.
#include "guest-agent/agent/lambda_env.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace kiln::agent {
namespace {

protocol::LaunchSpec lambda_spec() {
  protocol::LaunchSpec s;
  s.argv = {"/lambda-entrypoint.sh", "app.handler"};
  s.runtime_api = protocol::RuntimeApi::kLambda;
  s.lambda.function_name = "orders";
  s.lambda.memory_mib = 512;
  s.instance_id = "i-7";
  return s;
}

// The value build_exec_plan would keep for `name` (the last entry wins).
std::string last(const std::vector<std::string>& env, const std::string& name) {
  std::string v = "<absent>";
  for (const auto& e : env) {
    if (e.rfind(name + "=", 0) == 0) v = e.substr(name.size() + 1);
  }
  return v;
}

TEST(LambdaEnv, ReservedNamesAndDefaults) {
  auto s = lambda_spec();
  s.env = {"LAMBDA_TASK_ROOT=/app", "AWS_LAMBDA_FUNCTION_NAME=forged", "TZ=Europe/Paris", "KEEP=1"};
  auto env = lambda_environment(s, "127.0.0.1:9001");
  EXPECT_EQ(last(env, "AWS_LAMBDA_RUNTIME_API"), "127.0.0.1:9001");
  EXPECT_EQ(last(env, "AWS_LAMBDA_FUNCTION_NAME"), "orders");
  EXPECT_EQ(last(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "512");
  EXPECT_EQ(last(env, "AWS_LAMBDA_FUNCTION_VERSION"), "$LATEST");
  EXPECT_EQ(last(env, "AWS_REGION"), "us-east-1");
  EXPECT_EQ(last(env, "AWS_LAMBDA_LOG_STREAM_NAME"), "i-7");
  EXPECT_EQ(last(env, "TZ"), ":UTC");
  EXPECT_EQ(last(env, "_HANDLER"), "app.handler");
  EXPECT_EQ(last(env, "LAMBDA_TASK_ROOT"), "/app");  // the image's own wins over the default
  EXPECT_EQ(last(env, "KEEP"), "1");
  s.env.clear();
  EXPECT_EQ(last(lambda_environment(s, "x:1"), "LAMBDA_TASK_ROOT"), "/var/task");
}

TEST(LambdaEnv, Handler) {
  auto s = lambda_spec();
  EXPECT_EQ(lambda_handler(s), "app.handler");
  s.lambda.handler = "index.main";
  EXPECT_EQ(lambda_handler(s), "index.main");
  s.lambda.handler.clear();
  s.argv = {"/bootstrap"};
  EXPECT_EQ(lambda_handler(s), "");
  auto env = lambda_environment(s, "x:1");
  EXPECT_TRUE(std::none_of(env.begin(), env.end(), [](const std::string& e) { return e.rfind("_HANDLER=", 0) == 0; }));
}

}  // namespace
}  // namespace kiln::agent
