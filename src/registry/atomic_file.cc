// Atomic state-file writes (temp + fsync + rename + fsync dir) and durable removal.
#include "src/registry/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "common/io.h"
#include "common/unique_fd.h"

namespace kiln::kilnd::registry {
namespace {

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status fsync_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return errno_error("open " + dir);
  if (::fsync(fd.get()) != 0) return errno_error("fsync " + dir);
  return ok_status();
}

}  // namespace

Status write_file_atomic(const std::string& path, std::string_view content) {
  static std::atomic<std::uint64_t> counter{0};
  std::string tmp = path + "." + std::to_string(::getpid()) + "." +
                    std::to_string(counter.fetch_add(1)) + std::string(kTempSuffix);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return errno_error("create " + tmp);
  Status st = io::write_all(fd.get(), content, tmp);
  if (st.ok() && ::fsync(fd.get()) != 0) st = errno_error("fsync " + tmp);
  fd.reset();
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = errno_error("rename " + tmp);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return fsync_dir(dir_of(path));
}

Status remove_file_durable(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return ok_status();
    return errno_error("unlink " + path);
  }
  return fsync_dir(dir_of(path));
}

}  // namespace kiln::kilnd::registry
