// Allowed operations per lifecycle state (Firecracker's pre-boot / runtime split).
#include "vmm/api/vm_state_machine.h"

#include <string>

namespace kiln::vmm::api {

std::string_view instance_state_name(InstanceState state) {
  switch (state) {
    case InstanceState::kNotStarted: return "Not started";
    case InstanceState::kRunning: return "Running";
    case InstanceState::kPaused: return "Paused";
  }
  return "Not started";
}

Status VmStateMachine::check(Operation op) const {
  switch (op) {
    case Operation::kConfigure:
    case Operation::kInstanceStart:
      if (started()) return make_error(std::string(kNotSupportedAfterStart));
      return ok_status();
    case Operation::kSnapshotLoad:
      if (started()) return make_error(std::string(kNotSupportedAfterStart));
      if (configured_) return make_error(std::string(kLoadAfterConfigure));
      return ok_status();
    case Operation::kSendCtrlAltDel:
    case Operation::kUpdateDevice:
    case Operation::kPause:
    case Operation::kResume:
      if (!started()) return make_error(std::string(kNotSupportedBeforeStart));
      return ok_status();
    case Operation::kSnapshotCreate:
      if (!started()) return make_error(std::string(kNotSupportedBeforeStart));
      if (state_ != InstanceState::kPaused) return make_error(std::string(kSnapshotNeedsPause));
      return ok_status();
    case Operation::kFlushMetrics:
      return ok_status();
  }
  return make_error("unknown operation");
}

bool VmStateMachine::is_noop(Operation op) const {
  return (op == Operation::kPause && state_ == InstanceState::kPaused) ||
         (op == Operation::kResume && state_ == InstanceState::kRunning);
}

void VmStateMachine::commit(Operation op, bool resumed) {
  switch (op) {
    case Operation::kConfigure: configured_ = true; break;
    case Operation::kInstanceStart: state_ = InstanceState::kRunning; break;
    case Operation::kPause: state_ = InstanceState::kPaused; break;
    case Operation::kResume: state_ = InstanceState::kRunning; break;
    case Operation::kSnapshotLoad:
      state_ = resumed ? InstanceState::kRunning : InstanceState::kPaused;
      break;
    case Operation::kSendCtrlAltDel:
    case Operation::kUpdateDevice:
    case Operation::kSnapshotCreate:
    case Operation::kFlushMetrics:
      break;
  }
}

}  // namespace kiln::vmm::api
