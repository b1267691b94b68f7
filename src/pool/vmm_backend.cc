// The real backend: instances as Vms, parked VMMs per pool, restart recovery.
#include "src/pool/vmm_backend.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/io.h"
#include "common/unique_fd.h"
#include "src/pool/jailed_vmm.h"
#include "src/pool/small_files.h"
#include "src/pool/vm.h"

namespace kiln::kilnd::pool {
namespace {

namespace fs = std::filesystem;

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

VmmBackend::VmmBackend(asio::io_context& io, VmmBackendOptions options)
    : io_(io), shared_(std::make_shared<const VmShared>(io, std::move(options))) {}

VmmBackend::~VmmBackend() {
  for (auto& [owner, parked] : parked_) {
    if (parked.vm) parked.vm->destroy();
  }
}

SnapshotStats VmmBackend::snapshot_stats() const {
  SnapshotStats s = shared_->store ? shared_->store->stats() : SnapshotStats{};
  for (const auto& [owner, parked] : parked_) {
    if (!parked.vm || !parked.vm->parked_alive()) continue;
    ++(parked.vm->parked_ready() ? s.parked_ready : s.parked_starting);
  }
  return s;
}

std::shared_ptr<Vm> VmmBackend::make_vm(const InstanceSpec& spec, InstanceCallbacks callbacks) {
  auto vm = std::make_shared<Vm>(shared_, spec, std::move(callbacks), next_index_++);
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
  if (!shared_->store || !shared_->options.park_vmms) return;
  auto key = shared_->snapshot_key(next);
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
    if (parked.vm || (!key.empty() && parked.key != key) || !shared_->store->find(parked.key)) continue;
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
    const std::string id = entry.path().filename().string();
    // No (readable) pid file: no VMM was started, or its pid is unknown; the dir goes anyway.
    auto pid_text = io::read_file(dir + "/vmm.pid", 32);
    long pid = pid_text.ok() ? std::strtol(pid_text->c_str(), nullptr, 10) : 0;
    if (pid > 1) {
      // Only a process whose command line names this run dir's API socket (plain) or this
      // instance's jail paths (jailed) is ours.
      // Unreadable: no such process (any more), so nothing to kill.
      auto read = io::read_file("/proc/" + std::to_string(pid) + "/cmdline", 64 * 1024);
      std::string cmdline = read.ok() ? std::move(*read) : std::string();
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      if (cmdline.find(dir + "/api.sock") != std::string::npos || is_jailed_vmm_cmdline(cmdline, id)) {
        // Wait (bounded) until it is gone, so its run dir is not removed under it.
        UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0)));
        ::kill(static_cast<pid_t>(pid), SIGKILL);
        if (pidfd) {
          pollfd p{pidfd.get(), POLLIN, 0};
          (void)::poll(&p, 1, 5000);
        }
        report.push_back("killed leftover kiln-vmm pid " + std::to_string(pid) + " (" + id + ")");
      }
    }
    fs::remove_all(dir, ec);
    report.push_back("removed run dir " + dir);
  }
  // Leftover jails (<base>/<exec-name>/<id>): their VMMs were killed above.
  VmmBackendOptions o;
  o.run_dir = run_dir;
  o.jail_base = jail_base;
  remove_leftover_jails(jail_base_dir(o), report);
  return report;
}

}  // namespace kiln::kilnd::pool
