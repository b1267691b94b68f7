// A directory read as if it were "/": files are opened with openat2(RESOLVE_IN_ROOT), so
// symlinks inside an OCI layout or an unpacked archive can never reach the host's files.
#pragma once

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace kiln::rootfs {

class LocalDir {
 public:
  static Result<LocalDir> open(const std::string& path);

  // A regular file below the directory, read-only.
  Result<UniqueFd> open_file(const std::string& rel) const;
  Result<std::string> read(const std::string& rel, size_t max_size) const;
  const std::string& path() const { return path_; }

 private:
  LocalDir(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

}  // namespace kiln::rootfs
