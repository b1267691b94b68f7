// Starting a child process with posix_spawn(3): the file actions and attributes in one RAII
// owner, errors as values. For the few places kiln runs a program (kiln-vmm from kilnd, mkfs
// from kiln-rootfs, the dynamic loader's --list from the jail code): argv vectors, never a shell.
#pragma once

#include <spawn.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.h"

namespace kiln {

// posix_spawn does not search $PATH: the first executable `name` in $PATH's directories (else
// /usr/bin:/bin), or "" when there is none.
std::string find_in_path(const std::string& name);

class SpawnPlan {
 public:
  SpawnPlan();
  ~SpawnPlan();
  SpawnPlan(const SpawnPlan&) = delete;
  SpawnPlan& operator=(const SpawnPlan&) = delete;

  // File actions, carried out in the child in the order given.
  SpawnPlan& open(int child_fd, const std::string& path, int flags, mode_t mode = 0);
  SpawnPlan& dup2(int fd, int child_fd);
  // Closes every fd from `lowest_fd` up (for a parent whose fds are not all close-on-exec); in
  // order like the rest, so it goes after the dup2s of fds it would close.
  SpawnPlan& close_from(int lowest_fd);

  // Attributes.
  SpawnPlan& new_process_group();  // the child leads a process group of its own
  SpawnPlan& clear_signal_mask();  // the child starts with no signal blocked

  // Runs `program` (a path: no $PATH search) with `argv` (argv[0] included) and `envp` (nullptr:
  // this process's environment). A failure to set up the plan, or to start the program (exec
  // errors included), is "spawn PROGRAM: REASON" with its errno.
  Result<pid_t> spawn(const std::string& program, const std::vector<std::string>& argv,
                      char* const* envp = nullptr);

 private:
  void note(int rc);

  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
  short flags_ = 0;
  int error_ = 0;  // the first failure while building the plan
};

}  // namespace kiln
