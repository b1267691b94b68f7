// Supervisor: starts the function's command in its own session as the requested user (inside
// the platform boundary, agent/boundary.h, when the plan asks for it),
// turns its stdout/stderr into timestamped lines, reaps every child (PID 1 duty) and
// reports the main process's exit once its output is drained.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "common/protocol/messages.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "common/event_loop/event_loop.h"
#include "guest-agent/agent/boundary.h"
#include "guest-agent/agent/exec_plan.h"
#include "guest-agent/agent/line_splitter.h"

namespace kiln::agent {

struct ExitInfo {
  pid_t pid = 0;
  bool signaled = false;
  int code = 0;  // exit code or signal number
};

class Supervisor {
 public:
  struct Callbacks {
    std::function<void(protocol::LogStream, std::uint64_t ts_ns, std::string_view, bool partial)> line;
    std::function<void(const ExitInfo&)> exited;
  };
  // drain_ms: after the main process exits, how long to wait for its pipes to reach EOF
  // (a daemonised grandchild may hold them open) before reporting the exit anyway.
  Supervisor(EventLoop& loop, Callbacks cb, std::uint64_t drain_ms = 1000);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // fork + setsid + credentials + chdir + execve. Signals blocked by the agent (for its
  // signalfd) are unblocked in the child. Exec failures appear on the child's stderr and as
  // exit code 127 (not found) or 126 (other). Under the boundary the returned pid (and
  // ExitInfo::pid) is the namespace init's, the command's parent; the exit reported is the
  // command's own.
  Result<pid_t> start(const ExecPlan& plan);

  // Reaps every exited child (call on SIGCHLD). Non-main children are just collected.
  void reap();
  // Reads what the command has written to its pipes so far, now (its lines go out through
  // Callbacks::line before this returns), rather than at the loop's next turn.
  void drain();
  // Sends sig to the command's whole process group (its session).
  void signal_group(int sig);

  bool running() const { return pid_ > 0 && !main_exited_; }
  bool reported() const { return reported_; }
  pid_t pid() const { return pid_; }
  const ExitInfo& exit_info() const { return exit_; }

 private:
  struct Pipe;
  void on_pipe(Pipe& p);
  void close_pipe(Pipe& p);
  void maybe_report();

  EventLoop& loop_;
  Callbacks cb_;
  std::uint64_t drain_ms_;
  pid_t pid_ = -1;
  bool isolated_ = false;
  UniqueFd status_r_;  // the namespace init writes the command's wait status here
  bool main_exited_ = false;
  bool reported_ = false;
  ExitInfo exit_;
  std::unique_ptr<Pipe> out_;
  std::unique_ptr<Pipe> err_;
  EventLoop::TimerId drain_timer_ = 0;
};

}  // namespace kiln::agent
