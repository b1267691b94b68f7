// list_dir: fdopendir over a dup, so the stream and its fd are released together.
#include "rootfs-builder/unpack/dir_list.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <memory>

namespace kiln::rootfs {

namespace {
struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
}  // namespace

Result<std::vector<std::string>> list_dir(int dirfd) {
  int fd = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return errno_error("dup");
  std::unique_ptr<DIR, DirCloser> d(::fdopendir(fd));
  if (!d) {
    Error e = errno_error("fdopendir");
    ::close(fd);
    return e;
  }
  ::rewinddir(d.get());  // the dup shares the offset with dirfd
  std::vector<std::string> names;
  errno = 0;
  while (dirent* de = ::readdir(d.get())) {
    std::string n = de->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  if (errno != 0) return errno_error("readdir");
  return names;
}

}  // namespace kiln::rootfs
