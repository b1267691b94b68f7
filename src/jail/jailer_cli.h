// kiln-jailer's command line: Firecracker's jailer flags (docs/jailer.md "Jailer Usage") plus
// two kiln additions (--bind to place files, --cleanup to remove a daemonized VM's jail).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "src/jail/jail_spec.h"

namespace kiln::jail {

struct JailerCommand {
  JailSpec spec;
  std::vector<std::string> vmm_args;  // "--id=<id>" (as Firecracker's jailer passes it), then all after "--"
  bool help = false;
  bool cleanup = false;  // --cleanup: remove the jail of --id/--exec-file and exit
};

// `args` without argv[0]. Errors are usage errors (exit status 2).
Result<JailerCommand> parse_jailer_args(const std::vector<std::string>& args);
std::string jailer_usage();

}  // namespace kiln::jail
