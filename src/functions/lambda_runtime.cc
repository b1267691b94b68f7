// The handler, identity and reserved variables of a Lambda-mode instance.
#include "src/functions/lambda_runtime.h"

#include <string_view>

#include "src/functions/lambda_shapes.h"

namespace kiln::kilnd::functions {
namespace {

std::string_view env_name(std::string_view entry) { return entry.substr(0, entry.find('=')); }

}  // namespace

LambdaLaunch lambda_launch(const registry::FunctionRecord& r) {
  const registry::FunctionConfig& c = r.config;
  const registry::ImageStatus& im = r.image;
  LambdaLaunch out;
  // The same Entrypoint/Cmd rules as the launch spec (launch_spec.cc: Kubernetes semantics).
  const std::vector<std::string>& entrypoint = c.command ? *c.command : im.entrypoint;
  static const std::vector<std::string> kNone;
  const std::vector<std::string>& cmd = c.args ? *c.args : (c.command ? kNone : im.cmd);
  if (!entrypoint.empty() && !cmd.empty()) out.handler = cmd.front();
  out.function_name = c.name;
  out.function_arn = lambda_function_arn(r.tenant, c.name);
  out.memory_mb = c.memory_mib;
  out.timeout_ms = c.timeout_ms;
  std::string task_root = kLambdaDefaultTaskRoot;
  for (const auto& e : im.env) {
    if (env_name(e) == "LAMBDA_TASK_ROOT" && e.size() > sizeof("LAMBDA_TASK_ROOT")) {
      task_root = e.substr(sizeof("LAMBDA_TASK_ROOT"));
    }
  }
  if (!out.handler.empty()) out.env.push_back("_HANDLER=" + out.handler);
  out.env.push_back("AWS_LAMBDA_FUNCTION_NAME=" + c.name);
  out.env.push_back(std::string("AWS_LAMBDA_FUNCTION_VERSION=") + kLambdaLatest);
  out.env.push_back("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + std::to_string(c.memory_mib));
  out.env.push_back("AWS_LAMBDA_FUNCTION_TIMEOUT=" + std::to_string((c.timeout_ms + 999) / 1000));
  out.env.push_back("AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + c.name);
  out.env.push_back("AWS_LAMBDA_INITIALIZATION_TYPE=on-demand");
  out.env.push_back(std::string("AWS_REGION=") + kLambdaRegion);
  out.env.push_back(std::string("AWS_DEFAULT_REGION=") + kLambdaRegion);
  out.env.push_back("LAMBDA_TASK_ROOT=" + task_root);
  return out;
}

void apply_lambda_env(protocol::LaunchSpec& spec, const LambdaLaunch& launch) {
  for (const auto& var : launch.env) {
    std::string_view name = env_name(var);
    bool replaced = false;
    for (auto& e : spec.env) {
      if (env_name(e) == name) {
        e = var;
        replaced = true;
      }
    }
    if (!replaced) spec.env.push_back(var);
  }
}

}  // namespace kiln::kilnd::functions
