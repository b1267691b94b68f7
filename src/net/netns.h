// Named network namespaces as `ip netns add` makes them: an nsfs bind mount on an empty file in a
// directory of kilnd's, and running code inside one on a thread of its own.
#pragma once

#include <functional>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace kiln::net {

// A created network namespace, alive as long as its file stays mounted (or a process or fd holds
// it). Removes it on destruction unless released.
class NetNamespace {
 public:
  // Creates <dir>/<name> (dir is created 0700 when missing and made a private mount point so the
  // namespace mounts under it propagate to no other mount namespace). `name`: 1-200 characters of
  // [A-Za-z0-9._-], not starting with '.'.
  static Result<NetNamespace> create(const std::string& dir, const std::string& name);

  NetNamespace() = default;
  ~NetNamespace();
  NetNamespace(NetNamespace&& o) noexcept;
  NetNamespace& operator=(NetNamespace&& o) noexcept;
  NetNamespace(const NetNamespace&) = delete;
  NetNamespace& operator=(const NetNamespace&) = delete;

  const std::string& path() const { return path_; }
  // Unmounts and unlinks now (idempotent).
  Status remove();
  // Gives up ownership: the namespace outlives this object (returns its path).
  std::string release();

 private:
  explicit NetNamespace(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Undoes what NetNamespace::create did to `dir` (its bind onto itself) once no namespace of
// it is needed: unmounts it (MNT_DETACH); a dir that is no mount point is fine.
Status release_netns_dir(const std::string& dir);

// Unmounts (MNT_DETACH) and unlinks a namespace file; a missing or unmounted file is fine.
// Dropping the last reference destroys the namespace and every link in it.
Status remove_netns(const std::string& path);

// An fd of the namespace mounted at `path` (for setns or a link's IFLA_NET_NS_FD).
Result<UniqueFd> open_netns(const std::string& path);

// Runs `fn` on a new thread that first joins the namespace at `path` (setns(CLONE_NEWNET)
// changes only the calling thread, so the caller's own thread never moves) and returns its Status.
Status run_in_netns(const std::string& path, const std::function<Status()>& fn);

}  // namespace kiln::net
