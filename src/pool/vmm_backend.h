// VmmBackend: the real VmBackend. Per instance a Vm (vm.h) creates a run dir, starts kiln-vmm
// (plain, or in src/jail's jail with `jail` on: jailed_vmm.h), configures it over the
// Firecracker-compatible API (machine-config, boot-source, drives, vsock, InstanceStart), sends
// kiln-init the launch spec on control port 10000 when the agent says hello, and turns the
// agent's events (ready, log, exit) and the VMM's own exit into InstanceCallbacks.
// With a snapshot dir it also offers warm starts (WarmStarts): the first instance of a VM shape
// is paused once ready and snapshotted (PUT /snapshot/create), later ones start with PUT
// /snapshot/load and get their own identity (instance id, hostname, wall clock, fresh entropy)
// over the control port; a snapshot that does not load is set aside and that instance
// cold-boots. A pool's next instance can have a kiln-vmm parked ahead with its snapshot loaded.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/pool/vm_backend.h"
#include "src/pool/vmm_backend_options.h"

namespace kiln::kilnd::pool {

class Vm;  // one microVM (vm.h)
struct VmShared;

class VmmBackend : public VmBackend, public WarmStarts {
 public:
  VmmBackend(asio::io_context& io, VmmBackendOptions options);
  ~VmmBackend() override;  // kills the parked VMMs
  VmmBackend(const VmmBackend&) = delete;
  VmmBackend& operator=(const VmmBackend&) = delete;
  // Adopts the VMM parked for `spec.instance_id` when there is one (restore = resume + identity).
  std::unique_ptr<VmInstance> start(const InstanceSpec& spec, InstanceCallbacks callbacks) override;
  WarmStarts* warm_starts() override { return this; }
  const WarmStarts* warm_starts() const override { return this; }

  // Parks a kiln-vmm for `next` once a snapshot for its key exists (now, or when an instance
  // commits one); replaces the owner's parked VMM.
  void prepare(std::uint64_t owner, const InstanceSpec& next) override;
  void forget(std::uint64_t owner) override;
  // Snapshot counters (all zero without a snapshot dir) and the parked VMMs.
  SnapshotStats snapshot_stats() const override;

  // Restart recovery: kills kiln-vmm processes an earlier kilnd left running (found through
  // <run_dir>/*/vmm.pid, checked against /proc/<pid>/cmdline), removes their run dirs, and
  // removes leftover jails (<jail_base>/<exec-name>/<id> and their cgroups; empty jail_base:
  // <run_dir>/../jail).
  static std::vector<std::string> reap_stale(const std::string& run_dir, const std::string& jail_base = "");

 private:
  asio::io_context& io_;
  std::shared_ptr<const VmShared> shared_;  // options, launcher, snapshot store (Vms hold it too)
  std::uint64_t next_index_ = 0;  // instance sequence number (jail uid/gid)
  struct Parked {
    InstanceSpec spec;  // the instance it is for
    std::string key;  // its snapshot key
    std::shared_ptr<Vm> vm;  // null until a snapshot for `key` exists
  };
  std::map<std::uint64_t, Parked> parked_;  // by pool (prepare's owner)
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // Vm callbacks check it

  std::shared_ptr<Vm> make_vm(const InstanceSpec& spec, InstanceCallbacks callbacks);
  // Parks a VMM for every entry waiting on `key` ("": on any key) whose snapshot exists, unless
  // an instance is starting.
  void park_waiting(const std::string& key);
  // Wraps an instance's callbacks so that it counts in starting_ until ready, ended or dropped.
  InstanceCallbacks track_start(InstanceCallbacks cb);
  std::size_t starting_ = 0;  // instances between start() and ready/ended/dropped
};

}  // namespace kiln::kilnd::pool
