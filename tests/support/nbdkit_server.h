// Test support: an nbdkit (Debian's `nbdkit`) serving one plugin on a Unix socket in a temp
// directory, started with an argv and ready once its pid file appears (inotify, with a deadline).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/spawn.h"
#include "common/unique_fd.h"

namespace kiln::testing {

inline constexpr const char* kNbdkit = "/usr/bin/nbdkit";

inline bool nbdkit_available() { return ::access(kNbdkit, X_OK) == 0; }

class NbdkitServer {
 public:
  // `args`: filters, plugin and its parameters, e.g. {"--filter=delay", "memory", "64M",
  // "rdelay=2"}.
  static Result<std::unique_ptr<NbdkitServer>> start(const std::string& dir, const std::vector<std::string>& args,
                                                     bool read_only = false) {
    auto s = std::unique_ptr<NbdkitServer>(new NbdkitServer(dir));
    ::unlink(s->pidfile_.c_str());
    ::unlink(s->socket_.c_str());  // a previous server's, in this test's own directory
    UniqueFd in(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!in) return errno_error("inotify_init1");
    if (::inotify_add_watch(in.get(), dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
      return errno_error("inotify_add_watch");
    std::vector<std::string> argv{"nbdkit", "-f", "--exit-with-parent", "-U", s->socket_, "-P", s->pidfile_};
    if (read_only) argv.push_back("-r");
    argv.insert(argv.end(), args.begin(), args.end());
    SpawnPlan plan;
    KILN_ASSIGN_OR_RETURN(s->pid_, plan.spawn(kNbdkit, argv));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!s->pidfile_written()) {
      int status = 0;
      if (::waitpid(s->pid_, &status, WNOHANG) == s->pid_) {
        s->pid_ = -1;
        return make_error("nbdkit exited before it was ready");
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return make_error("nbdkit not ready within 20 s");
      pollfd p{in.get(), POLLIN, 0};
      (void)::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 200)));  // also notices an exit
      char buf[4096];
      while (::read(in.get(), buf, sizeof buf) > 0) {
      }
    }
    return s;
  }
  ~NbdkitServer() { kill(SIGTERM); }

  const std::string& socket() const { return socket_; }
  std::string uri() const { return "nbd+unix:///?socket=" + socket_; }
  // Ends the server (SIGKILL: as if it crashed) and reaps it.
  void kill(int sig = SIGKILL) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  explicit NbdkitServer(const std::string& dir) : socket_(dir + "/nbd.sock"), pidfile_(dir + "/nbdkit.pid") {}
  bool pidfile_written() const {
    UniqueFd fd(::open(pidfile_.c_str(), O_RDONLY | O_CLOEXEC));
    char c = 0;
    return fd && ::read(fd.get(), &c, 1) == 1;
  }

  std::string socket_;
  std::string pidfile_;
  pid_t pid_ = -1;
};

}  // namespace kiln::testing
