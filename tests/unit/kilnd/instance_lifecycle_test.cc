// The instance lifecycle: every allowed transition is in the table and taken without complaint,
// every other one is refused, and taking a refused one aborts loudly (naming both phases).
#include "src/pool/instance_lifecycle.h"

#include <gtest/gtest.h>

#include <set>
#include <utility>
#include <vector>

namespace kiln::kilnd::pool {
namespace {

using P = Phase;

const std::vector<Phase> kAll = {P::kCreated, P::kParking,      P::kParked, P::kRestoring, P::kIdentifying,
                                 P::kConfiguring, P::kBooting,  P::kLaunching, P::kSnapshotting, P::kReady,
                                 P::kEnded,   P::kStopping,     P::kDestroyed};

// The table as the header writes it down, spelled out pair by pair.
std::set<std::pair<Phase, Phase>> expected_transitions() {
  std::set<std::pair<Phase, Phase>> t = {
      {P::kCreated, P::kParking},         {P::kCreated, P::kRestoring},      {P::kCreated, P::kConfiguring},
      {P::kParking, P::kParked},          {P::kParking, P::kRestoring},      {P::kParked, P::kRestoring},
      {P::kRestoring, P::kIdentifying},   {P::kRestoring, P::kConfiguring},  {P::kIdentifying, P::kReady},
      {P::kIdentifying, P::kConfiguring}, {P::kConfiguring, P::kBooting},    {P::kConfiguring, P::kLaunching},
      {P::kBooting, P::kLaunching},       {P::kLaunching, P::kSnapshotting}, {P::kLaunching, P::kReady},
      {P::kSnapshotting, P::kReady},
  };
  for (Phase from : kAll) {
    if (from != P::kEnded && from != P::kStopping && from != P::kDestroyed) t.insert({from, P::kEnded});
    if (from != P::kParking && from != P::kParked && from != P::kStopping && from != P::kDestroyed) {
      t.insert({from, P::kStopping});
    }
    if (from != P::kDestroyed) t.insert({from, P::kDestroyed});
  }
  return t;
}

TEST(InstanceLifecycle, TableAllowsExactlyTheDocumentedTransitions) {
  const auto allowed = expected_transitions();
  for (Phase from : kAll) {
    for (Phase to : kAll) {
      EXPECT_EQ(transition_allowed(from, to), allowed.count({from, to}) == 1)
          << phase_name(from) << " -> " << phase_name(to);
    }
  }
}

// A phase reached through allowed transitions only.
Lifecycle reach(const std::vector<Phase>& path) {
  Lifecycle life;
  for (Phase p : path) life.to(p);
  return life;
}

TEST(InstanceLifecycle, ColdBootSnapshotThenStop) {
  Lifecycle life;
  EXPECT_TRUE(life.is(P::kCreated));
  EXPECT_FALSE(life.gone());
  for (Phase p : {P::kConfiguring, P::kBooting, P::kLaunching, P::kSnapshotting, P::kReady}) {
    life.to(p);
    EXPECT_EQ(life.phase(), p);
    EXPECT_FALSE(life.gone());
    EXPECT_FALSE(life.parked());
  }
  EXPECT_TRUE(life.agent_launched());
  life.to(P::kStopping);
  EXPECT_TRUE(life.gone());
  EXPECT_FALSE(life.agent_launched());
  life.to(P::kDestroyed);
  EXPECT_TRUE(life.gone());
}

TEST(InstanceLifecycle, ParkedAdoptedRestoreAndFallbackToColdBoot) {
  Lifecycle parked = reach({P::kParking});
  EXPECT_TRUE(parked.parked());
  parked.to(P::kParked);
  EXPECT_TRUE(parked.parked());
  parked.to(P::kRestoring);  // adopted
  EXPECT_FALSE(parked.parked());
  EXPECT_FALSE(parked.agent_launched());
  parked.to(P::kIdentifying);
  EXPECT_TRUE(parked.agent_launched());
  parked.to(P::kReady);

  // A restore whose identity fails cold-boots; one whose load fails too.
  Lifecycle fallback = reach({P::kRestoring, P::kIdentifying, P::kConfiguring, P::kLaunching, P::kReady});
  EXPECT_TRUE(fallback.is(P::kReady));
  Lifecycle refused = reach({P::kRestoring, P::kConfiguring, P::kBooting});
  EXPECT_FALSE(refused.agent_launched());
}

TEST(InstanceLifecycle, EndedThenStoppedOrDropped) {
  Lifecycle life = reach({P::kConfiguring, P::kBooting, P::kEnded});
  EXPECT_TRUE(life.gone());
  EXPECT_FALSE(life.agent_launched());  // a stop after the end asks nothing of the agent
  life.to(P::kStopping);
  life.to(P::kDestroyed);
  Lifecycle parked_ended = reach({P::kParking, P::kParked, P::kEnded, P::kDestroyed});
  EXPECT_TRUE(parked_ended.gone());
}

TEST(InstanceLifecycleDeathTest, RefusedTransitionsAbortNamingBothPhases) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(reach({P::kReady}), "created -> ready is not an allowed transition");
  EXPECT_DEATH(reach({P::kConfiguring, P::kReady}), "configuring -> ready");
  EXPECT_DEATH(reach({P::kParking, P::kStopping}), "parking -> stopping");  // a parked VMM has no handle to stop
  EXPECT_DEATH(reach({P::kConfiguring, P::kEnded, P::kReady}), "ended -> ready");
  EXPECT_DEATH(reach({P::kConfiguring, P::kStopping, P::kEnded}), "stopping -> ended");
  EXPECT_DEATH(reach({P::kDestroyed, P::kDestroyed}), "destroyed -> destroyed");
  EXPECT_DEATH(reach({P::kRestoring, P::kParked}), "restoring -> parked");
}

}  // namespace
}  // namespace kiln::kilnd::pool
