// The launch spec of one instance: what kiln-init runs, from the function's image config with
// the function's own settings laid over it.
#pragma once

#include <string>
#include <vector>

#include "common/protocol/launch_spec.h"
#include "src/registry/function_config.h"

namespace kiln::kilnd::registry {

// The command an instance runs, Kubernetes semantics: the function's `command` replaces the
// image's Entrypoint and drops its Cmd; `args` replaces the Cmd. argv = entrypoint + cmd.
struct ResolvedCommand {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
};
ResolvedCommand resolve_command(const FunctionConfig& config, const ImageStatus& image);

protocol::LaunchSpec make_launch_spec(const FunctionRecord& record, const std::string& instance_id);

}  // namespace kiln::kilnd::registry
