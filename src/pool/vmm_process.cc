// The VMM process's common part (exit watch, kill, reap) and the plain strategy: posix_spawn
// with every file named by its host path.
#include "src/pool/vmm_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "common/spawn.h"
#include "src/lazy/nbd_uri.h"
#include "src/pool/jailed_vmm.h"
#include "src/pool/small_files.h"

namespace kiln::kilnd::pool {

std::string exit_text(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + std::to_string(WTERMSIG(status));
  return "ended";
}

VmmProcess::VmmProcess(asio::io_context& io, VmmPaths paths, std::string log_path, std::string pid_path)
    : io_(io), paths_(std::move(paths)), log_path_(std::move(log_path)), pid_path_(std::move(pid_path)) {}

VmmProcess::~VmmProcess() {
  alive_.reset();
  kill_and_reap();
}

void VmmProcess::watch(pid_t pid, int pidfd) {
  pid_ = pid;
  write_small(pid_path_, std::to_string(pid) + "\n");
  pidfd_ = std::make_unique<asio::posix::stream_descriptor>(io_, pidfd);
  pidfd_->async_wait(asio::posix::stream_descriptor::wait_read,
                     [this, alive = std::weak_ptr<bool>(alive_)](const beast::error_code& ec) {
                       if (!ec && !alive.expired()) reap();
                     });
}

void VmmProcess::reap() {
  if (pid_ <= 0) return;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return;
  pid_ = -1;
  if (on_exit_) on_exit_(exit_text(status));
}

void VmmProcess::kill() {
  if (pid_ > 0) ::kill(pid_, SIGKILL);
}

void VmmProcess::kill_and_reap() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  beast::error_code ec;
  if (pidfd_) pidfd_->close(ec);  // nothing left to watch
}

namespace {

class PlainVmmProcess : public VmmProcess {
 public:
  PlainVmmProcess(asio::io_context& io, const VmmBackendOptions& o, const InstanceSpec& spec, const std::string& run_dir)
      : VmmProcess(io, plain_paths(o, spec, run_dir), run_dir + "/vmm.log", run_dir + "/vmm.pid"), o_(o),
        id_(spec.instance_id), wants_network_(spec.network.has_value()) {}

  asio::awaitable<Status> spawn(const SnapshotPaths*, std::function<bool()>) override {
    // An instance network is a namespace the jail joins: never silently dropped.
    if (wants_network_) co_return make_error("instance networks need the jail (kilnd --jail on)");
    std::vector<std::string> argv = {o_.vmm_path, "--api-sock", paths_.api_sock, "--id", id_};
    argv.insert(argv.end(), o_.extra_vmm_args.begin(), o_.extra_vmm_args.end());
    SpawnPlan plan;
    plan.open(0, "/dev/null", O_RDONLY)
        .open(1, log_path_, O_WRONLY | O_CREAT | O_APPEND, 0600)
        .dup2(1, 2)
        .close_from(3)  // Asio's sockets are not close-on-exec: the VMM must not inherit kilnd's listeners
        .new_process_group()  // a ^C at kilnd's terminal is kilnd's to handle
        .clear_signal_mask();
    Result<pid_t> spawned = plan.spawn(o_.vmm_path, argv);
    if (!spawned.ok()) co_return spawned.error();
    const pid_t pid = *spawned;
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
      set_pid(pid);  // killed and reaped with the instance
      write_small(pid_path_, std::to_string(pid) + "\n");
      co_return errno_error("pidfd_open");
    }
    watch(pid, pidfd);
    co_return ok_status();
  }

  VmmSnapshotFiles vmm_view(const SnapshotPaths& snapshot) const override { return {snapshot.state, snapshot.mem}; }
  Result<VmmSnapshotFiles> snapshot_target(const SnapshotPaths& tmp) override {
    return VmmSnapshotFiles{tmp.state, tmp.mem};
  }
  Status collect_snapshot(const SnapshotPaths&, bool) override { return ok_status(); }  // written in place
  Status share_socket(const std::string&) override { return ok_status(); }  // same user
  Status release() override { return ok_status(); }

 private:
  static VmmPaths plain_paths(const VmmBackendOptions& o, const InstanceSpec& spec, const std::string& run_dir) {
    VmmPaths p;
    p.api_sock = p.vmm_api_sock = run_dir + "/api.sock";
    p.vsock = p.vmm_vsock = run_dir + "/vsock.sock";
    p.kernel = o.kernel_path;
    p.initrd = o.initrd_path;
    p.rootfs = spec.rootfs_nbd_socket.empty() ? spec.rootfs_path : lazy::nbd_drive_uri(spec.rootfs_nbd_socket);
    return p;
  }
  VmmBackendOptions o_;
  std::string id_;
  bool wants_network_ = false;
};

class PlainLauncher : public VmmLauncher {
 public:
  PlainLauncher(asio::io_context& io, const VmmBackendOptions& o) : io_(io), o_(o) {}
  std::unique_ptr<VmmProcess> make(const InstanceSpec& spec, std::uint64_t, const std::string& run_dir) const override {
    return std::make_unique<PlainVmmProcess>(io_, o_, spec, run_dir);
  }
  std::string snapshot_flavor() const override { return ""; }

 private:
  asio::io_context& io_;
  VmmBackendOptions o_;
};

}  // namespace

std::unique_ptr<VmmLauncher> make_vmm_launcher(asio::io_context& io, const VmmBackendOptions& options) {
  if (options.jail) return make_jailed_launcher(io, options);
  return std::make_unique<PlainLauncher>(io, options);
}

}  // namespace kiln::kilnd::pool
