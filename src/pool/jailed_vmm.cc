// kiln-vmm in src/jail's jail: the jail's spec and paths, spawning it off the loop thread,
// snapshot files moved out of the jail, and leftover jails after a restart.
#include "src/pool/jailed_vmm.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <utility>

#include "common/unique_fd.h"
#include "src/jail/jail.h"
#include "src/lazy/nbd_uri.h"
#include "src/net/instance_networks.h"

namespace kiln::kilnd::pool {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Paths as a jailed kiln-vmm sees them (its "/" is the jail's root).
constexpr const char* kJailApiSock = "/api.sock";
constexpr const char* kJailVsock = "/vsock.sock";
constexpr const char* kJailKernel = "/vmlinux";
constexpr const char* kJailInitrd = "/initrd";
constexpr const char* kJailRootfs = "/rootfs.img";
constexpr const char* kJailRootfsSocket = "/rootfs.sock";  // a lazy root disk's NBD server
constexpr const char* kJailSnapState = "/snapshot/state";  // a snapshot to load, bound read-only
constexpr const char* kJailSnapMem = "/snapshot/mem";
constexpr const char* kJailSnapOutDir = "/snapshot-out";  // where PUT /snapshot/create writes

// Moves a file the jailed VMM wrote out of its root into kilnd's store and makes it kilnd's:
// it must be a plain file with one link (not a symlink or hard link the VMM planted), owned by
// kilnd afterwards and readable (not writable) by the VMMs that will load it.
// Across filesystems (the store on its own disk) it is copied and the original removed.
Status copy_vmm_file(const std::string& from, const std::string& to) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in) return errno_error("opening " + from);
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) return errno_error("stat " + from);
  if (!S_ISREG(st.st_mode) || st.st_nlink != 1) return make_error(from + " is not a plain file");
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out) return errno_error("creating " + to);
  for (off_t left = st.st_size; left > 0;) {
    // sendfile(2): file to file on any filesystems (copy_file_range refuses some across them).
    ssize_t n = ::sendfile(out.get(), in.get(), nullptr, static_cast<size_t>(std::min<off_t>(left, 1 << 30)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status err = n < 0 ? errno_error("copying " + from + " to " + to) : make_error(from + " shrank while copied");
      ::unlink(to.c_str());
      return err;
    }
    left -= n;
  }
  if (::unlink(from.c_str()) != 0) return errno_error("removing " + from);
  return ok_status();
}

Status take_vmm_file(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    if (errno != EXDEV) return errno_error("moving " + from + " to " + to);
    KILN_TRY(copy_vmm_file(from, to));
  }
  UniqueFd fd(::open(to.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return errno_error("opening " + to);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("stat " + to);
  if (!S_ISREG(st.st_mode) || st.st_nlink != 1) return make_error(to + " is not a plain file");
  if (::fchown(fd.get(), ::geteuid(), ::getegid()) != 0) return errno_error("chown " + to);
  if (::fchmod(fd.get(), 0444) != 0) return errno_error("chmod " + to);
  return ok_status();
}

// Removes an instance network on the spawner thread, the strand that builds them, so its
// netlink, nft and umount work stays off the loop. Should the pool end before it runs (kilnd
// shutting down), the unrun handler is destroyed and the network goes with it (RAII), there.
void remove_on_spawner(asio::thread_pool& spawner, std::shared_ptr<net::InstanceNetworks> networks,
                       std::optional<net::InstanceNetwork> network) {
  if (!network) return;
  struct Removal {
    std::shared_ptr<net::InstanceNetworks> networks;  // destroyed last: its address pool takes the slot back
    std::optional<net::InstanceNetwork> network;
  };
  asio::post(spawner, [r = Removal{std::move(networks), std::move(network)}]() mutable { r.network.reset(); });
}

class JailedVmmProcess : public VmmProcess {
 public:
  JailedVmmProcess(asio::io_context& io, std::shared_ptr<asio::thread_pool> spawner, const VmmBackendOptions& o,
                   const InstanceSpec& spec, std::uint64_t index, const std::string& run_dir)
      : VmmProcess(io, {}, run_dir + "/vmm.log", run_dir + "/vmm.pid"), spawner_(std::move(spawner)),
        extra_args_(o.extra_vmm_args), id_(spec.instance_id), jail_(vmm_jail_spec(o, spec, index)),
        networks_(o.networks), policy_(spec.network) {
    // kilnd reaches the VMM's sockets by their host paths under the jail's root.
    root_ = jail::chroot_dir(jail_);
    paths_.api_sock = root_ + kJailApiSock;
    paths_.vsock = root_ + kJailVsock;
    paths_.vmm_api_sock = kJailApiSock;
    paths_.vmm_vsock = kJailVsock;
    paths_.kernel = kJailKernel;
    paths_.initrd = o.initrd_path.empty() ? "" : kJailInitrd;
    paths_.rootfs = spec.rootfs_nbd_socket.empty() ? std::string(kJailRootfs) : lazy::nbd_drive_uri(kJailRootfsSocket);
    if (policy_) paths_.tap = net::kTapName;  // in the instance's own network namespace
  }
  ~JailedVmmProcess() override {
    kill_and_reap();
    (void)release();
  }

  // kiln-vmm in its jail (with the snapshot to load bound read-only). Building a jail (mounts,
  // cgroups, clone, exec) takes a while: it runs on the spawner thread.
  asio::awaitable<Status> spawn(const SnapshotPaths* snap, std::function<bool()> dropped) override {
    // The chroot base is kilnd's alone (0700): the VMMs never see host paths above their root.
    if (::mkdir(jail_.chroot_base_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      co_return errno_error("creating the jail base " + jail_.chroot_base_dir);
    }
    jail::JailSpec js = jail_;
    if (snap) {
      js.files.push_back({snap->state, kJailSnapState, true});
      js.files.push_back({snap->mem, kJailSnapMem, true});
    }
    auto log = std::make_shared<UniqueFd>(::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!*log) co_return errno_error("open " + log_path_);
    std::vector<std::string> args = {"--api-sock", paths_.vmm_api_sock, "--id", id_};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    struct Done {
      explicit Done(asio::io_context& io) : timer(io, Clock::time_point::max()) {}
      std::optional<Result<jail::JailedProcess>> result;
      std::optional<net::InstanceNetwork> network;
      asio::steady_timer timer;
    };
    if (policy_ && !networks_) co_return make_error("instance networks are off in this kilnd (--network off)");
    auto done = std::make_shared<Done>(io_);
    asio::post(*spawner_, [done, js, args, log, &io = io_, networks = networks_, policy = policy_]() mutable {
      // The instance's network first (its namespace is where the jail goes), then the jail.
      std::optional<net::InstanceNetwork> network;
      Result<jail::JailedProcess> r = make_error("not spawned");
      if (policy) {
        auto made = networks->create(js.id, js.uid, js.gid, *policy);
        if (made.ok()) {
          network.emplace(std::move(made.value()));
          js.netns = network->plumbing.netns_path();
          js.dev_net_tun = true;
        } else {
          r = made.error().wrap("instance network");
        }
      }
      if (!policy || network) r = jail::spawn(js, args, jail::Stdio{-1, log->get(), log->get()});
      asio::post(io, [done, r = std::move(r), network = std::move(network)]() mutable {
        done->result.emplace(std::move(r));
        done->network = std::move(network);
        done->timer.cancel();
      });
    });
    beast::error_code ec;
    while (!done->result) co_await done->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    Result<jail::JailedProcess>& vm = *done->result;
    if (!vm.ok()) {
      remove_on_spawner(*spawner_, networks_, std::move(done->network));
      co_return vm.error();
    }
    network_ = std::move(done->network);
    if (dropped()) {
      // Dropped while the jail was being built: nothing may outlive the instance.
      ::kill(vm->pid, SIGKILL);
      while (::waitpid(vm->pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      (void)jail::cleanup(js);
      remove_on_spawner(*spawner_, networks_, std::exchange(network_, std::nullopt));
      co_return make_error("instance dropped while its kiln-vmm started");
    }
    jail_live_ = true;
    watch(vm->pid, vm->pidfd.release());
    co_return ok_status();
  }

  VmmSnapshotFiles vmm_view(const SnapshotPaths&) const override { return {kJailSnapState, kJailSnapMem}; }

  std::optional<std::string> network_summary() const override {
    if (!network_) return std::nullopt;
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.1f", std::chrono::duration<double, std::milli>(network_->setup_duration).count());
    return std::string("network ready in ") + ms + " ms (namespace, TAP, veth " + network_->plumbing.host_link_name() +
           " " + protocol::format_ip_prefix(network_->plumbing.host_end()) + ", egress rules)";
  }

  // A directory in the jail's root that only the VMM's user (and kilnd) can write.
  Result<VmmSnapshotFiles> snapshot_target(const SnapshotPaths&) override {
    const std::string path = root_ + kJailSnapOutDir;
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("mkdir " + path);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return make_error(path + " is not a directory");
    if (::chown(path.c_str(), jail_.uid, jail_.gid) != 0) return errno_error("chown " + path);
    return VmmSnapshotFiles{std::string(kJailSnapOutDir) + "/state", std::string(kJailSnapOutDir) + "/mem"};
  }

  Status collect_snapshot(const SnapshotPaths& tmp, bool written) override {
    const std::string out_dir = root_ + kJailSnapOutDir;
    Status st = ok_status();
    if (written) {
      // Out of the jail before it is cleaned up; the store's directory is kilnd's alone.
      st = take_vmm_file(out_dir + "/state", tmp.state);
      if (st.ok()) st = take_vmm_file(out_dir + "/mem", tmp.mem);
      if (st.ok() && ::chmod(tmp.dir.c_str(), 0700) != 0) st = errno_error("chmod " + tmp.dir);
    }
    // Whatever is left of a failed snapshot in the jail goes now (not at the instance's end).
    std::error_code ec;
    fs::remove(out_dir + "/state", ec);
    fs::remove(out_dir + "/mem", ec);
    return st;
  }

  Status share_socket(const std::string& path) override {
    if (::chown(path.c_str(), jail_.uid, jail_.gid) != 0) return errno_error("chown " + path + " to the VMM's user");
    return ok_status();
  }

  // Removes the jail (directory, cgroups) once its VMM is gone.
  Status release() override {
    if (!jail_live_) return ok_status();
    jail_live_ = false;
    Status st = jail::cleanup(jail_);
    // Namespace, TAP, veths, rules and address slot: after the VMM and its jail are gone.
    remove_on_spawner(*spawner_, networks_, std::exchange(network_, std::nullopt));
    if (!st.ok()) return st.error().wrap("removing the jail");
    return ok_status();
  }

 private:
  std::shared_ptr<asio::thread_pool> spawner_;
  std::vector<std::string> extra_args_;
  std::string id_;
  jail::JailSpec jail_;
  std::string root_;  // the jail's root on the host
  bool jail_live_ = false;  // a jail exists and must be cleaned up
  std::shared_ptr<net::InstanceNetworks> networks_;
  std::optional<net::EgressPolicy> policy_;
  std::optional<net::InstanceNetwork> network_;  // removed after the VMM and its jail, on spawner_
};

class JailedLauncher : public VmmLauncher {
 public:
  JailedLauncher(asio::io_context& io, const VmmBackendOptions& o) : io_(io), o_(o) {}
  std::unique_ptr<VmmProcess> make(const InstanceSpec& spec, std::uint64_t index,
                                   const std::string& run_dir) const override {
    return std::make_unique<JailedVmmProcess>(io_, spawner_, o_, spec, index, run_dir);
  }
  std::string snapshot_flavor() const override { return "\n[jailed]"; }

 private:
  asio::io_context& io_;
  VmmBackendOptions o_;
  std::shared_ptr<asio::thread_pool> spawner_ = std::make_shared<asio::thread_pool>(1);
};

}  // namespace

std::string jail_base_dir(const VmmBackendOptions& options) {
  if (!options.jail_base.empty()) return options.jail_base;
  std::string run = options.run_dir;
  while (run.size() > 1 && run.back() == '/') run.pop_back();
  return fs::path(run).parent_path().string() + "/jail";
}

jail::JailSpec vmm_jail_spec(const VmmBackendOptions& options, const InstanceSpec& spec, std::uint64_t index) {
  jail::JailSpec j;
  j.id = spec.instance_id;
  j.exec_file = options.vmm_path;
  const std::uint32_t count = std::max<std::uint32_t>(options.jail_uid_count, 1);
  j.uid = j.gid = options.jail_uid_base + static_cast<std::uint32_t>(index % count);
  j.chroot_base_dir = jail_base_dir(options);
  // 64-bit sums of 32-bit values: no overflow; saturate what goes back into 32 bits.
  const std::uint64_t bytes = (std::uint64_t{spec.memory_mib} + options.jail_memory_margin_mib) << 20;
  constexpr std::uint64_t kU32Max = 0xffffffffu;
  j.limits.memory_bytes = bytes;
  j.limits.cpu_millicores = static_cast<std::uint32_t>(std::min<std::uint64_t>((std::uint64_t{spec.vcpus} + 1) * 1000, kU32Max));
  j.limits.pids_max = static_cast<std::uint32_t>(std::min<std::uint64_t>(std::uint64_t{spec.vcpus} + options.jail_pids_margin, kU32Max));
  j.rlimit_nofile = options.jail_nofile;
  j.rlimit_fsize = bytes;  // the largest file it writes is a snapshot's memory file
  j.files.push_back({options.kernel_path, kJailKernel, true});
  if (!options.initrd_path.empty()) j.files.push_back({options.initrd_path, kJailInitrd, true});
  if (spec.rootfs_nbd_socket.empty()) {
    j.files.push_back({spec.rootfs_path, kJailRootfs, true});
  } else {
    j.files.push_back({spec.rootfs_nbd_socket, kJailRootfsSocket, true});
  }
  j.daemonize = true;  // own session: a ^C at kilnd's terminal is kilnd's to handle
  return j;
}

std::unique_ptr<VmmLauncher> make_jailed_launcher(asio::io_context& io, const VmmBackendOptions& options) {
  return std::make_unique<JailedLauncher>(io, options);
}

bool is_jailed_vmm_cmdline(const std::string& cmdline, const std::string& id) {
  // "/kiln-vmm --api-sock /api.sock --id <id> ...": jail paths.
  return cmdline.find(std::string(" --api-sock ") + kJailApiSock + " --id " + id + " ") != std::string::npos;
}

void remove_leftover_jails(const std::string& base, std::vector<std::string>& report) {
  std::error_code ec;
  for (const auto& exec_dir : fs::directory_iterator(base, ec)) {
    if (!exec_dir.is_directory() || exec_dir.is_symlink()) continue;
    std::error_code ec2;
    for (const auto& id_dir : fs::directory_iterator(exec_dir.path(), ec2)) {
      jail::JailSpec j;
      j.id = id_dir.path().filename().string();
      j.exec_file = "/" + exec_dir.path().filename().string();
      j.chroot_base_dir = base;
      Status st = jail::cleanup(j);
      report.push_back(st.ok() ? "removed jail " + id_dir.path().string()
                               : "could not remove jail " + id_dir.path().string() + ": " + st.error().message);
    }
  }
}

}  // namespace kiln::kilnd::pool
