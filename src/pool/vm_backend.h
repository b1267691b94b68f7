// VmBackend: how the instance pool starts and talks to one VM, so the pool's state machine can
// be tested with a fake. The real backend (VmmBackend) spawns kiln-vmm, drives its API and
// speaks the kiln-init protocol over the hybrid-vsock Unix sockets.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/protocol/launch_spec.h"
#include "common/protocol/messages.h"
#include "common/result.h"
#include "src/net/network_settings.h"
#include "src/server/net.h"

namespace kiln::kilnd::pool {

struct InstanceSpec {
  std::string instance_id;
  std::string function;
  std::uint64_t function_version = 0;
  protocol::LaunchSpec launch;  // the image config with the function's overrides applied
  std::string rootfs_path;  // ext4 image, attached read-only as the first drive (/dev/vda)
  // A lazy root disk instead (docs/lazy-images.md): the socket of kilnd's NBD server for the
  // image (host path), and the image's pinned chunk index digest (the disk in the snapshot key).
  std::string rootfs_nbd_socket;
  std::string rootfs_index_digest;
  std::uint32_t memory_mib = 128;
  std::uint32_t vcpus = 1;
  std::optional<net::EgressPolicy> network;  // nullopt: no interface (loopback only)
};

// Events from one instance. Always called on the loop thread, never from inside a call into
// the instance, and never after the instance object is destroyed.
struct InstanceCallbacks {
  std::function<void()> ready;  // the function's port accepts connections
  // The instance is gone or could not start (VMM died, command exited, not ready, boot
  // failed). Called at most once; not called for a stop() the pool asked for.
  std::function<void(const std::string& reason)> ended;
  std::function<void(const protocol::LogEvent&)> log;
  // Platform lines about the instance's start ("restored from snapshot ...", "snapshot load
  // failed: ...; cold boot") for the function's log.
  std::function<void(const std::string& text)> notice;
};

struct SnapshotStats {
  std::uint64_t created = 0, create_failures = 0, restores = 0, load_failures = 0;
  std::uint64_t parked_starting = 0, parked_ready = 0;  // VMMs started ahead (WarmStarts::prepare)
};

using ConnectHandler = std::function<void(Result<local::socket>)>;

class VmInstance {
 public:
  virtual ~VmInstance() = default;  // releases everything still held (kills the VMM)
  // A fresh byte stream to the guest's invocation port (kiln-init splices it to the server).
  virtual void connect(ConnectHandler done) = 0;
  // Liveness probe (the agent's status over the control port); false = unhealthy.
  virtual void check(std::function<void(bool healthy)> done) = 0;
  // Graceful stop (agent shutdown, then the VMM is killed); done() once every resource is
  // released. No `ended` callback follows.
  virtual void stop(std::function<void()> done) = 0;
  // Peak memory of the VM in MiB (0 when unknown), for REPORT lines.
  virtual std::uint64_t max_memory_mib() const { return 0; }
};

// Warm starts, a backend's optional extra: it may get ready for a pool's next instance ahead of
// time (kiln's VmmBackend parks a kiln-vmm with that instance's snapshot bound, so a restore is
// one API call). The pool finds it through VmBackend::warm_starts().
class WarmStarts {
 public:
  virtual ~WarmStarts() = default;
  // A hint from pool `owner` (one per function): the next instance it starts will have `next`
  // (its id included). Replaces the owner's earlier hint.
  virtual void prepare(std::uint64_t owner, const InstanceSpec& next) = 0;
  // Pool `owner` starts no more instances: release whatever prepare() holds for it.
  virtual void forget(std::uint64_t owner) = 0;
  // Warm-start snapshot counters.
  virtual SnapshotStats snapshot_stats() const = 0;
};

class VmBackend {
 public:
  virtual ~VmBackend() = default;
  // Starts booting; progress arrives through the callbacks (never synchronously).
  virtual std::unique_ptr<VmInstance> start(const InstanceSpec& spec, InstanceCallbacks callbacks) = 0;
  // The backend's warm starts, if it has them (null: every start is a plain one).
  virtual WarmStarts* warm_starts() { return nullptr; }
  virtual const WarmStarts* warm_starts() const { return nullptr; }
  // Warm-start snapshot counters (backends without warm starts: all zero).
  SnapshotStats snapshot_stats() const {
    const WarmStarts* w = warm_starts();
    return w ? w->snapshot_stats() : SnapshotStats{};
  }
};

}  // namespace kiln::kilnd::pool
