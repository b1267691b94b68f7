// LocalDir: openat2-confined file access for local image sources.
#include "rootfs-builder/source/local_dir.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/io.h"

namespace kiln::rootfs {

Result<LocalDir> LocalDir::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error("open " + path);
  return LocalDir(path, UniqueFd(fd));
}

Result<UniqueFd> LocalDir::open_file(const std::string& rel) const {
  struct open_how how = {};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long r;
  do {
    r = ::syscall(SYS_openat2, fd_.get(), rel.c_str(), &how, sizeof how);
  } while (r < 0 && errno == EAGAIN);
  if (r < 0) return errno_error("open " + path_ + "/" + rel);
  UniqueFd f(static_cast<int>(r));
  struct stat st;
  if (::fstat(f.get(), &st) != 0) return errno_error("stat " + rel);
  if (!S_ISREG(st.st_mode)) return make_error(path_ + "/" + rel + " is not a regular file");
  return f;
}

Result<std::string> LocalDir::read(const std::string& rel, size_t max_size) const {
  KILN_ASSIGN_OR_RETURN(UniqueFd f, open_file(rel));
  return io::read_fd(f.get(), max_size, path_ + "/" + rel);
}

}  // namespace kiln::rootfs
