// The instance lifecycle's transition table (see instance_lifecycle.h).
#include "src/pool/instance_lifecycle.h"

#include <cstdio>
#include <cstdlib>

namespace kiln::kilnd::pool {

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kCreated: return "created";
    case Phase::kParking: return "parking";
    case Phase::kParked: return "parked";
    case Phase::kRestoring: return "restoring";
    case Phase::kIdentifying: return "identifying";
    case Phase::kConfiguring: return "configuring";
    case Phase::kBooting: return "booting";
    case Phase::kLaunching: return "launching";
    case Phase::kSnapshotting: return "snapshotting";
    case Phase::kReady: return "ready";
    case Phase::kEnded: return "ended";
    case Phase::kStopping: return "stopping";
    case Phase::kDestroyed: return "destroyed";
  }
  return "unknown";
}

bool transition_allowed(Phase from, Phase to) {
  using P = Phase;
  switch (to) {
    case P::kDestroyed: return from != P::kDestroyed;
    case P::kStopping: return from != P::kParking && from != P::kParked && from != P::kStopping && from != P::kDestroyed;
    case P::kEnded: return from != P::kEnded && from != P::kStopping && from != P::kDestroyed;
    default: break;
  }
  switch (from) {
    case P::kCreated: return to == P::kParking || to == P::kRestoring || to == P::kConfiguring;
    case P::kParking: return to == P::kParked || to == P::kRestoring;
    case P::kParked: return to == P::kRestoring;
    case P::kRestoring: return to == P::kIdentifying || to == P::kConfiguring;
    case P::kIdentifying: return to == P::kReady || to == P::kConfiguring;
    case P::kConfiguring: return to == P::kBooting || to == P::kLaunching;
    case P::kBooting: return to == P::kLaunching;
    case P::kLaunching: return to == P::kSnapshotting || to == P::kReady;
    case P::kSnapshotting: return to == P::kReady;
    case P::kReady:
    case P::kEnded:
    case P::kStopping:
    case P::kDestroyed: return false;
  }
  return false;
}

void Lifecycle::to(Phase next) {
  if (!transition_allowed(phase_, next)) {
    std::fprintf(stderr, "kilnd: instance lifecycle: %s -> %s is not an allowed transition\n", phase_name(phase_),
                 phase_name(next));
    std::abort();
  }
  phase_ = next;
}

bool Lifecycle::gone() const {
  return phase_ == Phase::kEnded || phase_ == Phase::kStopping || phase_ == Phase::kDestroyed;
}

bool Lifecycle::agent_launched() const {
  return phase_ == Phase::kIdentifying || phase_ == Phase::kLaunching || phase_ == Phase::kSnapshotting ||
         phase_ == Phase::kReady;
}

}  // namespace kiln::kilnd::pool
