// Per-VM cgroups: where the limits go (v2 where a cgroup2 mount offers the controllers, v1
// otherwise), creating <hierarchy>/<parent>/<id>, writing the limits, and removing it again.
// Firecracker's jailer: it "parses /proc/mounts to detect where each of the controllers ... can be found".
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "src/jail/jail_spec.h"

namespace kiln::jail {

// One cgroup directory to create and the files to write in it.
struct CgroupDir {
  std::string base;                      // the hierarchy's mount point (+ caller's cgroup if nesting)
  std::string relative;                  // <parent>/<id>
  std::vector<std::string> controllers;  // v2: enabled in every ancestor's cgroup.subtree_control
  std::vector<CgroupSetting> settings;   // in write order
  std::string path() const { return base + "/" + relative; }
};

struct CgroupPlan {
  CgroupVersion version = CgroupVersion::kAuto;  // resolved: kV1 or kV2 (kAuto when empty)
  std::vector<CgroupDir> dirs;                   // empty: nothing to limit, no cgroup made
};

// Where the host's files are; tests point these at fixtures.
struct CgroupHost {
  std::string mounts = "/proc/self/mounts";
  std::string self_cgroup = "/proc/self/cgroup";
};

// The files a CgroupLimits becomes in the given hierarchy version (kV1 or kV2).
std::vector<CgroupSetting> limit_settings(const CgroupLimits& limits, CgroupVersion version);

// Resolves the version and the directories; reads the host's mounts, creates nothing.
Result<CgroupPlan> plan_cgroups(const JailSpec& spec, const CgroupHost& host = {});

// Creates the directories and writes the settings; returns one O_CLOEXEC fd of each
// directory's cgroup.procs (writing "0" there moves the writer in).
Result<std::vector<UniqueFd>> apply_cgroups(const CgroupPlan& plan);

// Removes <hierarchy>/<parent>/<id> from every mounted hierarchy that has it (missing is fine).
// The VM's processes must have exited.
Status remove_cgroups(const JailSpec& spec, const CgroupHost& host = {});

}  // namespace kiln::jail
