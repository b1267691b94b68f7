// VmmProcess: one kiln-vmm process, started by the strategy its backend chose once
// (VmmLauncher): plain (posix_spawn, files by their host paths) or jailed (jailed_vmm.h: src/jail,
// files by jail paths). Watched for its exit through a pidfd, killed and reaped; the strategy
// says where the VMM's files are as kilnd and as the VMM name them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "src/pool/snapshot_store.h"
#include "src/pool/vm_backend.h"
#include "src/pool/vmm_api_client.h"
#include "src/pool/vmm_backend_options.h"

namespace kiln::kilnd::pool {

struct VmmPaths {
  std::string api_sock, vsock;  // host paths: kilnd's API calls, hybrid-vsock connects and listeners
  // As kiln-vmm names them in its API configuration (the same, or jail paths in a jail).
  std::string vmm_api_sock, vmm_vsock, kernel, initrd, rootfs;
  std::string tap;  // the guest NIC's TAP (host_dev_name) as kiln-vmm opens it; "" = no NIC
};

class VmmProcess {
 public:
  // `log_path`: the VMM's stdout/stderr; `pid_path`: where its pid is written (reap_stale).
  VmmProcess(asio::io_context& io, VmmPaths paths, std::string log_path, std::string pid_path);
  virtual ~VmmProcess();  // kills and reaps a process still running; release() is the owner's call
  VmmProcess(const VmmProcess&) = delete;
  VmmProcess& operator=(const VmmProcess&) = delete;

  const VmmPaths& paths() const { return paths_; }
  const std::string& log_path() const { return log_path_; }

  // Starts kiln-vmm, with `snapshot` (the store's files; null: none) readable to it. `dropped`
  // is asked once the process exists: true kills it again (its instance went away meanwhile).
  virtual asio::awaitable<Status> spawn(const SnapshotPaths* snapshot, std::function<bool()> dropped) = 0;
  // `snapshot` as the VMM names it for PUT /snapshot/load.
  virtual VmmSnapshotFiles vmm_view(const SnapshotPaths& snapshot) const = 0;
  // Where PUT /snapshot/create writes (made writable to the VMM) for a snapshot bound for `tmp`
  // (the store's temporary directory) ...
  virtual Result<VmmSnapshotFiles> snapshot_target(const SnapshotPaths& tmp) = 0;
  // ... then, when `written`, moved into `tmp`; leftovers are removed either way.
  virtual Status collect_snapshot(const SnapshotPaths& tmp, bool written) = 0;
  // A Unix socket kilnd listens on and kiln-vmm connects to (jailed: handed to the VMM's user).
  virtual Status share_socket(const std::string& path) = 0;
  // Releases what the strategy holds beyond the process (the jail) once it is gone; idempotent.
  virtual Status release() = 0;
  // After spawn(): a line on the instance's own network for its log ("network ready in 3.2 ms
  // ..."), nullopt when it has none.
  virtual std::optional<std::string> network_summary() const { return std::nullopt; }

  // Called once, on the loop, when the process ended on its own (reaped): "exited with status 1".
  void on_exit(std::function<void(const std::string& how)> f) { on_exit_ = std::move(f); }
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  void kill();  // SIGKILL; the exit watch reaps it
  void kill_and_reap();  // SIGKILL and wait for it (no on_exit)

 protected:
  // The process exists: record its pid (pid file) and watch `pidfd` (taken over) for its exit.
  void watch(pid_t pid, int pidfd);
  void set_pid(pid_t pid) { pid_ = pid; }
  asio::io_context& io_;
  VmmPaths paths_;
  std::string log_path_, pid_path_;

 private:
  void reap();
  pid_t pid_ = -1;
  std::unique_ptr<asio::posix::stream_descriptor> pidfd_;
  std::function<void(const std::string&)> on_exit_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // the exit watch checks it
};

// The strategy, chosen once per backend from VmmBackendOptions::jail.
class VmmLauncher {
 public:
  virtual ~VmmLauncher() = default;
  // The VMM for `spec` (its sequence number `index`), its log and pid file in `run_dir`.
  virtual std::unique_ptr<VmmProcess> make(const InstanceSpec& spec, std::uint64_t index,
                                           const std::string& run_dir) const = 0;
  // Mixed into snapshot keys: a jailed VMM's snapshot names jail paths, a plain one host paths.
  virtual std::string snapshot_flavor() const = 0;
};

std::unique_ptr<VmmLauncher> make_vmm_launcher(asio::io_context& io, const VmmBackendOptions& options);

// "exited with status N" / "killed by signal N" from a waitpid status.
std::string exit_text(int status);

}  // namespace kiln::kilnd::pool
