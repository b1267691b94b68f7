// What an instance of a `lambda`-mode function is told about its function (issue 18): the
// handler, its identity, limits and ARN, as the launch spec's LambdaSpec. kiln-init turns them
// into Lambda's reserved environment variables (guest-agent/agent/lambda_env.h: one place sets
// them, the guest, which also owns AWS_LAMBDA_RUNTIME_API's listener). Pure.
#pragma once

#include "common/protocol/launch_spec.h"
#include "src/registry/function_config.h"

namespace kiln::kilnd::functions {

// handler (_HANDLER): as Lambda does, the first element of the CMD (the function's `args`, else
// the image's Cmd unless `command` replaced the Entrypoint) when there is an ENTRYPOINT (the
// runtime interface client, which takes the handler as its argument). With no ENTRYPOINT the
// CMD is the program itself and no handler is named: "". Region kLambdaRegion, ARN
// lambda_function_arn(tenant, name); nothing per instance, so instances of one function still
// share a snapshot key.
protocol::LambdaSpec lambda_launch(const registry::FunctionRecord& record);

// When `record` runs in lambda mode (registry::detect_runtime_api), sets `spec`'s runtime_api
// and its LambdaSpec; otherwise leaves `spec` as it is.
void apply_runtime_api(protocol::LaunchSpec& spec, const registry::FunctionRecord& record);

}  // namespace kiln::kilnd::functions
