// KilndProcess: spawns kilnd with posix_spawn (argv vector), reads its listening line with a
// deadline, and drives its HTTP API; /proc helpers for the kiln-vmm processes it starts.
#include "tests/e2e/lib/kilnd_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <openssl/evp.h>

#include "common/unique_fd.h"
#include "tests/support/test_paths.h"

extern char** environ;

namespace kiln::e2e {

namespace fs = std::filesystem;
using nlohmann::json;

KilndPaths KilndPaths::defaults() {
  KilndPaths p;
  p.build_root = kiln::testing::build_dir();
  p.kilnd = p.build_root + "/src/kilnd";
  p.vmm = p.build_root + "/vmm/kiln-vmm";
  p.initramfs = p.build_root + "/guest-agent/initramfs.cpio";
  const char* k = std::getenv("KILN_GUEST_KERNEL");
  p.kernel = k && *k ? k : p.build_root + "/guest-kernel/vmlinux";
  p.hello_oci = p.build_root + "/examples/hello/oci";
  return p;
}

void print_state_tails(const std::string& state_dir, std::size_t lines) {
  auto tail = [lines](const fs::path& p) {
    std::string text = slurp(p.string());
    std::size_t at = text.size(), n = 0;
    while (at > 0 && n <= lines) {
      at = text.rfind('\n', at - 1);
      if (at == std::string::npos) {
        at = 0;
        break;
      }
      ++n;
    }
    std::printf("---- %s (last %zu lines)\n%s\n", p.c_str(), lines, text.substr(at).c_str());
  };
  std::error_code ec;
  for (const char* sub : {"/logs", "/run"}) {
    for (const auto& e : fs::directory_iterator(state_dir + sub, ec)) {
      if (e.is_regular_file() && e.path().extension() == ".log") tail(e.path());
      if (e.is_directory() && fs::exists(e.path() / "vmm.log")) tail(e.path() / "vmm.log");
    }
  }
  std::fflush(stdout);
}

Result<std::string> make_temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return errno_error("mkdtemp " + tmpl);
  return tmpl;
}

namespace {

// posix_spawn of `args` (argv vector, no shell) with stdout, and stderr when asked, on `out_fd`.
Result<pid_t> spawn_to(std::vector<std::string> args, int out_fd, bool with_stderr) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  if (with_stderr) posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return make_error("posix_spawn " + args[0] + ": " + std::strerror(rc));
  return pid;
}

}  // namespace

std::string kvm_unusable_reason(const KilndPaths& paths, const std::string& scratch_dir) {
  std::string out = scratch_dir + "/selftest.txt";
  UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return "cannot create " + out;
  auto pid = spawn_to({paths.vmm, "--self-test"}, fd.get(), true);
  if (!pid.ok()) return pid.error().message;
  int status = 0;
  ::waitpid(*pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return slurp(out) + " (scripts/test runs the e2e tier inside the nested test host)";
}

std::map<std::string, std::string> key_values(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

double metric_sum(const std::string& text, const std::string& name) {
  const bool labelled = name.find('{') != std::string::npos;
  const std::regex line("^" + name + (labelled ? "" : "(\\{[^}]*\\})?") + " ([0-9.e+]+)$");
  double sum = 0;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_match(l, m, line)) sum += std::stod(m[m.size() - 1]);
  }
  return sum;
}

std::vector<pid_t> vmm_pids(const std::string& state_dir) {
  // A jailed kiln-vmm's command line holds jail paths only (/api.sock, --id <instance>): it is
  // ours when its id names an instance dir of this state dir (run/<id> or jail/kiln-vmm/<id>).
  std::vector<std::string> ids;
  std::error_code ec;
  for (const char* sub : {"/run", "/jail/kiln-vmm"}) {
    for (const auto& e : fs::directory_iterator(state_dir + sub, ec)) ids.push_back(e.path().filename().string());
  }
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = slurp((e.path() / "cmdline").string());
    std::string argv0 = cmd.substr(0, cmd.find('\0'));
    if (argv0.find("kiln-vmm") == std::string::npos) continue;
    bool ours = cmd.find(state_dir) != std::string::npos;
    for (std::size_t i = 0; !ours && i < ids.size(); ++i) {
      const std::string id_arg = std::string("--id") + '\0' + ids[i] + '\0';
      ours = cmd.find(id_arg) != std::string::npos || cmd.find("--id=" + ids[i] + '\0') != std::string::npos;
    }
    if (ours) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

std::vector<pid_t> instance_vmm_pids(const std::string& state_dir) {
  std::vector<pid_t> out;
  for (pid_t pid : vmm_pids(state_dir)) {
    const std::string cmd = slurp("/proc/" + std::to_string(pid) + "/cmdline");
    const std::string flag = std::string("--id") + '\0';
    const auto at = cmd.find(flag);
    std::string id = at == std::string::npos ? "" : cmd.substr(at + flag.size());
    id = id.substr(0, id.find('\0'));
    std::error_code ec;
    if (id.empty() || !fs::exists(state_dir + "/run/" + id + "/parked", ec)) out.push_back(pid);
  }
  return out;
}

bool process_alive(pid_t pid) {
  if (pid <= 0) return false;
  // A zombie still answers kill(0): look at its state too.
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return false;
  auto close_paren = stat.rfind(')');
  return close_paren == std::string::npos || close_paren + 2 >= stat.size() || stat[close_paren + 2] != 'Z';
}

Result<ProcUsage> proc_usage(pid_t pid) {
  ProcUsage u;
  u.pid = pid;
  const std::string dir = "/proc/" + std::to_string(pid);
  std::error_code ec;
  fs::directory_iterator it(dir + "/fd", ec);
  if (ec) return make_error("no such process " + std::to_string(pid) + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    ++u.fds;
  }
  std::istringstream status(slurp(dir + "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) u.threads = std::stoul(line.substr(8));
    if (line.rfind("VmRSS:", 0) == 0) u.rss_kib = std::stoull(line.substr(6));
  }
  if (u.threads == 0) return make_error("process " + std::to_string(pid) + " vanished");
  return u;
}

json cgi_function_config(const KilndPaths& paths, const std::vector<std::pair<std::string, std::string>>& scripts) {
  std::string cmd = "mkdir -p /tmp/www/cgi-bin && cd /tmp/www/cgi-bin && ";
  std::string names;
  for (const auto& [name, body] : scripts) {
    std::string b64(4 * ((body.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                            reinterpret_cast<const unsigned char*>(body.data()), static_cast<int>(body.size()));
    b64.resize(static_cast<std::size_t>(n));
    cmd += "echo " + b64 + " | base64 -d > " + name + " && ";
    names += " " + name;
  }
  cmd += "chmod +x" + names + " && exec httpd -f -p 9000 -h /tmp/www";
  return {{"image", "oci:" + paths.hello_oci}, {"command", {"sh", "-c", cmd}}};
}

KilndProcess::KilndProcess(std::string state_dir, KilndPaths paths)
    : state_dir_(std::move(state_dir)), paths_(std::move(paths)) {}

KilndProcess::~KilndProcess() { stop(SIGKILL); }

Status KilndProcess::start(std::vector<std::string> extra_args) {
  std::vector<std::string> args = {paths_.kilnd, "--listen", "127.0.0.1:0", "--state-dir", state_dir_,
                                   "--vmm", paths_.vmm, "--kernel", paths_.kernel, "--initrd", paths_.initramfs,
                                   "--boot-timeout-ms", "120000"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errno_error("pipe2");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  auto pid = spawn_to(std::move(args), write_end.get(), false);
  if (!pid.ok()) return pid.error();
  pid_ = *pid;
  write_end.reset();
  std::string line;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (line.find('\n') == std::string::npos && Clock::now() < deadline) {
    pollfd p{read_end.get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) continue;
    char buf[512];
    ssize_t n = ::read(read_end.get(), buf, sizeof(buf));
    if (n <= 0) break;
    line.append(buf, static_cast<std::size_t>(n));
  }
  const std::string marker = "kilnd: listening on 127.0.0.1:";
  auto at = line.find(marker);
  if (at == std::string::npos) return make_error("kilnd did not start: '" + line + "'");
  tcp_port_ = static_cast<std::uint16_t>(std::strtoul(line.c_str() + at + marker.size(), nullptr, 10));
  endpoint_ = {};
  endpoint_.unix_path = state_dir_ + "/kilnd.sock";
  return ok_status();
}

int KilndProcess::stop(int sig) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

Result<kilnd::client::HttpResult> KilndProcess::call(const std::string& method, const std::string& target,
                                                     const std::string& body, std::chrono::milliseconds timeout) {
  kilnd::client::RequestOptions o;
  o.timeout = timeout;
  if (!tenant_.empty()) o.headers["X-Kiln-Tenant"] = tenant_;
  return kilnd::client::request(endpoint_, method, target, body, o);
}

Result<json> KilndProcess::function(const std::string& name) {
  KILN_ASSIGN_OR_RETURN(auto r, call("GET", "/v1/functions/" + name, "", std::chrono::seconds(60)));
  json j = json::parse(r.body, nullptr, false);
  if (r.status != 200 || !j.is_object()) {
    return make_error("GET /v1/functions/" + name + ": " + std::to_string(r.status) + " " + r.body);
  }
  return j;
}

Result<json> KilndProcess::deploy(const std::string& name, const json& config, std::chrono::seconds timeout) {
  KILN_ASSIGN_OR_RETURN(auto put, call("PUT", "/v1/functions/" + name, config.dump(), std::chrono::seconds(60)));
  if (put.status != 201 && put.status != 200) {
    return make_error("PUT /v1/functions/" + name + ": " + std::to_string(put.status) + " " + put.body);
  }
  auto deadline = Clock::now() + timeout;
  while (true) {
    KILN_ASSIGN_OR_RETURN(json rec, function(name));
    auto state = rec["image"]["state"];
    if (state != "building" && state != "pending") return rec;
    if (Clock::now() > deadline) return make_error("image of " + name + " still " + state.dump());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling a background build
  }
}

Result<json> KilndProcess::wait_ready_instances(const std::string& name, std::size_t count, std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    KILN_ASSIGN_OR_RETURN(json rec, function(name));
    if (rec["image"]["state"] == "failed") return make_error("image of " + name + " failed: " + rec.dump());
    if (rec["pool"].is_object() && rec["pool"]["idle"].get<std::size_t>() >= count) return rec;
    if (Clock::now() > deadline) {
      return make_error(name + ": fewer than " + std::to_string(count) + " ready instances: " + rec.dump());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling a remote state
  }
}

std::string KilndProcess::instance_socket(const std::string& instance_id, const std::string& name) const {
  // A jailed kiln-vmm makes its sockets in its jail's root (<state>/jail/kiln-vmm/<id>/root).
  const std::string jailed = state_dir_ + "/jail/kiln-vmm/" + instance_id + "/root/" + name;
  std::error_code ec;
  if (fs::exists(jailed, ec)) return jailed;
  return state_dir_ + "/run/" + instance_id + "/" + name;
}

std::string KilndProcess::instance_uds(const std::string& instance_id) const {
  return instance_socket(instance_id, "vsock.sock");
}

std::string KilndProcess::instance_api_sock(const std::string& instance_id) const {
  return instance_socket(instance_id, "api.sock");
}

pid_t KilndProcess::instance_vmm_pid(const std::string& instance_id) const {
  pid_t pid = -1;
  std::ifstream(state_dir_ + "/run/" + instance_id + "/vmm.pid") >> pid;
  return pid;
}

}  // namespace kiln::e2e
