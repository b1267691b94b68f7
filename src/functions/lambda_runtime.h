// What an instance of a `lambda`-mode function needs from kilnd (issue 18): the handler, its
// identity, limits and ARN, and Lambda's reserved environment variables laid over the launch
// spec's. Pure. (AWS_LAMBDA_RUNTIME_API is kiln-init's to set: it owns the listener.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/protocol/launch_spec.h"
#include "src/registry/function_config.h"

namespace kiln::kilnd::functions {

inline constexpr const char* kLambdaDefaultTaskRoot = "/var/task";

struct LambdaLaunch {
  // _HANDLER: as Lambda does, the first element of the CMD (the function's `args`, else the
  // image's Cmd unless `command` replaced the Entrypoint) when there is an ENTRYPOINT (the
  // runtime interface client, which takes the handler as its argument). With no ENTRYPOINT the
  // CMD is the program itself and no handler is named: "".
  std::string handler;
  std::string function_name;
  std::string function_arn;  // lambda_function_arn(tenant, name)
  std::uint32_t memory_mb = 128;
  std::uint64_t timeout_ms = 3000;
  // "NAME=value": _HANDLER (when named), AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION
  // ($LATEST), AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_FUNCTION_TIMEOUT (seconds, rounded
  // up, as the Runtime Interface Emulator reads it), AWS_LAMBDA_LOG_GROUP_NAME
  // (/aws/lambda/NAME), AWS_LAMBDA_INITIALIZATION_TYPE (on-demand), AWS_REGION and
  // AWS_DEFAULT_REGION (kLambdaRegion), LAMBDA_TASK_ROOT (the image's, else /var/task).
  // Nothing per instance, so instances of one function still share a snapshot key.
  std::vector<std::string> env;
};

LambdaLaunch lambda_launch(const registry::FunctionRecord& record);

// Sets each of `launch.env`'s variables in `spec.env`: an existing one (the image's or the
// function's) is replaced in place (Lambda reserves these names), new ones are appended.
void apply_lambda_env(protocol::LaunchSpec& spec, const LambdaLaunch& launch);

}  // namespace kiln::kilnd::functions
