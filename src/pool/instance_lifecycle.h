// The lifecycle of one VmmBackend instance (or parked VMM) as explicit phases with the allowed
// transitions in one table; a transition outside it is a logic error and aborts loudly.
#pragma once

namespace kiln::kilnd::pool {

enum class Phase {
  kCreated,  // constructed, nothing started yet
  kParking,  // a parked VMM (no instance yet): kiln-vmm starting, its snapshot loading paused
  kParked,  // ... loaded, waiting for an instance to adopt it
  kRestoring,  // an instance's kiln-vmm starting and loading a snapshot (or resuming a parked one)
  kIdentifying,  // the restored guest runs: kiln-init gets this instance's identity
  kConfiguring,  // cold boot: kiln-vmm starting and being configured over its API
  kBooting,  // InstanceStart sent: waiting for kiln-init's hello (the boot deadline runs)
  kLaunching,  // launch spec sent: waiting for the function's ready
  kSnapshotting,  // first ready of its snapshot key: paused for PUT /snapshot/create, then ready
  kReady,  // serving invocations
  kEnded,  // ended on its own (reported once through `ended`); its VMM is killed
  kStopping,  // stop() asked: graceful shutdown, then every resource released
  kDestroyed,  // the handle is gone: no callbacks any more, everything released
};

const char* phase_name(Phase p);

// The table: whether an instance in `from` may move to `to`.
//   created     -> parking | restoring | configuring
//   parking     -> parked | restoring (adopted while loading)
//   parked      -> restoring (adopted)
//   restoring   -> identifying | configuring (the snapshot did not load: cold boot)
//   identifying -> ready | configuring (the identity failed: cold boot)
//   configuring -> booting | launching (kiln-init said hello before InstanceStart's answer)
//   booting     -> launching
//   launching   -> snapshotting | ready
//   snapshotting-> ready
// and from every phase before ended: -> ended; from every phase an instance has (not the two
// parked ones) and from ended: -> stopping; from every phase but destroyed: -> destroyed.
bool transition_allowed(Phase from, Phase to);

class Lifecycle {
 public:
  Phase phase() const { return phase_; }
  bool is(Phase p) const { return phase_ == p; }
  // Moves to `next`; aborts (naming both phases) when the table does not allow it.
  void to(Phase next);
  // Ended, stopping or destroyed: no more progress, no new connections.
  bool gone() const;
  // A parked VMM no instance has adopted yet.
  bool parked() const { return phase_ == Phase::kParking || phase_ == Phase::kParked; }
  // kiln-init has its launch spec or identity and is still up: a stop can ask it to shut down.
  bool agent_launched() const;

 private:
  Phase phase_ = Phase::kCreated;
};

}  // namespace kiln::kilnd::pool
