// Vm: one microVM of VmmBackend, an instance or a kiln-vmm parked for a future one. It owns the
// instance's resources (run dir), its VMM process (plain or jailed: the backend's launcher),
// the VMM's API client, the agent link and its lifecycle phase (instance_lifecycle.h). Cold
// boot, events and stop are in vm.cc; warm starts (restore from a snapshot, a parked VMM and
// its adoption, the first snapshot of a key) in vm_warm_start.cc.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "src/pool/agent_link.h"
#include "src/pool/instance_lifecycle.h"
#include "src/pool/instance_resources.h"
#include "src/pool/small_files.h"
#include "src/pool/snapshot_store.h"
#include "src/pool/vm_backend.h"
#include "src/pool/vmm_api_client.h"
#include "src/pool/vmm_backend_options.h"
#include "src/pool/vmm_process.h"

namespace kiln::kilnd::pool {

// What every Vm of one backend shares (and keeps alive while it runs).
struct VmShared {
  VmShared(asio::io_context& io, VmmBackendOptions options);
  asio::io_context& io;
  const VmmBackendOptions options;
  const std::unique_ptr<const VmmLauncher> launcher;  // plain or jailed, chosen once
  std::shared_ptr<SnapshotStore> store;  // null: snapshots off
  std::string store_error;  // why snapshots are off although a dir was given
  // The snapshot key of `spec` on this backend (its launcher's flavour included).
  Result<std::string> snapshot_key(const InstanceSpec& spec) const;
};

class Vm : public std::enable_shared_from_this<Vm> {
 public:
  using Clock = std::chrono::steady_clock;
  Vm(std::shared_ptr<const VmShared> shared, InstanceSpec spec, InstanceCallbacks cb, std::uint64_t index);

  void begin();  // restores from a snapshot when there is one, else cold-boots
  // A parked VMM for the instance `spec` names: spawned now with its snapshot bound, it waits
  // loaded and paused until adopt() or destroy().
  void begin_parked();
  // Takes the parked VMM over for `spec` (the same instance id and snapshot): true, and `cb`
  // moved in, when it is still usable; the restore then goes on with a resume.
  bool adopt(const InstanceSpec& spec, InstanceCallbacks& cb);
  bool parked_alive() const { return life_.parked(); }
  bool parked_ready() const { return life_.is(Phase::kParked); }
  // Called with the key of each snapshot this VM commits (the backend parks VMMs on it).
  void on_snapshot_taken(std::function<void(const std::string&)> f) { snapshot_taken_ = std::move(f); }

  void connect(ConnectHandler done);
  void check(std::function<void(bool)> done);
  void stop(std::function<void()> done);
  // The handle is gone: no more callbacks; kill and clean up now.
  void destroy();
  // Peak memory of the VMM; `fresh` false: at most one /proc read a second.
  std::uint64_t max_memory_mib(bool fresh = true);

 private:
  bool gone() const { return life_.gone(); }
  // Moves on to `next` unless the instance is gone meanwhile (false: stop here).
  bool advance(Phase next);
  void fail(const std::string& reason);  // ended on its own: report once, kill the VMM
  void notice(const std::string& text);
  void mark_ready();
  void cleanup();
  void release_vmm();  // kill and reap the VMM, close its link, release its jail

  static asio::awaitable<void> boot(std::shared_ptr<Vm> self);
  asio::awaitable<Status> boot_steps();
  asio::awaitable<Status> cold_boot_steps();
  // A new VMM process (snapshot files bound when restoring), then the agent's event listener.
  asio::awaitable<Status> start_vmm(const SnapshotPaths* snapshot);
  void on_vmm_exit(const std::string& how);
  void on_event(const protocol::Frame& f);
  static asio::awaitable<void> send_spec(std::shared_ptr<Vm> self);
  static asio::awaitable<void> do_stop(std::shared_ptr<Vm> self, std::function<void()> done, bool graceful);

  // Warm starts (vm_warm_start.cc).
  asio::awaitable<Status> restore_steps(const SnapshotPaths& snap, bool* refused);
  // A parked guest runs its restore once ahead, off the path: resumed, an identity without a
  // name or instance (kiln-init takes the vsock reset, fresh entropy and its network refresh),
  // paused again (its time stands still until the adoption's resume). What it touched is mapped
  // by then: the adoption's resume and identity take far fewer of the guest's first-touch faults.
  asio::awaitable<Status> warm_parked(Clock::time_point deadline);
  asio::awaitable<Status> wait_for_adoption();
  // On the first ready of a key with no snapshot yet: take it (true) before serving.
  bool snapshot_first_ready();
  static asio::awaitable<void> snapshot_then_ready(std::shared_ptr<Vm> self, SnapshotPaths tmp);
  void restore_phase(const std::string& name);

  std::shared_ptr<const VmShared> shared_;
  asio::io_context& io_;
  const VmmBackendOptions& o_;
  InstanceSpec spec_;
  InstanceCallbacks cb_;
  const std::uint64_t index_;  // the instance's sequence number (its jail's uid/gid)
  Lifecycle life_;
  InstanceResources resources_;
  std::unique_ptr<VmmProcess> vmm_;  // the current VMM process (a failed restore's is replaced)
  std::optional<VmmApi> api_;
  std::shared_ptr<AgentLink> link_;
  asio::steady_timer boot_timer_;  // InstanceStart to ready
  asio::steady_timer exit_wait_;  // a graceful stop waits on it for the VMM's exit
  asio::steady_timer adopt_gate_;  // a parked VMM waits on it for adopt()
  std::uint64_t peak_mib_ = 0;
  std::optional<Clock::time_point> peak_read_at_;

  // Warm starts.
  std::string key_;  // this instance's snapshot key ("" = none)
  bool parked_start_ = false;  // spawned parked: loads paused, resumes once adopted
  FileId bound_state_, bound_mem_;  // the snapshot files a parked VMM bound
  std::string restore_phases_;  // "spawn N, api up N, load N, identity N" (ms) for the restore notice
  Clock::time_point restore_t0_{}, phase_start_{};  // the restore's start (a parked VMM's: its adoption)
  std::function<void(const std::string&)> snapshot_taken_;
};

}  // namespace kiln::kilnd::pool
