// Network namespace files: unshare on a short-lived thread, bind /proc/thread-self/ns/net onto
// <dir>/<name> (the way iproute2's `ip netns add` does, on a private mount point of our own).
#include "src/net/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <thread>
#include <utility>

#include "common/io.h"

namespace kiln::net {

namespace {

constexpr std::size_t kMaxNameLength = 200;

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength || name[0] == '.') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Makes `dir` a mount point of its own with private propagation: a namespace bind mount made
// below it then appears in no peer mount namespace (where it would pin the namespace), and an
// unmount here needs no peer to follow. Like ip-netns, bind the directory onto itself only when
// it is not a mount point yet (changing propagation on a non-mount point is EINVAL).
// Serialized: two first-time binds would stack, and a namespace mounted on a file under the
// lower one is not seen through the upper one.
Status make_private_mount_point(const std::string& dir) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (::mount("", dir.c_str(), "none", MS_PRIVATE, nullptr) == 0) return ok_status();
  if (errno != EINVAL) return errno_error("making " + dir + " a private mount");
  if (::mount(dir.c_str(), dir.c_str(), "none", MS_BIND, nullptr) != 0) {
    return errno_error("bind-mounting " + dir + " onto itself");
  }
  if (::mount("", dir.c_str(), "none", MS_PRIVATE, nullptr) != 0) {
    return errno_error("making " + dir + " a private mount");
  }
  return ok_status();
}

}  // namespace

Status release_netns_dir(const std::string& dir) {
  if (::umount2(dir.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return errno_error("unmounting " + dir);
  }
  return ok_status();
}

namespace {

// Runs `fn` on a fresh thread and waits for it (namespace changes stay on that thread).
Status on_own_thread(const std::function<Status()>& fn) {
  Status status;
  std::thread worker([&] { status = fn(); });
  worker.join();
  return status;
}

}  // namespace

Result<NetNamespace> NetNamespace::create(const std::string& dir, const std::string& name) {
  if (!valid_name(name)) return make_error("network namespace name '" + name + "' is not valid");
  KILN_TRY(io::make_dirs(dir, 0700));
  KILN_TRY(make_private_mount_point(dir));
  std::string path = dir + "/" + name;
  {
    UniqueFd file(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400));
    if (!file) return errno_error("creating " + path);
  }
  NetNamespace ns(path);  // from here on, a failure unlinks the file again
  KILN_TRY(on_own_thread([&]() -> Status {
    if (::unshare(CLONE_NEWNET) != 0) return errno_error("unshare(CLONE_NEWNET)");
    if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
      return errno_error("bind-mounting the new network namespace on " + path);
    }
    return ok_status();
  }));
  return ns;
}

NetNamespace::~NetNamespace() { (void)remove(); }

NetNamespace::NetNamespace(NetNamespace&& o) noexcept : path_(std::exchange(o.path_, std::string())) {}

NetNamespace& NetNamespace::operator=(NetNamespace&& o) noexcept {
  if (this != &o) {
    (void)remove();
    path_ = std::exchange(o.path_, std::string());
  }
  return *this;
}

Status NetNamespace::remove() {
  if (path_.empty()) return ok_status();
  Status status = remove_netns(path_);
  path_.clear();
  return status;
}

std::string NetNamespace::release() { return std::exchange(path_, std::string()); }

Status remove_netns(const std::string& path) {
  // EINVAL: not a mount point (creation failed before the mount, or already unmounted).
  if (::umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL && errno != ENOENT) {
    return errno_error("unmounting " + path);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error("removing " + path);
  return ok_status();
}

Result<UniqueFd> open_netns(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("opening network namespace " + path);
  return fd;
}

Status run_in_netns(const std::string& path, const std::function<Status()>& fn) {
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, open_netns(path));
  return on_own_thread([&]() -> Status {
    if (::setns(fd.get(), CLONE_NEWNET) != 0) return errno_error("joining network namespace " + path);
    return fn();
  });
}

}  // namespace kiln::net
