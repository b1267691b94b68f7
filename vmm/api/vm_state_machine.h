// The microVM lifecycle as the API sees it (Not started -> Running <-> Paused), with the
// rule for which operation each state allows. Pure: no I/O, driven by the router and tests.
#pragma once

#include <string_view>

#include "common/result.h"

namespace kiln::vmm::api {

enum class InstanceState { kNotStarted, kRunning, kPaused };

// Firecracker's InstanceInfo.state strings: "Not started", "Running", "Paused".
std::string_view instance_state_name(InstanceState state);

enum class Operation {
  kConfigure,       // pre-boot PUT/PATCH of a resource (boot-source, drives, machine-config, ...)
  kInstanceStart,
  kSendCtrlAltDel,
  kUpdateDevice,    // runtime PATCH of a device (a network interface's rate limiters)
  kPause,
  kResume,
  kSnapshotCreate,
  kSnapshotLoad,
  kFlushMetrics,    // any state
};

// Firecracker's error texts, so clients matching on them keep working.
inline constexpr std::string_view kNotSupportedAfterStart =
    "The requested operation is not supported after starting the microVM.";
inline constexpr std::string_view kNotSupportedBeforeStart =
    "The requested operation is not supported before starting the microVM.";
inline constexpr std::string_view kLoadAfterConfigure =
    "Loading a microVM snapshot not allowed after configuring boot-specific resources.";
inline constexpr std::string_view kSnapshotNeedsPause =
    "Create snapshot error: the microVM must be paused (PATCH /vm {\"state\": \"Paused\"}) first.";

class VmStateMachine {
 public:
  InstanceState state() const { return state_; }
  bool started() const { return state_ != InstanceState::kNotStarted; }
  // Set once a boot-specific resource was configured; snapshot load is refused after that.
  bool boot_resources_configured() const { return configured_; }

  // Whether `op` is allowed now (the error is the fault_message to return).
  Status check(Operation op) const;
  // True when `op` would not change anything (pausing a paused VM): no controller call.
  bool is_noop(Operation op) const;
  // Records that `op` succeeded. `resumed` matters for kSnapshotLoad only.
  void commit(Operation op, bool resumed = false);

 private:
  InstanceState state_ = InstanceState::kNotStarted;
  bool configured_ = false;
};

}  // namespace kiln::vmm::api
