// build_exec_plan: environment defaults (later entries override earlier ones, like execve
// callers expect) and the PATH search done from the spec's own PATH.
#include "guest-agent/agent/exec_plan.h"

#include <sys/stat.h>

namespace kiln::agent {

namespace {

std::string env_name(const std::string& entry) { return entry.substr(0, entry.find('=')); }

// (Spelled out: GCC 12 raises a false -Wrestrict on `"literal" + std::string` at -O2.)
std::string concat(std::string_view a, std::string_view b) {
  std::string s;
  s.reserve(a.size() + b.size());
  s.append(a);
  s.append(b);
  return s;
}

}  // namespace

bool is_executable_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  return S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0;
}

Result<ExecPlan> build_exec_plan(const protocol::LaunchSpec& spec, const Credentials& creds,
                                 const std::function<bool(const std::string&)>& is_executable) {
  KILN_TRY(protocol::validate_launch_spec(spec));
  ExecPlan plan;
  plan.argv = spec.argv;
  plan.working_dir = spec.working_dir;
  plan.creds = creds;

  // Deduplicate by name: the last occurrence wins, first-seen order is kept.
  std::vector<std::string> env;
  for (const auto& e : spec.env) {
    std::string name = env_name(e);
    bool replaced = false;
    for (auto& existing : env) {
      if (env_name(existing) == name) {
        existing = e;
        replaced = true;
        break;
      }
    }
    if (!replaced) env.push_back(e);
  }
  auto has = [&env](const std::string& name) {
    for (const auto& e : env) {
      if (env_name(e) == name) return true;
    }
    return false;
  };
  if (!has("PATH")) env.push_back(concat("PATH=", kDefaultPath));
  if (!has("HOME")) env.push_back(concat("HOME=", creds.home));
  if (!has("HOSTNAME")) env.push_back(concat("HOSTNAME=", spec.hostname));
  plan.env = std::move(env);

  const std::string& cmd = spec.argv[0];
  if (cmd.find('/') != std::string::npos) {
    plan.program = cmd;
    return plan;
  }
  std::string path = kDefaultPath;
  for (const auto& e : plan.env) {
    if (env_name(e) == "PATH") path = e.substr(5);
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string_view dir = std::string_view(path).substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = concat(dir, "/");
    candidate.append(cmd);
    if (is_executable(candidate)) {
      plan.program = candidate;
      return plan;
    }
    start = end + 1;
  }
  return make_error("command '" + cmd + "' not found in PATH " + path);
}

}  // namespace kiln::agent
