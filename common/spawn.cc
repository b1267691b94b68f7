// SpawnPlan (common/spawn.h): posix_spawn with owned file actions and attributes.
#include "common/spawn.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>

namespace kiln {

std::string find_in_path(const std::string& name) {
  const char* env = std::getenv("PATH");
  const std::string dirs = env && *env ? env : "/usr/bin:/bin";
  for (std::size_t pos = 0; pos <= dirs.size();) {
    std::size_t next = dirs.find(':', pos);
    if (next == std::string::npos) next = dirs.size();
    const std::string dir = dirs.substr(pos, next - pos);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    pos = next + 1;
  }
  return "";
}

SpawnPlan::SpawnPlan() {
  note(posix_spawn_file_actions_init(&actions_));
  note(posix_spawnattr_init(&attr_));
}

SpawnPlan::~SpawnPlan() {
  posix_spawn_file_actions_destroy(&actions_);
  posix_spawnattr_destroy(&attr_);
}

void SpawnPlan::note(int rc) {
  if (rc != 0 && error_ == 0) error_ = rc;
}

SpawnPlan& SpawnPlan::open(int child_fd, const std::string& path, int flags, mode_t mode) {
  note(posix_spawn_file_actions_addopen(&actions_, child_fd, path.c_str(), flags, mode));
  return *this;
}

SpawnPlan& SpawnPlan::dup2(int fd, int child_fd) {
  note(posix_spawn_file_actions_adddup2(&actions_, fd, child_fd));
  return *this;
}

SpawnPlan& SpawnPlan::close_from(int lowest_fd) {
  note(posix_spawn_file_actions_addclosefrom_np(&actions_, lowest_fd));
  return *this;
}

SpawnPlan& SpawnPlan::new_process_group() {
  note(posix_spawnattr_setpgroup(&attr_, 0));
  flags_ |= POSIX_SPAWN_SETPGROUP;
  return *this;
}

SpawnPlan& SpawnPlan::clear_signal_mask() {
  sigset_t none;
  sigemptyset(&none);
  note(posix_spawnattr_setsigmask(&attr_, &none));
  flags_ |= POSIX_SPAWN_SETSIGMASK;
  return *this;
}

Result<pid_t> SpawnPlan::spawn(const std::string& program, const std::vector<std::string>& argv, char* const* envp) {
  if (error_ == 0) note(posix_spawnattr_setflags(&attr_, flags_));
  if (error_ != 0) return errno_error("spawn " + program, error_);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));  // posix_spawn does not write
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, program.c_str(), &actions_, &attr_, args.data(), envp ? envp : ::environ);
  if (rc != 0) return errno_error("spawn " + program, rc);
  return pid;
}

}  // namespace kiln
