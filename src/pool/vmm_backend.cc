// One microVM per instance: run dir, kiln-vmm process (plain or in src/jail's jail), API
// configuration, kiln-init protocol.
#include "src/pool/vmm_backend.h"

#include <fcntl.h>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/protocol/launch_spec.h"
#include "common/protocol/messages.h"
#include "common/unique_fd.h"
#include "src/jail/jail.h"
#include "src/pool/hybrid_vsock.h"
#include "src/pool/vmm_api_client.h"

namespace kiln::kilnd::pool {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using asio::use_awaitable;
using nlohmann::json;

std::string read_small(const std::string& path, std::size_t max = 64 * 1024) {
  std::ifstream in(path, std::ios::binary);
  std::string s(max, '\0');
  in.read(s.data(), static_cast<std::streamsize>(max));
  s.resize(static_cast<std::size_t>(in.gcount()));
  return s;
}

// The last `max_lines` non-empty lines of a file's last `window` bytes that `keep` accepts,
// joined with " | ": what an instance's kiln-vmm log says, for a notice.
template <typename Keep>
std::string last_lines(const std::string& path, std::int64_t window, std::size_t max_lines, Keep keep) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  auto size = static_cast<std::int64_t>(in.tellg());
  in.seekg(size > window ? size - window : 0);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> lines;
  std::istringstream ss(text);
  for (std::string l; std::getline(ss, l);) {
    if (!l.empty() && keep(l)) lines.push_back(l);
  }
  std::string out;
  std::size_t start = lines.size() > max_lines ? lines.size() - max_lines : 0;
  for (std::size_t i = start; i < lines.size(); ++i) out += (out.empty() ? "" : " | ") + lines[i];
  return out;
}

// The last few lines of the VMM's log (serial console and its own messages) for error reports.
std::string log_tail(const std::string& path) {
  return last_lines(path, 4096, 5, [](const std::string&) { return true; });
}

// The VMM's own warnings and errors (kiln-vmm log lines "[<id>] WARN ..."/"ERROR"), the last
// few: what an instance leaves behind for a diagnosis once its run dir is gone.
std::string log_warnings(const std::string& path) {
  return last_lines(path, 65536, 3, [](const std::string& l) {
    return l.find("] WARN ") != std::string::npos || l.find("] ERROR ") != std::string::npos;
  });
}

// Paths as a jailed kiln-vmm sees them (its "/" is the jail's root).
constexpr const char* kJailApiSock = "/api.sock";
constexpr const char* kJailVsock = "/vsock.sock";
constexpr const char* kJailKernel = "/vmlinux";
constexpr const char* kJailInitrd = "/initrd";
constexpr const char* kJailRootfs = "/rootfs.img";
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

// A snapshot file as it was when a parked VMM bound it: adoption checks it is still the one.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  bool operator==(const FileId&) const = default;
};

FileId file_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino, st.st_size};
}

// A jailed VMM's snapshot names jail paths (/rootfs.img), a plain one host paths: not interchangeable.
Result<std::string> snapshot_key(const VmmBackendOptions& o, const InstanceSpec& spec) {
  return SnapshotStore::key_for(
      spec, {o.kernel_path, o.initrd_path, o.vmm_path, o.boot_args + (o.jail ? "\n[jailed]" : ""), o.guest_cid});
}

std::string exit_text(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + std::to_string(WTERMSIG(status));
  return "ended";
}

}  // namespace

class Vm : public std::enable_shared_from_this<Vm> {
 public:
  Vm(asio::io_context& io, std::shared_ptr<asio::thread_pool> spawner, const VmmBackendOptions& o,
     std::shared_ptr<SnapshotStore> store, InstanceSpec spec, InstanceCallbacks cb, std::uint64_t index)
      : io_(io), spawner_(std::move(spawner)), o_(o), store_(std::move(store)), spec_(std::move(spec)), cb_(std::move(cb)), events_acceptor_(io),
        boot_timer_(io), exit_wait_(io), adopt_gate_(io) {
    dir_ = o_.run_dir + "/" + spec_.instance_id;
    log_path_ = dir_ + "/vmm.log";
    if (o_.jail) {
      // kilnd reaches the VMM's sockets by their host paths under the jail's root.
      jail_spec_ = vmm_jail_spec(o_, spec_, index);
      root_ = jail::chroot_dir(jail_spec_);
      api_sock_ = root_ + kJailApiSock;
      vsock_ = root_ + kJailVsock;
      vmm_api_sock_ = kJailApiSock;
      vmm_vsock_ = kJailVsock;
      kernel_ = kJailKernel;
      initrd_ = o_.initrd_path.empty() ? "" : kJailInitrd;
      rootfs_ = kJailRootfs;
    } else {
      api_sock_ = dir_ + "/api.sock";
      vsock_ = dir_ + "/vsock.sock";
      vmm_api_sock_ = api_sock_;
      vmm_vsock_ = vsock_;
      kernel_ = o_.kernel_path;
      initrd_ = o_.initrd_path;
      rootfs_ = spec_.rootfs_path;
    }
  }

  void begin() { asio::co_spawn(io_, boot(shared_from_this()), asio::detached); }

  // A parked VMM for the instance `spec_` names (InstanceSpec::instance_id included): spawned
  // now with its snapshot bound, it waits with its API up until adopt() or destroy().
  void begin_parked() {
    parked_ = true;
    begin();
  }

  // Takes the parked VMM over for `spec` (the same instance id and snapshot): true, and `cb`
  // moved in, when it is still usable; the restore then goes on with PUT /snapshot/load.
  bool adopt(const InstanceSpec& spec, InstanceCallbacks& cb) {
    if (!parked_ || adopted_ || gone() || spec.instance_id != spec_.instance_id) return false;
    if (auto key = snapshot_key(o_, spec); !key.ok() || *key != key_) return false;
    // The snapshot must still be the one bound into the jail (not set aside or replaced since).
    auto snap = store_ ? store_->find(key_) : std::nullopt;
    if (!snap || file_id(snap->state) != bound_state_ || file_id(snap->mem) != bound_mem_) return false;
    spec_ = spec;
    cb_ = std::move(cb);
    adopted_ = true;
    std::error_code ec;
    fs::remove(dir_ + "/parked", ec);
    adopt_gate_.cancel();
    return true;
  }

  bool parked_alive() const { return parked_ && !adopted_ && !gone(); }
  bool parked_ready() const { return parked_alive() && parked_api_up_; }

  // Called with the key of each snapshot this VM commits (the backend parks VMMs on it).
  void on_snapshot_taken(std::function<void(const std::string&)> f) { snapshot_taken_ = std::move(f); }

  void connect(ConnectHandler done) {
    if (gone()) {
      asio::post(io_, [done] { done(make_error("instance is stopped")); });
      return;
    }
    asio::co_spawn(io_, do_connect(shared_from_this(), std::move(done)), asio::detached);
  }

  void check(std::function<void(bool)> done) {
    if (gone()) {
      asio::post(io_, [done] { done(false); });
      return;
    }
    asio::co_spawn(io_, do_check(shared_from_this(), std::move(done)), asio::detached);
  }

  void stop(std::function<void()> done) {
    if (stopping_) {
      asio::post(io_, std::move(done));
      return;
    }
    stopping_ = true;
    boot_timer_.cancel();
    asio::co_spawn(io_, do_stop(shared_from_this(), std::move(done)), asio::detached);
  }

  // The handle is gone: no more callbacks; kill and clean up now.
  void destroy() {
    destroyed_ = true;
    cb_ = InstanceCallbacks{};
    adopt_gate_.cancel();
    kill_now();
    cleanup();
  }

  // Per invocation (REPORT) it is read at most once a second (`fresh`: now), which keeps a
  // /proc read off most invocations' path; VmHWM only grows, so a skipped read under-reports
  // at most the last second's growth.
  std::uint64_t max_memory_mib(bool fresh = true) {
    const auto now = Clock::now();
    if (!fresh && peak_read_at_ && now - *peak_read_at_ < std::chrono::seconds(1)) return peak_mib_;
    peak_read_at_ = now;
    if (pid_ > 0) {
      // VmHWM: peak resident set of the VMM process (guest memory it touched + its own).
      std::istringstream ss(read_small("/proc/" + std::to_string(pid_) + "/status"));
      for (std::string line; std::getline(ss, line);) {
        if (line.rfind("VmHWM:", 0) == 0) peak_mib_ = std::max<std::uint64_t>(peak_mib_, std::strtoull(line.c_str() + 6, nullptr, 10) / 1024);
      }
    }
    return peak_mib_;
  }

 private:
  bool gone() const { return destroyed_ || stopping_ || ended_; }

  // The instance cannot be used any more: report once, kill the VMM (stop() cleans up).
  void fail(const std::string& reason) {
    if (ended_ || stopping_ || destroyed_) return;
    ended_ = true;
    boot_timer_.cancel();
    if (pid_ > 0) ::kill(pid_, SIGKILL);
    if (cb_.ended) cb_.ended(reason);
  }

  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  void cleanup() {
    beast::error_code ec;
    events_acceptor_.close(ec);
    if (events_sock_) events_sock_->close(ec);
    if (pidfd_) pidfd_->close(ec);
    boot_timer_.cancel();
    exit_wait_.cancel();
    end_jail();
    std::error_code fec;
    if (!dir_.empty()) fs::remove_all(dir_, fec);
  }

  // Removes the jail (directory, cgroups) once its VMM is gone; closes kilnd's listener in it.
  void end_jail() {
    if (!jail_live_) return;
    jail_live_ = false;
    beast::error_code ec;
    events_acceptor_.close(ec);
    if (auto st = jail::cleanup(jail_spec_); !st.ok()) notice("removing the jail: " + st.error().message);
  }

  // Listens for the agent's event connection (hybrid vsock: guest -> host port 10001). In a
  // jail the socket is in its root and handed to the VMM's uid/gid so the VMM can connect.
  Status listen_events() {
    beast::error_code ec;
    local::endpoint events_ep(host_port_path(vsock_, kHostEventsPort));
    events_acceptor_.open(events_ep.protocol(), ec);
    if (!ec) events_acceptor_.bind(events_ep, ec);
    if (!ec) events_acceptor_.listen(4, ec);
    if (ec) return make_error("listening on " + events_ep.path() + ": " + ec.message());
    if (o_.jail && ::chown(events_ep.path().c_str(), jail_spec_.uid, jail_spec_.gid) != 0) {
      return errno_error("chown " + events_ep.path() + " to the VMM's user");
    }
    asio::co_spawn(io_, accept_events(shared_from_this()), asio::detached);
    return ok_status();
  }

  void watch_exit(pid_t pid, int pidfd) {
    pid_ = pid;
    std::ofstream(dir_ + "/vmm.pid") << pid << "\n";
    pidfd_ = std::make_unique<asio::posix::stream_descriptor>(io_, pidfd);
    auto self = shared_from_this();
    pidfd_->async_wait(asio::posix::stream_descriptor::wait_read, [self](const beast::error_code& ec) {
      if (!ec) self->on_vmm_exit();
    });
  }

  // kiln-vmm in its jail (with the snapshot to load bound read-only), then kilnd's listener.
  // Building a jail (mounts, cgroups, clone, exec) takes a while: it runs on the spawner
  // thread so that the loop thread goes on serving invocations meanwhile.
  asio::awaitable<Status> spawn_jailed(const SnapshotPaths* snap) {
    // The chroot base is kilnd's alone (0700): the VMMs never see host paths above their root.
    if (::mkdir(jail_spec_.chroot_base_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      co_return errno_error("creating the jail base " + jail_spec_.chroot_base_dir);
    }
    jail::JailSpec js = jail_spec_;
    if (snap) {
      js.files.push_back({snap->state, kJailSnapState, true});
      js.files.push_back({snap->mem, kJailSnapMem, true});
    }
    auto log = std::make_shared<UniqueFd>(::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!*log) co_return errno_error("open " + log_path_);
    std::vector<std::string> args = {"--api-sock", vmm_api_sock_, "--id", spec_.instance_id};
    args.insert(args.end(), o_.extra_vmm_args.begin(), o_.extra_vmm_args.end());
    struct Done {
      explicit Done(asio::io_context& io) : timer(io, Clock::time_point::max()) {}
      std::optional<Result<jail::JailedProcess>> result;
      asio::steady_timer timer;
    };
    auto done = std::make_shared<Done>(io_);
    asio::post(*spawner_, [done, js, args, log, &io = io_] {
      Result<jail::JailedProcess> r = jail::spawn(js, args, jail::Stdio{-1, log->get(), log->get()});
      asio::post(io, [done, r = std::move(r)]() mutable {
        done->result.emplace(std::move(r));
        done->timer.cancel();
      });
    });
    beast::error_code ec;
    while (!done->result) co_await done->timer.async_wait(asio::redirect_error(use_awaitable, ec));
    Result<jail::JailedProcess>& vm = *done->result;
    if (!vm.ok()) co_return vm.error();
    if (destroyed_) {
      // Dropped while the jail was being built: nothing may outlive the instance.
      ::kill(vm->pid, SIGKILL);
      while (::waitpid(vm->pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      (void)jail::cleanup(js);
      co_return make_error("instance dropped while its kiln-vmm started");
    }
    jail_live_ = true;
    watch_exit(vm->pid, vm->pidfd.release());
    co_return listen_events();
  }

  asio::awaitable<Status> spawn_vmm(const SnapshotPaths* snap) {
    if (o_.jail) co_return co_await spawn_jailed(snap);
    std::vector<std::string> argv = {o_.vmm_path, "--api-sock", api_sock_, "--id", spec_.instance_id};
    argv.insert(argv.end(), o_.extra_vmm_args.begin(), o_.extra_vmm_args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    // Asio's sockets are not close-on-exec: the VMM must not inherit kilnd's listeners.
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0);  // a ^C at kilnd's terminal is kilnd's to handle
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, o_.vmm_path.c_str(), &fa, &attr, cargv.data(), ::environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) co_return errno_error("spawn " + o_.vmm_path, rc);
    pid_ = pid;
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
      std::ofstream(dir_ + "/vmm.pid") << pid << "\n";
      co_return errno_error("pidfd_open");
    }
    watch_exit(pid, pidfd);
    co_return ok_status();
  }

  void on_vmm_exit() {
    if (pid_ <= 0) return;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return;
    max_memory_mib();
    pid_ = -1;
    exit_wait_.cancel();
    std::string tail = log_tail(log_path_);
    fail("kiln-vmm " + exit_text(status) + (tail.empty() ? "" : ": " + tail));
  }

  static asio::awaitable<void> boot(std::shared_ptr<Vm> self) {
    Status st = co_await self->boot_steps();
    if (!st.ok()) self->fail(st.error().message);
  }

  asio::awaitable<Status> boot_steps() {
    std::error_code fec;
    fs::create_directories(dir_, fec);
    if (fec) co_return make_error("creating " + dir_ + ": " + fec.message());
    fs::permissions(dir_, fs::perms::owner_all, fec);
    // Listen for the agent before the guest can try (a jail's listener comes with the jail).
    if (!o_.jail) {
      Status listening = listen_events();
      if (!listening.ok()) co_return listening;
    }

    if (store_) {
      auto key = snapshot_key(o_, spec_);
      if (key.ok()) {
        key_ = *key;
      } else {
        notice("starts without snapshots: " + key.error().message);
      }
    }
    if (parked_ && (key_.empty() || !store_->find(key_))) co_return make_error("no snapshot to park a kiln-vmm for");
    if (!key_.empty()) {
      if (auto snap = store_->find(key_)) {
        Status restored = co_await restore_steps(*snap);
        if (gone()) co_return ok_status();
        if (restored.ok()) {
          store_->count_restore();
          notice("restored from snapshot " + key_.substr(0, 12) + " in " + std::to_string(ms_since(restore_t0_)) + " ms (" +
                 restore_phases_ + ")");
          mark_ready();
          co_return ok_status();
        }
        // A snapshot the VMM refuses is set aside; any other failure (a slow start, the identity
        // round trip) leaves it for the next instance. Either way this one cold-boots (a parked
        // VMM no instance took over yet just ends: the instance that comes starts afresh).
        if (parked_ && !adopted_) {
          if (snapshot_refused_) store_->set_aside(key_);
          co_return restored;
        }
        if (snapshot_refused_) {
          store_->set_aside(key_);
          notice("snapshot " + key_.substr(0, 12) + " did not load (" + restored.error().message + "); set aside, cold boot");
        } else {
          notice("restore from snapshot " + key_.substr(0, 12) + " failed (" + restored.error().message + "); cold boot");
        }
        kill_now();
        end_jail();
        launched_ = false;
      }
    }
    co_return co_await cold_boot_steps();
  }

  static long long ms_since(Clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  }

  void notice(const std::string& text) {
    if (cb_.notice && !destroyed_) cb_.notice(text);
  }

  void mark_ready() {
    if (ready_ || gone()) return;
    ready_ = true;
    boot_timer_.cancel();
    if (cb_.ready) cb_.ready();
  }

  // Spawns kiln-vmm and waits until its API socket answers.
  asio::awaitable<Status> spawn_and_wait_api(Clock::time_point deadline) {
    Status spawned = co_await spawn_vmm(nullptr);
    if (!spawned.ok()) co_return spawned.error();
    co_return co_await wait_api(deadline);
  }

  // The API socket appears once kiln-vmm is up: retry connecting until then.
  asio::awaitable<Status> wait_api(Clock::time_point deadline) {
    asio::steady_timer retry(io_);
    beast::error_code ec;
    while (true) {
      if (gone()) co_return ok_status();
      auto r = co_await vmm_api_call(api_sock_, http::verb::get, "/", "", deadline);
      if (r.ok()) co_return ok_status();
      if (Clock::now() >= deadline) co_return r.error().wrap("kiln-vmm API did not come up");
      retry.expires_after(std::chrono::milliseconds(5));
      co_await retry.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

  // PUT /snapshot/load (own vsock socket), then this instance's identity over the control port.
  asio::awaitable<Status> restore_steps(const SnapshotPaths& snap) {
    restore_t0_ = Clock::now();
    auto phase_start = restore_t0_;
    auto phase = [this, &phase_start](const char* name) {
      restore_phases_ += (restore_phases_.empty() ? "" : ", ") + std::string(name) + " " + std::to_string(ms_since(phase_start));
      phase_start = Clock::now();
    };
    restore_phases_.clear();
    auto deadline = Clock::now() + o_.api_timeout;
    bound_state_ = file_id(snap.state);
    bound_mem_ = file_id(snap.mem);
    // Marked before the process exists, so that no observer counts it as an instance's.
    if (parked_) std::ofstream(dir_ + "/parked") << "waiting for an instance\n";
    Status spawned = co_await spawn_vmm(&snap);
    if (!spawned.ok()) co_return spawned;
    phase("spawn");
    Status up = co_await wait_api(deadline);
    if (!up.ok() || gone()) co_return up;
    phase("api up");
    // A parked VMM loads its snapshot paused now (resume_vm false): the guest stays still, its
    // clock and vsock reset wait for the resume; an instance adopting it only resumes it.
    json load = {{"snapshot_path", o_.jail ? kJailSnapState : snap.state},
                 {"mem_backend", {{"backend_type", "File"}, {"backend_path", o_.jail ? kJailSnapMem : snap.mem}}},
                 {"vsock_override", {{"uds_path", vmm_vsock_}}},
                 {"resume_vm", !parked_}};
    auto loaded = co_await vmm_api_call(api_sock_, http::verb::put, "/snapshot/load", load.dump(), deadline);
    if (!loaded.ok() || gone()) co_return loaded.ok() ? ok_status() : Status(loaded.error());
    if (loaded->status < 200 || loaded->status >= 300) {
      // The VMM refused the files (corrupt, truncated, wrong version): the snapshot is bad.
      snapshot_refused_ = true;
      co_return make_error("PUT /snapshot/load: " + std::to_string(loaded->status) + ": " + fault_message(loaded->body));
    }
    const long long load_ms = ms_since(phase_start);
    if (!parked_) phase("load");
    if (parked_) {
      // Parked: the restore goes on once an instance adopts this VMM; its clock starts then.
      beast::error_code ec;
      parked_api_up_ = true;
      if (!adopted_) {
        adopt_gate_.expires_at(Clock::time_point::max());
        co_await adopt_gate_.async_wait(asio::redirect_error(use_awaitable, ec));
      }
      if (gone() || !adopted_) co_return make_error("the parked kiln-vmm was not adopted");
      restore_phases_ = "parked kiln-vmm, load paused ahead " + std::to_string(load_ms);
      restore_t0_ = phase_start = Clock::now();
      deadline = restore_t0_ + o_.api_timeout;
      auto resumed = co_await vmm_api_call(api_sock_, http::verb::patch, "/vm", R"({"state":"Resumed"})", deadline);
      if (!resumed.ok() || gone()) co_return resumed.ok() ? ok_status() : Status(resumed.error());
      if (resumed->status < 200 || resumed->status >= 300) {
        co_return make_error("PATCH /vm Resumed: " + std::to_string(resumed->status) + ": " + fault_message(resumed->body));
      }
      phase("resume");
    }
    launched_ = true;
    protocol::IdentityRequest id;
    id.hostname = spec_.launch.hostname;
    id.instance_id = spec_.instance_id;
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    id.wall_clock_ns = static_cast<std::uint64_t>(now.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(now.tv_nsec);
    id.entropy.resize(64);
    if (::getrandom(id.entropy.data(), id.entropy.size(), 0) != static_cast<ssize_t>(id.entropy.size())) {
      co_return errno_error("getrandom");
    }
    auto frame = protocol::encode(id);
    if (!frame.ok()) co_return frame.error();
    // The guest is still taking in the vsock transport reset: retry until the agent answers.
    asio::steady_timer retry(io_);
    beast::error_code ec;
    const auto id_deadline = Clock::now() + o_.connect_timeout;
    for (int attempt = 1;; ++attempt) {
      auto reply = co_await control_request(vsock_, *frame, id_deadline);
      if (gone()) co_return ok_status();
      if (reply.ok()) {
        auto ack = reply->type == protocol::FrameType::kAck ? protocol::decode_ack(reply->payload)
                                                            : Result<protocol::Ack>(make_error("unexpected reply frame"));
        if (!ack.ok()) co_return ack.error().wrap("identity");
        if (!ack->ok) co_return make_error("kiln-init refused the identity: " + ack->message);
        phase(attempt == 1 ? "identity" : ("identity (" + std::to_string(attempt) + " tries)").c_str());
        co_return ok_status();
      }
      if (Clock::now() >= id_deadline) co_return reply.error().wrap("sending the identity");
      retry.expires_after(std::chrono::milliseconds(5));
      co_await retry.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

  asio::awaitable<Status> cold_boot_steps() {
    auto deadline = Clock::now() + o_.api_timeout;
    Status up = co_await spawn_and_wait_api(deadline);
    if (!up.ok() || gone()) co_return up;
    // Firecracker API shapes (see ARCHITECTURE.md "kilnd -> kiln-vmm").
    json machine = {{"vcpu_count", spec_.vcpus}, {"mem_size_mib", spec_.memory_mib}, {"smt", false}};
    json boot_source = {{"kernel_image_path", kernel_}, {"boot_args", o_.boot_args}};
    if (!initrd_.empty()) boot_source["initrd_path"] = initrd_;
    json drive = {{"drive_id", "rootfs"}, {"path_on_host", rootfs_}, {"is_root_device", false},
                  {"is_read_only", true}};
    json vsock = {{"guest_cid", o_.guest_cid}, {"uds_path", vmm_vsock_}};
    json start = {{"action_type", "InstanceStart"}};
    const std::pair<const char*, json> steps[] = {{"/machine-config", machine}, {"/boot-source", boot_source},
                                                  {"/drives/rootfs", drive},   {"/vsock", vsock},
                                                  {"/actions", start}};
    for (const auto& [path, body] : steps) {
      if (gone()) co_return ok_status();
      Status put = co_await vmm_api_put(api_sock_, path, body.dump(), deadline);
      if (!put.ok()) co_return put.error().wrap("configuring kiln-vmm");
    }
    boot_timer_.expires_after(o_.boot_timeout);
    auto self = shared_from_this();
    auto secs = std::to_string(o_.boot_timeout.count() / 1000.0);
    boot_timer_.async_wait([self, secs](const beast::error_code& e) {
      if (!e && !self->ready_) self->fail("the guest did not report ready within " + secs + " s");
    });
    co_return ok_status();
  }

  static asio::awaitable<void> accept_events(std::shared_ptr<Vm> self) {
    while (!self->destroyed_ && !self->stopping_) {
      beast::error_code ec;
      local::socket s = co_await self->events_acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      // A new connection replaces the old one (the agent reconnects after a transport reset).
      if (self->events_sock_) self->events_sock_->close(ec);
      self->events_sock_ = std::make_shared<local::socket>(std::move(s));
      asio::co_spawn(self->io_, read_events(self, self->events_sock_), asio::detached);
    }
  }

  static asio::awaitable<void> read_events(std::shared_ptr<Vm> self, std::shared_ptr<local::socket> sock) {
    protocol::FrameDecoder decoder;
    char buf[16384];
    while (true) {
      beast::error_code ec;
      std::size_t n = co_await sock->async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      if (ec || self->destroyed_) co_return;
      if (auto st = decoder.feed(std::string_view(buf, n)); !st.ok()) {
        sock->close(ec);  // corrupt stream: drop it; the agent reconnects
        co_return;
      }
      protocol::Frame f;
      while (decoder.next(&f)) self->on_event(f);
    }
  }

  void on_event(const protocol::Frame& f) {
    if (destroyed_) return;
    switch (f.type) {
      case protocol::FrameType::kHello: {
        auto h = protocol::decode_hello(f.payload);
        if (h.ok() && h->state == "waiting" && !launched_) {
          launched_ = true;
          asio::co_spawn(io_, send_spec(shared_from_this()), asio::detached);
        }
        break;
      }
      case protocol::FrameType::kReady:
        if (ready_ || gone() || snapshotting_) break;
        if (store_ && !key_.empty()) {
          // The first instance of this VM shape: snapshot it, then serve.
          auto tmp = store_->begin(key_);
          if (!tmp.ok()) notice("no snapshot: " + tmp.error().message);
          if (tmp.ok() && *tmp) {
            snapshotting_ = true;
            boot_timer_.cancel();  // the snapshot has its own deadline
            asio::co_spawn(io_, snapshot_then_ready(shared_from_this(), **tmp), asio::detached);
            break;
          }
        }
        mark_ready();
        break;
      case protocol::FrameType::kNotReady: {
        auto n = protocol::decode_not_ready(f.payload);
        fail("the function is not ready: " + (n.ok() ? n->message : std::string("(malformed event)")));
        break;
      }
      case protocol::FrameType::kLog: {
        auto l = protocol::decode_log(f.payload);
        if (l.ok() && cb_.log && !destroyed_) cb_.log(*l);
        break;
      }
      case protocol::FrameType::kDropped: {
        auto d = protocol::decode_dropped(f.payload);
        if (d.ok() && cb_.log) {
          protocol::LogEvent e;
          e.stream = protocol::LogStream::kStderr;
          e.data = "[kiln] " + std::to_string(d->count) + " log lines dropped (guest buffer full)";
          cb_.log(e);
        }
        break;
      }
      case protocol::FrameType::kExit: {
        auto e = protocol::decode_exit(f.payload);
        std::string what = !e.ok() ? "the function's process ended"
                           : e->signaled ? "the function's process was killed by signal " + std::to_string(e->code)
                                         : "the function's process exited with code " + std::to_string(e->code);
        fail(what);
        break;
      }
      default:
        break;  // unknown event types are ignored (forward compatibility)
    }
  }

  // Pause, PUT /snapshot/create into a temporary dir, resume; the snapshot is kept only whole.
  static asio::awaitable<void> snapshot_then_ready(std::shared_ptr<Vm> self, SnapshotPaths tmp) {
    const auto t0 = Clock::now();
    // Writing the memory file can take long on a loaded host: the boot allowance, not the API's.
    const auto deadline = t0 + std::max(self->o_.api_timeout, self->o_.boot_timeout);
    const std::string api = self->api_sock_;
    // A jailed VMM writes into a directory of its own root; the files are moved out below.
    const std::string out_dir = self->root_ + kJailSnapOutDir;
    Status st = self->o_.jail ? self->make_vmm_dir(out_dir) : ok_status();
    bool paused = false;
    if (st.ok()) {
      st = co_await vmm_api_send(api, http::verb::patch, "/vm", R"({"state": "Paused"})", deadline);
      paused = st.ok();
    }
    if (paused) {
      json create = {{"snapshot_type", "Full"},
                     {"snapshot_path", self->o_.jail ? std::string(kJailSnapOutDir) + "/state" : tmp.state},
                     {"mem_file_path", self->o_.jail ? std::string(kJailSnapOutDir) + "/mem" : tmp.mem}};
      st = co_await vmm_api_put(api, "/snapshot/create", create.dump(), deadline);
    }
    Status resumed = ok_status();
    if (paused && !self->gone()) {
      resumed = co_await vmm_api_send(api, http::verb::patch, "/vm", R"({"state": "Resumed"})", Clock::now() + self->o_.api_timeout);
    }
    if (st.ok() && self->o_.jail) {
      // Out of the jail before it is cleaned up; the store's directory is kilnd's alone.
      st = take_vmm_file(out_dir + "/state", tmp.state);
      if (st.ok()) st = take_vmm_file(out_dir + "/mem", tmp.mem);
      if (st.ok() && ::chmod(tmp.dir.c_str(), 0700) != 0) st = errno_error("chmod " + tmp.dir);
    }
    if (self->o_.jail) {
      // Whatever is left of a failed snapshot in the jail goes now (not at the instance's end).
      std::error_code ec;
      fs::remove(out_dir + "/state", ec);
      fs::remove(out_dir + "/mem", ec);
    }
    if (st.ok()) st = self->store_->commit(self->key_, tmp);
    else self->store_->abandon(self->key_, tmp);
    if (st.ok() && self->snapshot_taken_) self->snapshot_taken_(self->key_);
    self->snapshotting_ = false;
    self->notice(st.ok() ? "snapshot " + self->key_.substr(0, 12) + " taken in " + std::to_string(ms_since(t0)) + " ms"
                         : "no snapshot: " + st.error().message);
    if (!resumed.ok()) {
      self->fail("resuming after the snapshot: " + resumed.error().message);
      co_return;
    }
    self->mark_ready();
  }

  // A directory in the jail's root that only the VMM's user (and kilnd) can write.
  Status make_vmm_dir(const std::string& path) {
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("mkdir " + path);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return make_error(path + " is not a directory");
    if (::chown(path.c_str(), jail_spec_.uid, jail_spec_.gid) != 0) return errno_error("chown " + path);
    return ok_status();
  }

  static asio::awaitable<void> send_spec(std::shared_ptr<Vm> self) {
    auto frame = protocol::encode_config_drive(self->spec_.launch);  // one kLaunchSpec frame
    if (!frame.ok()) {
      self->fail("launch spec: " + frame.error().message);
      co_return;
    }
    auto reply = co_await control_request(self->vsock_, *frame, Clock::now() + self->o_.connect_timeout);
    if (!reply.ok()) {
      self->fail("sending the launch spec: " + reply.error().message);
      co_return;
    }
    if (reply->type != protocol::FrameType::kAck) {
      self->fail("launch spec: unexpected reply frame");
      co_return;
    }
    auto ack = protocol::decode_ack(reply->payload);
    if (!ack.ok() || !ack->ok) self->fail("kiln-init refused the launch spec: " + (ack.ok() ? ack->message : ack.error().message));
  }

  static asio::awaitable<void> do_connect(std::shared_ptr<Vm> self, ConnectHandler done) {
    auto r = co_await hybrid_connect(self->vsock_, kGuestInvokePort, Clock::now() + self->o_.connect_timeout);
    done(std::move(r));
  }

  static asio::awaitable<void> do_check(std::shared_ptr<Vm> self, std::function<void(bool)> done) {
    auto reply = co_await control_request(self->vsock_, *protocol::encode_status_request(),
                                          Clock::now() + self->o_.check_timeout);
    bool healthy = false;
    if (reply.ok() && reply->type == protocol::FrameType::kStatus) {
      auto s = protocol::decode_status(reply->payload);
      healthy = s.ok() && s->ready && !s->exited;
    }
    if (!self->destroyed_) done(healthy);
  }

  static asio::awaitable<void> do_stop(std::shared_ptr<Vm> self, std::function<void()> done) {
    if (self->pid_ > 0 && self->launched_ && !self->ended_) {
      // Graceful: kiln-init stops the command (SIGTERM, grace, SIGKILL) and reboots, which ends
      // the VMM; bounded by the grace period plus a margin, then SIGKILL.
      protocol::ShutdownRequest req{true, static_cast<std::uint64_t>(self->o_.stop_grace.count())};
      auto frame = protocol::encode(req);
      auto deadline = Clock::now() + self->o_.stop_grace + std::chrono::milliseconds(1000);
      if (frame.ok()) (void)co_await control_request(self->vsock_, *frame, deadline);
      if (self->pid_ > 0) {
        self->exit_wait_.expires_at(deadline);
        beast::error_code ec;
        co_await self->exit_wait_.async_wait(asio::redirect_error(use_awaitable, ec));
      }
    }
    self->max_memory_mib();
    self->kill_now();
    // One line per stop, with what kiln-vmm warned of, if anything (a lost call's diagnosis).
    std::string w = log_warnings(self->log_path_);
    self->notice(w.empty() ? std::string("stopped") : "stopped; kiln-vmm warned: " + w);
    self->cleanup();
    asio::post(self->io_, std::move(done));
  }

  asio::io_context& io_;
  std::shared_ptr<asio::thread_pool> spawner_;  // builds jails off the loop thread
  VmmBackendOptions o_;
  std::shared_ptr<SnapshotStore> store_;  // null: snapshots off
  std::string key_;  // this instance's snapshot key ("" = none)
  bool snapshotting_ = false;
  bool snapshot_refused_ = false;  // the VMM refused the snapshot's files (not a transient failure)
  std::string restore_phases_;  // "spawn N, api up N, load N, identity N" (ms) for the restore notice
  Clock::time_point restore_t0_{};  // the restore's start (a parked VMM's: its adoption)
  bool parked_ = false;  // spawned ahead for a future instance (begin_parked)
  bool adopted_ = false;  // ... and an instance took it over
  bool parked_api_up_ = false;  // ... and its API answers
  FileId bound_state_, bound_mem_;  // the snapshot files bound into the jail
  std::function<void(const std::string&)> snapshot_taken_;
  InstanceSpec spec_;
  InstanceCallbacks cb_;
  std::string dir_, api_sock_, vsock_, log_path_;
  // As the VMM names them: the host paths above, or jail paths ("/vsock.sock") in a jail.
  std::string vmm_api_sock_, vmm_vsock_, kernel_, initrd_, rootfs_;
  jail::JailSpec jail_spec_;  // with o_.jail
  std::string root_;  // the jail's root on the host
  bool jail_live_ = false;  // a jail exists and must be cleaned up
  local::acceptor events_acceptor_;
  std::shared_ptr<local::socket> events_sock_;
  std::unique_ptr<asio::posix::stream_descriptor> pidfd_;
  asio::steady_timer boot_timer_;
  asio::steady_timer exit_wait_;
  asio::steady_timer adopt_gate_;  // a parked VMM waits on it for adopt()
  pid_t pid_ = -1;
  std::uint64_t peak_mib_ = 0;
  std::optional<Clock::time_point> peak_read_at_;
  bool launched_ = false;
  bool ready_ = false;
  bool ended_ = false;
  bool stopping_ = false;
  bool destroyed_ = false;
};

namespace {

class VmHandle : public VmInstance {
 public:
  explicit VmHandle(std::shared_ptr<Vm> vm) : vm_(std::move(vm)) {}
  ~VmHandle() override { vm_->destroy(); }
  void connect(ConnectHandler done) override { vm_->connect(std::move(done)); }
  void check(std::function<void(bool)> done) override { vm_->check(std::move(done)); }
  void stop(std::function<void()> done) override { vm_->stop(std::move(done)); }
  std::uint64_t max_memory_mib() const override { return vm_->max_memory_mib(false); }

 private:
  std::shared_ptr<Vm> vm_;
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
  j.files.push_back({spec.rootfs_path, kJailRootfs, true});
  j.daemonize = true;  // own session: a ^C at kilnd's terminal is kilnd's to handle
  return j;
}

VmmBackend::~VmmBackend() {
  for (auto& [owner, parked] : parked_) {
    if (parked.vm) parked.vm->destroy();
  }
}

VmmBackend::VmmBackend(asio::io_context& io, VmmBackendOptions options) : io_(io), options_(std::move(options)) {
  if (!options_.snapshot_dir.empty()) {
    auto store = SnapshotStore::open(options_.snapshot_dir);
    if (store.ok()) {
      snapshots_ = std::make_shared<SnapshotStore>(std::move(*store));
    } else {
      snapshot_error_ = store.error().message;
    }
  }
}

SnapshotStats VmmBackend::snapshot_stats() const {
  SnapshotStats s = snapshots_ ? snapshots_->stats() : SnapshotStats{};
  for (const auto& [owner, parked] : parked_) {
    if (!parked.vm || !parked.vm->parked_alive()) continue;
    ++(parked.vm->parked_ready() ? s.parked_ready : s.parked_starting);
  }
  return s;
}

std::shared_ptr<Vm> VmmBackend::make_vm(const InstanceSpec& spec, InstanceCallbacks callbacks) {
  auto vm = std::make_shared<Vm>(io_, spawner_, options_, snapshots_, spec, std::move(callbacks), next_index_++);
  std::weak_ptr<bool> alive = alive_;
  vm->on_snapshot_taken([this, alive](const std::string& key) {
    if (!alive.expired()) park_waiting(key);
  });
  return vm;
}

std::unique_ptr<VmInstance> VmmBackend::start(const InstanceSpec& spec, InstanceCallbacks callbacks) {
  InstanceCallbacks tracked = track_start(std::move(callbacks));  // counted once, however it starts
  for (auto it = parked_.begin(); it != parked_.end(); ++it) {
    if (it->second.spec.instance_id != spec.instance_id) continue;
    std::shared_ptr<Vm> vm = std::move(it->second.vm);
    parked_.erase(it);
    if (vm && vm->adopt(spec, tracked)) return std::make_unique<VmHandle>(vm);  // took `tracked`
    if (vm) vm->destroy();  // gone, or its snapshot changed since: this instance starts afresh
    break;
  }
  auto vm = make_vm(spec, std::move(tracked));
  vm->begin();
  return std::make_unique<VmHandle>(vm);
}

InstanceCallbacks VmmBackend::track_start(InstanceCallbacks cb) {
  // Counts the instance as starting until it is ready, ended or dropped (the guard goes with
  // the last callback); then, once nothing starts, the waiting parked VMMs are spawned.
  struct Guard {
    VmmBackend* backend = nullptr;
    std::weak_ptr<bool> alive;
    bool done = false;
    void finish() {
      if (done || alive.expired()) return;
      done = true;
      if (--backend->starting_ == 0) {
        asio::post(backend->io_, [b = backend, a = alive] {
          if (!a.expired() && b->starting_ == 0) b->park_waiting("");
        });
      }
    }
    ~Guard() { finish(); }
  };
  ++starting_;
  auto guard = std::make_shared<Guard>();  // built in place: a moved-from copy would finish() too
  guard->backend = this;
  guard->alive = alive_;
  cb.ready = [guard, inner = std::move(cb.ready)] {
    guard->finish();
    if (inner) inner();
  };
  cb.ended = [guard, inner = std::move(cb.ended)](const std::string& reason) {
    guard->finish();
    if (inner) inner(reason);
  };
  return cb;
}

void VmmBackend::prepare(std::uint64_t owner, const InstanceSpec& next) {
  forget(owner);
  if (!snapshots_ || !options_.park_vmms) return;
  auto key = snapshot_key(options_, next);
  if (!key.ok()) return;
  parked_[owner] = Parked{next, *key, nullptr};
  park_waiting(*key);
}

void VmmBackend::forget(std::uint64_t owner) {
  auto it = parked_.find(owner);
  if (it == parked_.end()) return;
  if (it->second.vm) it->second.vm->destroy();
  parked_.erase(it);
}

void VmmBackend::park_waiting(const std::string& key) {
  // Spawning a jailed VMM takes the loop thread a while: never while an instance starts.
  if (starting_ > 0) return;
  for (auto& [owner, parked] : parked_) {
    if (parked.vm || (!key.empty() && parked.key != key) || !snapshots_->find(parked.key)) continue;
    parked.vm = make_vm(parked.spec, InstanceCallbacks{});
    parked.vm->begin_parked();
  }
}

std::vector<std::string> VmmBackend::reap_stale(const std::string& run_dir, const std::string& jail_base) {
  std::vector<std::string> report;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return report;
  for (const auto& entry : fs::directory_iterator(run_dir, ec)) {
    if (!entry.is_directory()) continue;
    std::string dir = entry.path().string();
    std::string pid_text = read_small(dir + "/vmm.pid", 32);
    long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    if (pid > 1) {
      // Only a process whose command line names this run dir's API socket is ours.
      std::string cmdline = read_small("/proc/" + std::to_string(pid) + "/cmdline");
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      // A jailed one names jail paths: "/kiln-vmm --api-sock /api.sock --id <this dir's name> ".
      const std::string jailed = std::string(" --api-sock ") + kJailApiSock + " --id " + entry.path().filename().string() + " ";
      if (cmdline.find(dir + "/api.sock") != std::string::npos || cmdline.find(jailed) != std::string::npos) {
        // Wait (bounded) until it is gone, so its run dir is not removed under it.
        UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0)));
        ::kill(static_cast<pid_t>(pid), SIGKILL);
        if (pidfd) {
          pollfd p{pidfd.get(), POLLIN, 0};
          (void)::poll(&p, 1, 5000);
        }
        report.push_back("killed leftover kiln-vmm pid " + std::to_string(pid) + " (" + entry.path().filename().string() + ")");
      }
    }
    fs::remove_all(dir, ec);
    report.push_back("removed run dir " + dir);
  }
  // Leftover jails (<base>/<exec-name>/<id>): their VMMs were killed above.
  VmmBackendOptions o;
  o.run_dir = run_dir;
  o.jail_base = jail_base;
  const std::string base = jail_base_dir(o);
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
  return report;
}

}  // namespace kiln::kilnd::pool
