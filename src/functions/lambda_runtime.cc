// The handler, identity and limits of a Lambda-mode instance.
#include "src/functions/lambda_runtime.h"

#include "src/functions/lambda_shapes.h"
#include "src/registry/launch_spec.h"
#include "src/registry/runtime_detect.h"

namespace kiln::kilnd::functions {

protocol::LambdaSpec lambda_launch(const registry::FunctionRecord& r) {
  const registry::FunctionConfig& c = r.config;
  const registry::ImageStatus& im = r.image;
  protocol::LambdaSpec out;
  // Lambda's _HANDLER: the CMD's first element, with the launch spec's Entrypoint/Cmd rules.
  const registry::ResolvedCommand command = registry::resolve_command(c, im);
  if (!command.entrypoint.empty() && !command.cmd.empty()) out.handler = command.cmd.front();
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
