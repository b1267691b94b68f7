// The environment Lambda gives a runtime (its reserved variables), added to a launch spec's
// env for lambda mode; the exec plan then builds the final environment as for any command.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/protocol/launch_spec.h"

namespace kiln::agent {

// _HANDLER: the spec's function_handler, else argv[1] (an image built on Lambda's base images:
// ENTRYPOINT one element, CMD's first element next), else "".
std::string lambda_handler(const protocol::LaunchSpec& spec);

// spec.env with Lambda's defaults before it (the image may override LAMBDA_TASK_ROOT, LANG,
// ...) and the reserved names after it (the image cannot: AWS_LAMBDA_RUNTIME_API, the
// function's name, memory, version, region, _HANDLER, TZ). api_address is "127.0.0.1:PORT".
std::vector<std::string> lambda_environment(const protocol::LaunchSpec& spec, std::string_view api_address);

}  // namespace kiln::agent
