// kiln-init's command line when it is not PID 1: `--no-boot` (the agent loop on Unix sockets or
// vsock, for development and tests) and `--write-spec FILE` (a config drive from flags).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/protocol/launch_spec.h"
#include "common/result.h"
#include "guest-agent/agent/endpoint.h"

namespace kiln::agent {

enum class InitMode { kHelp, kNoBoot, kWriteSpec };

struct InitOptions {
  InitMode mode = InitMode::kHelp;
  // --no-boot: endpoints given (the agent's defaults otherwise) and a launch-spec file.
  std::optional<Endpoint> control, proxy, events;
  std::string spec_file;
  // --write-spec: the output file and the spec built from the flags and the command after "--".
  std::string out_file;
  protocol::LaunchSpec spec;
};

// `args` without argv[0]. Every error is a usage error (exit 2).
Result<InitOptions> parse_init_args(const std::vector<std::string>& args);
std::string init_usage();

}  // namespace kiln::agent
