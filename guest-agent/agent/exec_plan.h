// ExecPlan: the exact execve() arguments for the launch spec: argv, the environment with the
// defaults a container runtime adds (PATH, HOME, HOSTNAME), and the PATH-resolved program.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/protocol/launch_spec.h"
#include "common/result.h"
#include "guest-agent/agent/user.h"

namespace kiln::agent {

inline constexpr const char* kDefaultPath =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Whether the command runs inside the platform boundary (agent/boundary.h: own PID and mount
// namespaces). kAuto: when the agent is PID 1 (a VM, or the host-process tests' namespace),
// so --no-boot runs on a developer's machine keep working unprivileged.
enum class Isolation { kAuto, kOff, kOn };

struct ExecPlan {
  std::string program;  // absolute or cwd-relative path handed to execve
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string working_dir;
  Credentials creds;
  Isolation isolation = Isolation::kAuto;
};

// is_executable(path) says whether a candidate file exists and is executable (injected so the
// PATH search is testable without a filesystem).
Result<ExecPlan> build_exec_plan(const protocol::LaunchSpec& spec, const Credentials& creds,
                                 const std::function<bool(const std::string&)>& is_executable);

// The real probe: a regular file with an execute bit.
bool is_executable_file(const std::string& path);

}  // namespace kiln::agent
