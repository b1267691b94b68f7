// A function's runtime API (issue 18): the `runtime_api` setting (validation, state round trip,
// the API's view), the detection rules over the image's config, and what a lambda-mode
// instance gets from kilnd (handler, identity, reserved variables).
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "src/functions/lambda_runtime.h"
#include "src/functions/lambda_shapes.h"
#include "src/registry/launch_spec.h"
#include "src/registry/runtime_detect.h"
#include "tests/unit/kilnd/support/daemon_harness.h"

namespace kiln::kilnd::registry {
namespace {

using nlohmann::json;

TEST(RuntimeApiSetting, ParsedValidatedAndAbsentMeansDetect) {
  FieldError fe;
  auto absent = parse_function_config("f", R"({"image":"x"})", &fe);
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->runtime_api.has_value());
  auto lambda = parse_function_config("f", R"({"image":"x","runtime_api":"lambda"})", &fe);
  ASSERT_TRUE(lambda.ok());
  EXPECT_EQ(lambda->runtime_api, RuntimeApi::kLambda);
  auto http = parse_function_config("f", R"({"image":"x","runtime_api":"http9000"})", &fe);
  ASSERT_TRUE(http.ok());
  EXPECT_EQ(http->runtime_api, RuntimeApi::kHttp9000);
  for (const char* bad : {R"("Lambda")", R"("")", R"("http")", "1", "null", R"(["lambda"])"}) {
    fe = {};
    auto r = parse_function_config("f", std::string(R"({"image":"x","runtime_api":)") + bad + "}", &fe);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(fe.field, "runtime_api") << bad;
    EXPECT_EQ(fe.message.rfind("runtime_api: ", 0), 0u) << fe.message;
  }
  fe = {};
  ASSERT_FALSE(parse_function_config("f", R"({"image":"x","runtime_api":"grpc"})", &fe).ok());
  EXPECT_EQ(fe.message, R"(runtime_api: must be "http9000" or "lambda" (omit it to detect from the image))");
}

TEST(RuntimeApiSetting, StateRoundTripAndApiView) {
  FunctionRecord r;
  r.config = *parse_function_config("f", R"({"image":"x","runtime_api":"lambda"})", nullptr);
  r.image.labels = {{"com.amazonaws.lambda", "1"}};
  auto back = record_from_state_json(record_to_state_json(r));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->config.runtime_api, RuntimeApi::kLambda);
  EXPECT_EQ(back->image.labels, r.image.labels);
  EXPECT_EQ(record_to_api_json(r)["config"]["runtime_api"], "lambda");
  EXPECT_EQ(record_to_api_json(r)["image"]["config"]["labels"]["com.amazonaws.lambda"], "1");
  r.config.runtime_api.reset();
  EXPECT_FALSE(record_to_api_json(r)["config"].contains("runtime_api"));
  back = record_from_state_json(record_to_state_json(r));
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->config.runtime_api.has_value());
  // A hand-edited state file cannot smuggle in a value the API refuses.
  std::string text = record_to_state_json(r);
  text.replace(text.find("\"image\": \"x\""), 12, R"("image": "x", "runtime_api": "soap")");
  EXPECT_FALSE(record_from_state_json(text).ok());
}

TEST(RuntimeDetect, TheSettingWins) {
  std::vector<std::string> lambda_env = {"LAMBDA_TASK_ROOT=/var/task"};
  auto d = detect_runtime_api(RuntimeApi::kHttp9000, lambda_env, {{"lambda", "1"}});
  EXPECT_EQ(d.api, RuntimeApi::kHttp9000);
  EXPECT_EQ(d.reason, "setting");
  EXPECT_EQ(detect_runtime_api(RuntimeApi::kLambda, {}, {}).api, RuntimeApi::kLambda);
}

TEST(RuntimeDetect, LambdaFromTheImagesEnv) {
  auto task_root = detect_runtime_api(std::nullopt, {"PATH=/bin", "LAMBDA_TASK_ROOT=/var/task"}, {});
  EXPECT_EQ(task_root.api, RuntimeApi::kLambda);
  EXPECT_EQ(task_root.reason, "image Env LAMBDA_TASK_ROOT");
  auto aws = detect_runtime_api(std::nullopt, {"AWS_LAMBDA_EXEC_WRAPPER=/w"}, {});
  EXPECT_EQ(aws.api, RuntimeApi::kLambda);
  EXPECT_EQ(aws.reason, "image Env AWS_LAMBDA_EXEC_WRAPPER");
  EXPECT_EQ(detect_runtime_api(std::nullopt, {"AWS_LAMBDA_RUNTIME_API"}, {}).api, RuntimeApi::kLambda);  // no '='
  // Near misses stay http9000.
  for (const char* e : {"AWS_LAMBDA=1", "X_AWS_LAMBDA_Y=1", "LAMBDA_TASK_ROOTS=1", "aws_lambda_x=1",
                        "PATH=AWS_LAMBDA_X", "LAMBDA_RUNTIME_DIR=/var/runtime", ""}) {
    EXPECT_EQ(detect_runtime_api(std::nullopt, {e}, {}).api, RuntimeApi::kHttp9000) << e;
  }
}

TEST(RuntimeDetect, LambdaFromALabel) {
  auto l = detect_runtime_api(std::nullopt, {}, {{"lambda", "true"}});
  EXPECT_EQ(l.api, RuntimeApi::kLambda);
  EXPECT_EQ(l.reason, "image label lambda");
  EXPECT_EQ(detect_runtime_api(std::nullopt, {}, {{"com.amazonaws.lambda", ""}}).api, RuntimeApi::kLambda);
  EXPECT_EQ(detect_runtime_api(std::nullopt, {}, {{"com.amazonaws.lambda", "python3.12"}}).api, RuntimeApi::kLambda);
  for (const char* off : {"false", "FALSE", "0"}) {
    EXPECT_EQ(detect_runtime_api(std::nullopt, {}, {{"lambda", off}}).api, RuntimeApi::kHttp9000) << off;
  }
  for (const char* other : {"Lambda", "com.amazonaws.lambda.runtime", "lambda.version", "aws.lambda"}) {
    EXPECT_EQ(detect_runtime_api(std::nullopt, {}, {{other, "1"}}).api, RuntimeApi::kHttp9000) << other;
  }
}

TEST(RuntimeDetect, DefaultIsHttp9000AndARecordUsesItsImage) {
  auto d = detect_runtime_api(std::nullopt, {"PATH=/bin"}, {{"maintainer", "me"}});
  EXPECT_EQ(d.api, RuntimeApi::kHttp9000);
  EXPECT_EQ(d.reason, "default");
  FunctionRecord r;
  r.config.name = "f";
  r.image.env = {"AWS_LAMBDA_FUNCTION_NAME=x"};
  EXPECT_EQ(detect_runtime_api(r).api, RuntimeApi::kLambda);
  r.config.env["LAMBDA_TASK_ROOT"] = "/x";  // the function's env is not the image's
  r.image.env.clear();
  EXPECT_EQ(detect_runtime_api(r).api, RuntimeApi::kHttp9000);
  r.config.runtime_api = RuntimeApi::kLambda;
  EXPECT_EQ(detect_runtime_api(r).api, RuntimeApi::kLambda);
}

FunctionRecord lambda_record() {
  FunctionRecord r;
  r.tenant = "acme";
  r.config.name = "hello";
  r.config.memory_mib = 512;
  r.config.timeout_ms = 2500;
  r.image.entrypoint = {"/lambda-entrypoint.sh"};
  r.image.cmd = {"app.handler", "ignored"};
  r.image.env = {"PATH=/bin", "LAMBDA_TASK_ROOT=/srv/task", "AWS_REGION=us-east-1"};
  return r;
}

TEST(LambdaLaunch, HandlerIsTheCmdsFirstElementBehindAnEntrypoint) {
  FunctionRecord r = lambda_record();
  EXPECT_EQ(functions::lambda_launch(r).handler, "app.handler");
  r.config.args = std::vector<std::string>{"other.handler"};  // the function's args are the CMD
  EXPECT_EQ(functions::lambda_launch(r).handler, "other.handler");
  r.config.args.reset();
  r.config.command = std::vector<std::string>{"/usr/bin/python3", "-m", "awslambdaric"};  // drops the image's Cmd
  EXPECT_EQ(functions::lambda_launch(r).handler, "");
  r.config.args = std::vector<std::string>{"fn.main"};
  EXPECT_EQ(functions::lambda_launch(r).handler, "fn.main");
  r = lambda_record();
  r.image.entrypoint.clear();  // the CMD is the program itself
  EXPECT_EQ(functions::lambda_launch(r).handler, "");
  r.image.entrypoint = {"/bootstrap"};
  r.image.cmd.clear();
  EXPECT_EQ(functions::lambda_launch(r).handler, "");
}

TEST(LambdaLaunch, IdentityLimitsAndArn) {
  FunctionRecord r = lambda_record();
  auto l = functions::lambda_launch(r);
  EXPECT_EQ(l.function_name, "hello");
  EXPECT_EQ(l.function_arn, functions::lambda_function_arn("acme", "hello"));
  EXPECT_EQ(l.region, "local");
  EXPECT_EQ(l.memory_mib, 512u);
  EXPECT_EQ(l.timeout_ms, 2500u);
  EXPECT_EQ(l.handler, "app.handler");
}

TEST(LambdaLaunch, ALambdaModeRecordGetsItInItsLaunchSpec) {
  FunctionRecord r = lambda_record();  // the image's Env names LAMBDA_TASK_ROOT
  r.config.env["AWS_LAMBDA_FUNCTION_NAME"] = "forged";
  protocol::LaunchSpec spec = make_launch_spec(r, "hello-1");
  const std::vector<std::string> env = spec.env;
  functions::apply_runtime_api(spec, r);
  EXPECT_EQ(spec.runtime_api, protocol::RuntimeApi::kLambda);
  EXPECT_EQ(spec.lambda, functions::lambda_launch(r));
  EXPECT_EQ(spec.env, env);  // the reserved variables are kiln-init's to set (lambda_env.h)
  auto wire = protocol::encode_launch_spec(spec);
  ASSERT_TRUE(wire.ok()) << wire.error().message;
  auto back = protocol::decode_launch_spec(*wire);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->lambda, spec.lambda);
  EXPECT_EQ(back->runtime_api, protocol::RuntimeApi::kLambda);

  FunctionRecord plain;
  plain.config.name = "web";
  plain.image.cmd = {"/app"};
  protocol::LaunchSpec http = make_launch_spec(plain, "web-1");
  functions::apply_runtime_api(http, plain);
  EXPECT_EQ(http.runtime_api, protocol::RuntimeApi::kHttp9000);
  EXPECT_EQ(http.lambda, protocol::LambdaSpec{});
}

using RuntimeApiDaemonTest = test::StateDirTest;

TEST_F(RuntimeApiDaemonTest, TheSettingIsShownAndAWrongOneIs400) {
  test::DaemonHarness k(dir_);
  auto bad = k.call("PUT", "/v1/functions/f", R"({"image":"oci:/img:1","runtime_api":"cgi"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body)["field"], "runtime_api");
  k.deploy("f", R"({"image":"oci:/img:1","runtime_api":"lambda"})");
  auto got = k.call("GET", "/v1/functions/f");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(json::parse(got.body)["config"]["runtime_api"], "lambda");
  k.deploy("g", R"({"image":"oci:/img:1"})");
  EXPECT_FALSE(json::parse(k.call("GET", "/v1/functions/g").body)["config"].contains("runtime_api"));
}

TEST_F(RuntimeApiDaemonTest, AWebCallOfALambdaFunctionIsAnApiGatewayEventAndItsResultTheAnswer) {
  test::DaemonHarness k(dir_);
  k.deploy("f", R"({"image":"oci:/img:1","runtime_api":"lambda"})");
  auto res = k.call("PUT", "/v1/functions/f/http/items/7?color=red&color=blue", "hello", {{"X-Trace", "t1"}, {"Content-Type", "text/plain"}});
  ASSERT_EQ(res.status, 200) << res.body;
  // The fake runtime answers with what it got (a JSON object without statusCode: a 200 whose
  // body is that object, as function URLs answer it): an event, sent as one.
  json got = json::parse(res.body);
  EXPECT_EQ(got["method"], "POST");
  EXPECT_EQ(got["target"], "/event-invoke");
  json event = json::parse(got["body"].get<std::string>());
  EXPECT_EQ(event["version"], "2.0");
  EXPECT_EQ(event["rawPath"], "/items/7");
  EXPECT_EQ(event["rawQueryString"], "color=red&color=blue");
  EXPECT_EQ(event["queryStringParameters"]["color"], "red,blue");
  EXPECT_EQ(event["headers"]["x-trace"], "t1");
  EXPECT_EQ(event["requestContext"]["http"]["method"], "PUT");
  EXPECT_EQ(event["requestContext"]["http"]["sourceIp"], "127.0.0.1");
  EXPECT_EQ(event["requestContext"]["requestId"], res.headers["x-kiln-request-id"]);
  EXPECT_EQ(event["requestContext"]["accountId"], "000000000000");
  EXPECT_EQ(event["body"], "hello");
  EXPECT_EQ(event["isBase64Encoded"], false);
  // An http9000 function still gets the request itself.
  k.deploy("g", R"({"image":"oci:/img:1"})");
  auto plain = k.call("PUT", "/v1/functions/g/http/items/7?color=red", "hello");
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(json::parse(plain.body)["method"], "PUT");
  EXPECT_EQ(json::parse(plain.body)["body"], "hello");
}

}  // namespace
}  // namespace kiln::kilnd::registry
