// The lifecycle rules, driven without sockets or a controller.
#include "vmm/api/vm_state_machine.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln::vmm::api {
namespace {

std::string msg(const Status& s) { return s.ok() ? "" : s.error().message; }

TEST(VmStateMachine, FreshAllowsConfigurationStartAndLoad) {
  VmStateMachine sm;
  EXPECT_EQ(sm.state(), InstanceState::kNotStarted);
  EXPECT_EQ(instance_state_name(sm.state()), "Not started");
  EXPECT_TRUE(sm.check(Operation::kConfigure).ok());
  EXPECT_TRUE(sm.check(Operation::kInstanceStart).ok());
  EXPECT_TRUE(sm.check(Operation::kSnapshotLoad).ok());
  EXPECT_TRUE(sm.check(Operation::kFlushMetrics).ok());
  for (Operation op : {Operation::kSendCtrlAltDel, Operation::kPause, Operation::kResume, Operation::kSnapshotCreate,
                       Operation::kUpdateDevice}) {
    EXPECT_EQ(msg(sm.check(op)), kNotSupportedBeforeStart);
  }
}

TEST(VmStateMachine, ConfiguringForbidsSnapshotLoad) {
  VmStateMachine sm;
  sm.commit(Operation::kConfigure);
  EXPECT_TRUE(sm.boot_resources_configured());
  EXPECT_EQ(msg(sm.check(Operation::kSnapshotLoad)), kLoadAfterConfigure);
  EXPECT_TRUE(sm.check(Operation::kInstanceStart).ok());
}

TEST(VmStateMachine, RunningRefusesPreBootOperations) {
  VmStateMachine sm;
  sm.commit(Operation::kInstanceStart);
  EXPECT_EQ(sm.state(), InstanceState::kRunning);
  EXPECT_EQ(instance_state_name(sm.state()), "Running");
  EXPECT_EQ(msg(sm.check(Operation::kConfigure)), kNotSupportedAfterStart);
  EXPECT_EQ(msg(sm.check(Operation::kInstanceStart)), kNotSupportedAfterStart);
  EXPECT_EQ(msg(sm.check(Operation::kSnapshotLoad)), kNotSupportedAfterStart);
  EXPECT_TRUE(sm.check(Operation::kSendCtrlAltDel).ok());
  EXPECT_TRUE(sm.check(Operation::kPause).ok());
  EXPECT_TRUE(sm.check(Operation::kUpdateDevice).ok());
  EXPECT_EQ(msg(sm.check(Operation::kSnapshotCreate)), kSnapshotNeedsPause);
  EXPECT_TRUE(sm.is_noop(Operation::kResume));
  EXPECT_FALSE(sm.is_noop(Operation::kPause));
}

TEST(VmStateMachine, PauseResumeAndSnapshot) {
  VmStateMachine sm;
  sm.commit(Operation::kInstanceStart);
  sm.commit(Operation::kPause);
  EXPECT_EQ(sm.state(), InstanceState::kPaused);
  EXPECT_EQ(instance_state_name(sm.state()), "Paused");
  EXPECT_TRUE(sm.is_noop(Operation::kPause));
  EXPECT_TRUE(sm.check(Operation::kSnapshotCreate).ok());
  EXPECT_TRUE(sm.check(Operation::kUpdateDevice).ok());
  sm.commit(Operation::kUpdateDevice);
  EXPECT_EQ(sm.state(), InstanceState::kPaused);
  sm.commit(Operation::kSnapshotCreate);
  EXPECT_EQ(sm.state(), InstanceState::kPaused);
  sm.commit(Operation::kResume);
  EXPECT_EQ(sm.state(), InstanceState::kRunning);
}

TEST(VmStateMachine, SnapshotLoadLandsPausedOrRunning) {
  VmStateMachine paused;
  paused.commit(Operation::kSnapshotLoad, /*resumed=*/false);
  EXPECT_EQ(paused.state(), InstanceState::kPaused);
  EXPECT_EQ(msg(paused.check(Operation::kInstanceStart)), kNotSupportedAfterStart);
  EXPECT_EQ(msg(paused.check(Operation::kSnapshotLoad)), kNotSupportedAfterStart);
  VmStateMachine running;
  running.commit(Operation::kSnapshotLoad, /*resumed=*/true);
  EXPECT_EQ(running.state(), InstanceState::kRunning);
}

}  // namespace
}  // namespace kiln::vmm::api
