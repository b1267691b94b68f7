// The handler, identity and limits of a Lambda-mode instance.
#include "src/functions/lambda_runtime.h"

#include "src/functions/lambda_shapes.h"
#include "src/registry/runtime_detect.h"

namespace kiln::kilnd::functions {

protocol::LambdaSpec lambda_launch(const registry::FunctionRecord& r) {
  const registry::FunctionConfig& c = r.config;
  const registry::ImageStatus& im = r.image;
  protocol::LambdaSpec out;
  // The same Entrypoint/Cmd rules as the launch spec (launch_spec.cc: Kubernetes semantics).
  const std::vector<std::string>& entrypoint = c.command ? *c.command : im.entrypoint;
  static const std::vector<std::string> kNone;
  const std::vector<std::string>& cmd = c.args ? *c.args : (c.command ? kNone : im.cmd);
  if (!entrypoint.empty() && !cmd.empty()) out.handler = cmd.front();
  out.function_name = c.name;
  out.function_arn = lambda_function_arn(r.tenant, c.name);
  out.region = kLambdaRegion;
  out.memory_mib = c.memory_mib;
  out.timeout_ms = c.timeout_ms;
  return out;
}

void apply_runtime_api(protocol::LaunchSpec& spec, const registry::FunctionRecord& record) {
  if (registry::detect_runtime_api(record).api != registry::RuntimeApi::kLambda) return;
  spec.runtime_api = protocol::RuntimeApi::kLambda;
  spec.lambda = lambda_launch(record);
}

}  // namespace kiln::kilnd::functions
