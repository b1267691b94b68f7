// Durable removal of a state file (unlink + fsync of its directory).
#include "src/registry/atomic_file.h"

#include <unistd.h>

#include <cerrno>

namespace kiln::kilnd::registry {

Status remove_file_durable(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return ok_status();
    return errno_error("unlink " + path);
  }
  return io::sync_parent_dir(path);
}

}  // namespace kiln::kilnd::registry
