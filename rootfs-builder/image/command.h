// Runs a helper program (mkfs.ext4, ...) from an argv vector with posix_spawn: no shell.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace kiln::rootfs {

// Runs argv[0] (searched in PATH, then /usr/sbin and /sbin) with the current environment plus
// extra_env ("NAME=value"). Fails with its captured output when it exits non-zero.
Result<std::string> run_command(const std::vector<std::string>& argv,
                                const std::vector<std::string>& extra_env = {});

}  // namespace kiln::rootfs
