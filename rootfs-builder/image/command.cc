// Runs a helper program (common/spawn.h) capturing stdout+stderr (capped) for error messages.
#include "rootfs-builder/image/command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "common/spawn.h"
#include "common/unique_fd.h"

extern char** environ;

namespace kiln::rootfs {

namespace {

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (!dir.empty()) {
      std::string cand = dir + "/" + name;
      if (::access(cand.c_str(), X_OK) == 0) return cand;
    }
    start = end + 1;
  }
  return {};
}

}  // namespace

Result<std::string> run_command(const std::vector<std::string>& argv,
                                const std::vector<std::string>& extra_env) {
  if (argv.empty()) return make_error("run_command: empty argv");
  std::string prog = find_program(argv[0]);
  if (prog.empty()) return make_error(argv[0] + " not found in PATH");
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return errno_error("pipe");
  UniqueFd rd(pipefd[0]), wr(pipefd[1]);

  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    bool overridden = false;
    for (const auto& x : extra_env) {
      size_t eq = x.find('=');
      if (kv.substr(0, eq + 1) == std::string_view(x).substr(0, eq + 1)) overridden = true;
    }
    if (!overridden) env_store.emplace_back(kv);
  }
  for (const auto& x : extra_env) env_store.push_back(x);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  SpawnPlan plan;
  plan.open(0, "/dev/null", O_RDONLY).dup2(wr.get(), 1).dup2(wr.get(), 2);
  KILN_ASSIGN_OR_RETURN(pid_t pid, plan.spawn(prog, argv, envp.data()));
  wr.reset();
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < (64 << 10)) out.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return errno_error("waitpid");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                        : "signal " + std::to_string(WTERMSIG(status));
    return make_error(argv[0] + " failed (" + how + "): " + out);
  }
  return out;
}

}  // namespace kiln::rootfs
