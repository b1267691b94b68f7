// The image config (Entrypoint, Cmd, Env, WorkingDir, User) with the function's overrides.
#include "src/registry/launch_spec.h"

#include <map>
#include <vector>

namespace kiln::kilnd::registry {

ResolvedCommand resolve_command(const FunctionConfig& c, const ImageStatus& im) {
  ResolvedCommand out;
  out.entrypoint = c.command ? *c.command : im.entrypoint;
  if (c.args) out.cmd = *c.args;
  else if (!c.command) out.cmd = im.cmd;
  return out;
}

protocol::LaunchSpec make_launch_spec(const FunctionRecord& r, const std::string& instance_id) {
  const auto& c = r.config;
  const auto& im = r.image;
  protocol::LaunchSpec spec;
  ResolvedCommand command = resolve_command(c, im);
  spec.argv = std::move(command.entrypoint);
  spec.argv.insert(spec.argv.end(), command.cmd.begin(), command.cmd.end());
  std::map<std::string, std::string> env;
  std::vector<std::string> order;
  for (const auto& e : im.env) {
    auto eq = e.find('=');
    std::string k = e.substr(0, eq);
    if (!env.count(k)) order.push_back(k);
    env[k] = eq == std::string::npos ? "" : e.substr(eq + 1);
  }
  for (const auto& [k, v] : c.env) {
    if (!env.count(k)) order.push_back(k);
    env[k] = v;
  }
  for (const auto& k : order) spec.env.push_back(k + "=" + env[k]);
  spec.working_dir = !c.working_dir.empty() ? c.working_dir : (!im.working_dir.empty() ? im.working_dir : "/");
  spec.user = !c.user.empty() ? c.user : im.user;
  spec.hostname = c.name.size() <= 63 ? c.name : c.name.substr(0, 63);
  spec.instance_id = instance_id;
  return spec;
}

}  // namespace kiln::kilnd::registry
