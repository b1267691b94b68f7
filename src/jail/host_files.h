// Small host-file helpers of the jail: whole-file reads and writes with errors as values, and
// the mount table (/proc/self/mounts) the cgroup and cleanup code read.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace kiln::jail {

// A host file the jail reads (/proc/self/mounts, cgroup files): io::read_file with this cap.
inline constexpr size_t kMaxHostFileBytes = 16 << 20;
Result<std::string> read_text_file(const std::string& path);
// One write(2) of `text` to an existing file (cgroup and proc files want a single write).
Status write_text_file(const std::string& path, const std::string& text);

struct MountEntry {
  std::string source;
  std::string target;  // octal escapes (\040 ...) decoded
  std::string fstype;
  std::vector<std::string> options;
};

// Parses the text of /proc/self/mounts (fstab format).
std::vector<MountEntry> parse_mounts(const std::string& text);

}  // namespace kiln::jail
