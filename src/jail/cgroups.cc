// Per-VM cgroups (cgroup v1 and v2, Linux Documentation/admin-guide/cgroup-v1 and cgroup-v2.rst):
// plan from the mount table, create and write, remove after the VM ended.
#include "src/jail/cgroups.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "src/jail/host_files.h"

namespace kiln::jail {
namespace {

constexpr uint64_t kCpuPeriodUs = 100'000;

std::string controller_of(const std::string& file) { return file.substr(0, file.find('.')); }

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; std::getline(in, w, sep);) out.push_back(w);
  return out;
}

// The caller's own cgroup in one hierarchy, from /proc/self/cgroup ("id:controllers:path").
std::string own_cgroup(const std::string& self_cgroup, const MountEntry& m) {
  std::istringstream lines(self_cgroup);
  for (std::string line; std::getline(lines, line);) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string ctrls = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (path == "/") path.clear();
    if (m.fstype == "cgroup2") {
      if (line.substr(0, a) == "0" && ctrls.empty()) return path;
    } else if (!ctrls.empty() && has(m.options, split(ctrls, ',').front())) {
      return path;
    }
  }
  return "";
}

struct Hierarchies {
  std::vector<MountEntry> v1;
  std::vector<MountEntry> v2;
};

Result<Hierarchies> read_hierarchies(const CgroupHost& host) {
  KILN_ASSIGN_OR_RETURN(std::string text, read_text_file(host.mounts));
  Hierarchies h;
  for (auto& m : parse_mounts(text)) {
    if (m.fstype == "cgroup") h.v1.push_back(m);
    if (m.fstype == "cgroup2") h.v2.push_back(m);
  }
  return h;
}

const MountEntry* v1_mount_for(const Hierarchies& h, const std::string& controller) {
  for (const auto& m : h.v1)
    if (has(m.options, controller)) return &m;
  return nullptr;
}

// The first cgroup2 mount whose root offers every controller, or null.
const MountEntry* v2_mount_for(const Hierarchies& h, const std::vector<std::string>& controllers) {
  for (const auto& m : h.v2) {
    auto text = read_text_file(m.target + "/cgroup.controllers");
    if (!text.ok()) continue;
    auto offered = split_ws(*text);
    if (std::all_of(controllers.begin(), controllers.end(), [&](const auto& c) { return has(offered, c); })) return &m;
  }
  return nullptr;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string base_of(const JailSpec& spec, const CgroupHost& host, const MountEntry& m) {
  if (!spec.nest_under_caller_cgroup) return m.target;
  auto self = read_text_file(host.self_cgroup);
  return m.target + (self.ok() ? own_cgroup(*self, m) : "");
}

}  // namespace

std::vector<CgroupSetting> limit_settings(const CgroupLimits& limits, CgroupVersion version) {
  std::vector<CgroupSetting> out;
  const bool v2 = version == CgroupVersion::kV2;
  if (limits.memory_bytes)
    out.push_back({v2 ? "memory.max" : "memory.limit_in_bytes", std::to_string(*limits.memory_bytes)});
  if (limits.cpu_millicores) {
    // quota per period: 1000 millicores = one full period of CPU time.
    const uint64_t quota = kCpuPeriodUs * *limits.cpu_millicores / 1000;
    if (v2) {
      out.push_back({"cpu.max", std::to_string(quota) + " " + std::to_string(kCpuPeriodUs)});
    } else {
      out.push_back({"cpu.cfs_period_us", std::to_string(kCpuPeriodUs)});
      out.push_back({"cpu.cfs_quota_us", std::to_string(quota)});
    }
  }
  if (limits.pids_max) out.push_back({"pids.max", std::to_string(*limits.pids_max)});
  return out;
}

Result<CgroupPlan> plan_cgroups(const JailSpec& spec, const CgroupHost& host) {
  // Controllers are named the same in both versions, so the set is known before the version.
  std::vector<std::string> controllers;
  auto want = [&](const std::string& c) {
    if (!has(controllers, c)) controllers.push_back(c);
  };
  for (const auto& s : limit_settings(spec.limits, CgroupVersion::kV2)) want(controller_of(s.file));
  for (const auto& s : spec.cgroup_settings) want(controller_of(s.file));
  CgroupPlan plan;
  if (controllers.empty()) return plan;

  KILN_ASSIGN_OR_RETURN(Hierarchies h, read_hierarchies(host));
  const std::string relative = parent_cgroup(spec) + "/" + spec.id;
  CgroupVersion version = spec.cgroup_version;
  const MountEntry* v2 = v2_mount_for(h, controllers);
  if (version == CgroupVersion::kAuto) version = v2 ? CgroupVersion::kV2 : CgroupVersion::kV1;
  plan.version = version;

  if (version == CgroupVersion::kV2) {
    if (!v2)
      return make_error("cgroup v2: no mounted cgroup2 hierarchy offers the controllers " + join(controllers, ", ") +
                        (h.v2.empty() ? " (cgroup2 is not mounted)" : ""));
    CgroupDir d{base_of(spec, host, *v2), relative, controllers, limit_settings(spec.limits, version)};
    d.settings.insert(d.settings.end(), spec.cgroup_settings.begin(), spec.cgroup_settings.end());
    plan.dirs.push_back(std::move(d));
    return plan;
  }

  // v1: one directory per hierarchy; controllers co-mounted (cpu,cpuacct) share it.
  std::map<std::string, CgroupDir> by_mount;
  std::vector<std::string> order;
  auto add = [&](const CgroupSetting& s) -> Status {
    const std::string c = controller_of(s.file);
    const MountEntry* m = v1_mount_for(h, c);
    if (!m) return make_error("cgroup v1: no hierarchy with the '" + c + "' controller is mounted (for " + s.file + ")");
    auto [it, fresh] = by_mount.try_emplace(m->target, CgroupDir{base_of(spec, host, *m), relative, {}, {}});
    if (fresh) order.push_back(m->target);
    if (!has(it->second.controllers, c)) it->second.controllers.push_back(c);
    it->second.settings.push_back(s);
    return ok_status();
  };
  for (const auto& s : limit_settings(spec.limits, version)) KILN_TRY(add(s));
  for (const auto& s : spec.cgroup_settings) KILN_TRY(add(s));
  for (const auto& t : order) plan.dirs.push_back(std::move(by_mount.at(t)));
  return plan;
}

Result<std::vector<UniqueFd>> apply_cgroups(const CgroupPlan& plan) {
  std::vector<UniqueFd> procs;
  for (const auto& d : plan.dirs) {
    std::string path = d.base;
    auto parts = split(d.relative, '/');
    for (size_t i = 0; i < parts.size(); ++i) {
      // v2: a controller is usable in a cgroup only when its parent enabled it for children.
      if (plan.version == CgroupVersion::kV2) {
        std::string enable;
        for (const auto& c : d.controllers) enable += (enable.empty() ? "+" : " +") + c;
        if (auto s = write_text_file(path + "/cgroup.subtree_control", enable); !s.ok())
          return s.error().wrap("cgroup v2: enabling controllers");
      }
      path += "/" + parts[i];
      if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return errno_error("cgroup: mkdir " + path);
    }
    for (const auto& s : d.settings)
      if (auto st = write_text_file(path + "/" + s.file, s.value); !st.ok()) return st.error().wrap("cgroup");
    UniqueFd fd(::open((path + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return errno_error("cgroup: open " + path + "/cgroup.procs");
    procs.push_back(std::move(fd));
  }
  return procs;
}

Status remove_cgroups(const JailSpec& spec, const CgroupHost& host) {
  KILN_ASSIGN_OR_RETURN(Hierarchies h, read_hierarchies(host));
  const std::string relative = parent_cgroup(spec) + "/" + spec.id;
  std::vector<std::string> done;
  Status result;
  auto remove = [&](const MountEntry& m) {
    const std::string path = base_of(spec, host, m) + "/" + relative;
    if (has(done, path)) return;
    done.push_back(path);
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT && result.ok())
      result = errno_error("cgroup: rmdir " + path + (errno == EBUSY ? " (processes still in it)" : ""));
  };
  for (const auto& m : h.v1) remove(m);
  for (const auto& m : h.v2) remove(m);
  return result;
}

}  // namespace kiln::jail
