// KilndProcess: a real kilnd (with kiln-vmm, the guest kernel and the kiln-init initramfs) run
// as a child process for e2e tests, load tests and benchmarks; deploy/wait helpers over its
// HTTP API, and /proc probes for the kiln-vmm processes and resource usage it owns.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "src/client/http_client.h"
#include "tests/support/process.h"

namespace kiln::e2e {

// Where the binaries and inputs live: compiled-in build paths, overridable with
// KILN_BUILD_DIR (build root: hello OCI image, guest kernel) and KILN_GUEST_KERNEL.
struct KilndPaths {
  std::string build_root;
  std::string kilnd;
  std::string vmm;
  std::string initramfs;
  std::string kernel;
  std::string hello_oci;  // OCI layout of examples/hello
  static KilndPaths defaults();
};

using kiln::testing::slurp;  // the whole file, "" when unreadable
// "key=value" lines of a text (e.g. a CGI probe's answer) as a map; other lines are ignored.
std::map<std::string, std::string> key_values(const std::string& text);
// The sum of every series of metric `name` in a /metrics text; `name` may end in a label
// pattern (a regex such as `NAME\\{[^}]*kind="prefetch"[^}]*\\}`), else any labels match.
double metric_sum(const std::string& text, const std::string& name);
// A fresh directory under /tmp (mkdtemp) named after `prefix`.
Result<std::string> make_temp_dir(const std::string& prefix);
// Empty when this machine's KVM runs Linux guests, else kiln-vmm's self-test sentence plus a
// note that the e2e tier runs inside the nested test host (callers skip with it).
std::string kvm_unusable_reason(const KilndPaths& paths, const std::string& scratch_dir);

// kiln-vmm processes of `state_dir`: their command line mentions it, or (jailed) their --id is
// one of its instance dirs.
std::vector<pid_t> vmm_pids(const std::string& state_dir);
// The same without the kiln-vmms kilnd parked for functions' next instances (run/<id>/parked):
// one per running instance.
std::vector<pid_t> instance_vmm_pids(const std::string& state_dir);
bool process_alive(pid_t pid);

// One /proc sample of a process: open fds, threads, resident memory.
struct ProcUsage {
  pid_t pid = 0;
  std::size_t fds = 0;
  std::size_t threads = 0;
  std::uint64_t rss_kib = 0;
};
Result<ProcUsage> proc_usage(pid_t pid);

// Config of a function that runs busybox httpd on port 9000 in the hello image and serves each
// {name, shell script} as /cgi-bin/<name> (scripts travel base64-encoded in the command).
nlohmann::json cgi_function_config(const KilndPaths& paths,
                                   const std::vector<std::pair<std::string, std::string>>& scripts);

// Prints the last lines of every function log (<state>/logs/*.log) and of every instance's
// kiln-vmm log (<state>/run/*/vmm.log): what a failed e2e test leaves for its diagnosis.
void print_state_tails(const std::string& state_dir, std::size_t lines = 120);

class KilndProcess {
 public:
  using Clock = std::chrono::steady_clock;

  KilndProcess(std::string state_dir, KilndPaths paths = KilndPaths::defaults());
  ~KilndProcess();  // SIGKILL + reap if still running
  KilndProcess(const KilndProcess&) = delete;
  KilndProcess& operator=(const KilndProcess&) = delete;

  // Spawns kilnd (TCP on 127.0.0.1 port 0 + its Unix socket) and waits for its listening line.
  Status start(std::vector<std::string> extra_args = {});
  // Sends `sig`, waits for the exit; returns the wait status (-1 when not running).
  int stop(int sig);
  pid_t pid() const { return pid_; }
  std::uint16_t tcp_port() const { return tcp_port_; }
  const std::string& state_dir() const { return state_dir_; }
  const KilndPaths& paths() const { return paths_; }
  const kilnd::client::Endpoint& endpoint() const { return endpoint_; }

  // Later calls act in tenant `name`'s namespace (X-Kiln-Tenant; kilnd's Unix socket is admin);
  // "" returns to the admin namespace.
  void act_as_tenant(std::string name) { tenant_ = std::move(name); }
  Result<kilnd::client::HttpResult> call(const std::string& method, const std::string& target,
                                         const std::string& body = "",
                                         std::chrono::milliseconds timeout = std::chrono::seconds(300));
  // GET /v1/functions/NAME as JSON.
  Result<nlohmann::json> function(const std::string& name);
  // PUT the config (201 or 200 expected), then wait until image preparation leaves
  // pending/building; returns the record (the caller checks image.state).
  Result<nlohmann::json> deploy(const std::string& name, const nlohmann::json& config,
                                std::chrono::seconds timeout = std::chrono::seconds(300));
  // Waits until the function has at least `count` ready instances; fails early when its image failed.
  Result<nlohmann::json> wait_ready_instances(const std::string& name, std::size_t count,
                                              std::chrono::seconds timeout = std::chrono::seconds(300));
  // The hybrid-vsock socket of an instance (run/<id>/vsock.sock, or in its jail's root).
  std::string instance_uds(const std::string& instance_id) const;
  // The API socket of an instance's kiln-vmm (run/<id>/api.sock, or in its jail's root).
  std::string instance_api_sock(const std::string& instance_id) const;
  // kiln-vmm pid of an instance (run/<id>/vmm.pid), -1 when unknown.
  pid_t instance_vmm_pid(const std::string& instance_id) const;

 private:
  std::string instance_socket(const std::string& instance_id, const std::string& name) const;

  std::string state_dir_;
  KilndPaths paths_;
  pid_t pid_ = -1;
  std::uint16_t tcp_port_ = 0;
  kilnd::client::Endpoint endpoint_;
  std::string tenant_;
};

}  // namespace kiln::e2e
