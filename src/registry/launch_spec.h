// The launch spec of one instance: what kiln-init runs, from the function's image config with
// the function's own settings laid over it.
#pragma once

#include <string>

#include "common/protocol/launch_spec.h"
#include "src/registry/function_config.h"

namespace kiln::kilnd::registry {

protocol::LaunchSpec make_launch_spec(const FunctionRecord& record, const std::string& instance_id);

}  // namespace kiln::kilnd::registry
