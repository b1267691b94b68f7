// Child processes and files for tests (see process.h).
#include "tests/support/process.h"

#include <fcntl.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/unique_fd.h"

extern char** environ;

namespace kiln::testing {

pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path) {
  if (argv.empty()) return -1;
  std::vector<char*> a;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (!out_path.empty()) {
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  }
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, a[0], &fa, nullptr, a.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

int in_new_netns(int (*fn)(), int timeout_ms) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (::unshare(CLONE_NEWNET) != 0) ::_exit(kUnshareFailed);
    ::_exit(fn());
  }
  return wait_exit(pid, timeout_ms);
}

int wait_exit(pid_t pid, int timeout_ms) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd) {
    pollfd p{pidfd.get(), POLLIN, 0};
    int n = 0;
    do {
      n = ::poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return kTimedOut;
    }
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run(const std::vector<std::string>& argv, const std::string& out_path, int timeout_ms) {
  pid_t pid = spawn(argv, out_path);
  return pid < 0 ? -1 : wait_exit(pid, timeout_ms);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::uint64_t monotonic_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

Result<std::string> read_until_eof(int fd, int timeout_ms, const std::string& what) {
  std::string out;
  char buf[4096];
  const std::uint64_t deadline = monotonic_ms() + static_cast<std::uint64_t>(timeout_ms);
  while (true) {
    pollfd p{fd, POLLIN, 0};
    const std::uint64_t now = monotonic_ms();
    const int left = static_cast<int>(deadline > now ? deadline - now : 0);
    if (::poll(&p, 1, left) != 1) return make_error(what + " timed out");
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0) return errno_error("recv " + what);
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace kiln::testing
