// Directory listing relative to an fd, with the DIR stream owned for the call only.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace kiln::rootfs {

// Names in the directory open at dirfd (without "." and ".."); dirfd stays the caller's.
Result<std::vector<std::string>> list_dir(int dirfd);

}  // namespace kiln::rootfs
