// kilnd: the kiln host daemon. Parses flags, reaps VMs a previous run left behind, then serves
// the HTTP API (TCP + Unix socket) until SIGTERM/SIGINT, which drains and stops every VM.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

#include "src/daemon/daemon.h"
#include "src/pool/vmm_backend.h"

namespace {

namespace fs = std::filesystem;
using namespace kiln::kilnd;

constexpr const char* kUsage =
    "usage: kilnd [options]\n"
    "  --listen HOST:PORT    TCP address (default 127.0.0.1:8900; loopback unless you say otherwise;\n"
    "                        PORT 0 picks a free port; 'none' disables TCP)\n"
    "  --unix PATH           Unix socket (default <state-dir>/kilnd.sock; 'none' disables it)\n"
    "  --state-dir DIR       state: functions, images, logs, VM run dirs (default $KILN_STATE_DIR\n"
    "                        or /var/lib/kiln)\n"
    "  --vmm PATH            kiln-vmm binary (default: next to kilnd, else $PATH)\n"
    "  --kernel PATH         guest kernel for every microVM\n"
    "  --initrd PATH         initramfs with kiln-init\n"
    "  --boot-args ARGS      guest kernel command line\n"
    "  --boot-timeout-ms N   boot to ready (default 60000)\n"
    "  --drain-timeout-ms N  on SIGTERM, how long in-flight requests may finish (default 30000)\n"
    "  --vmm-arg ARG         extra argument for every kiln-vmm (repeatable; debugging, e.g.\n"
    "                        --vmm-arg=--no-seccomp)\n"
    "  --jail on|off         run every kiln-vmm in its own jail (namespaces, pivot_root, cgroups,\n"
    "                        own uid/gid, no capabilities; default on when kilnd runs as root)\n"
    "  --snapshots on|off    warm starts: snapshot each VM shape's first instance once ready and\n"
    "                        restore later instances from it (default on; <state-dir>/snapshots)\n"
    "  --park-vmms on|off    with snapshots: keep one kiln-vmm per function started ahead, its\n"
    "                        snapshot bound, for the next instance (restore = one API call;\n"
    "                        default on)\n"
    "  --log-memory-mib N    memory for recent log lines, all functions together (default 8;\n"
    "                        older lines stay in <state-dir>/logs files)\n"
    "  --tenants FILE        tenants: bearer tokens and quotas (JSON, see src/README.md); without it\n"
    "                        every caller is the admin\n";

std::string self_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

bool parse_u64(const std::string& s, std::uint64_t* out) {
  if (s.empty() || s.size() > 12) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  *out = std::strtoull(s.c_str(), nullptr, 10);
  return true;
}

// The tenants file, with a warning when others may read its tokens.
kiln::Result<tenants::TenantsConfig> load_tenants(const std::string& file) {
  auto t = tenants::load_tenants_file(file);
  struct stat st {};
  if (t.ok() && ::stat(file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    std::fprintf(stderr, "kilnd: warning: %s (tokens) is readable by other users; chmod 600 it\n", file.c_str());
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  daemon::DaemonOptions o;
  pool::VmmBackendOptions vmm;
  std::string listen = "127.0.0.1:8900";
  std::string unix_path;
  std::string tenants_file;
  bool snapshots = true;
  bool jail = ::geteuid() == 0;
  const char* env_state = std::getenv("KILN_STATE_DIR");
  o.state_dir = env_state && *env_state ? env_state : "/var/lib/kiln";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string v;
    auto eq = a.find('=');
    bool inline_value = a.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inline_value) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    auto value = [&]() -> std::string {
      if (inline_value) return v;
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kilnd: %s needs a value\n%s", a.c_str(), kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    std::uint64_t n = 0;
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else if (a == "--listen") {
      listen = value();
    } else if (a == "--unix") {
      unix_path = value();
    } else if (a == "--state-dir") {
      o.state_dir = value();
    } else if (a == "--vmm") {
      vmm.vmm_path = value();
    } else if (a == "--kernel") {
      vmm.kernel_path = value();
    } else if (a == "--initrd") {
      vmm.initrd_path = value();
    } else if (a == "--boot-args") {
      vmm.boot_args = value();
    } else if (a == "--boot-timeout-ms" && parse_u64(value(), &n) && n > 0) {
      vmm.boot_timeout = std::chrono::milliseconds(n);
    } else if (a == "--vmm-arg") {
      vmm.extra_vmm_args.push_back(value());
    } else if (a == "--jail" && (v = value(), v == "on" || v == "off")) {
      jail = v == "on";
    } else if (a == "--snapshots" && (v = value(), v == "on" || v == "off")) {
      snapshots = v == "on";
    } else if (a == "--park-vmms" && (v = value(), v == "on" || v == "off")) {
      vmm.park_vmms = v == "on";
    } else if (a == "--drain-timeout-ms" && parse_u64(value(), &n)) {
      o.drain_timeout = std::chrono::milliseconds(n);
    } else if (a == "--log-memory-mib" && parse_u64(value(), &n) && n > 0 && n <= 65536) {
      o.logs.max_memory_bytes = static_cast<std::size_t>(n) << 20;
    } else if (a == "--tenants") {
      tenants_file = value();
      auto t = load_tenants(tenants_file);
      if (!t.ok()) {
        std::fprintf(stderr, "kilnd: %s\n", t.error().message.c_str());
        return 2;
      }
      o.tenants = std::move(*t);
    } else {
      std::fprintf(stderr, "kilnd: bad option %s\n%s", argv[i], kUsage);
      return 2;
    }
  }
  if (o.state_dir.empty() || o.state_dir[0] != '/') {
    std::error_code ec;
    o.state_dir = fs::absolute(o.state_dir.empty() ? "." : o.state_dir, ec).string();
  }
  if (listen != "none") {
    auto colon = listen.rfind(':');
    std::uint64_t port = 0;
    if (colon == std::string::npos || !parse_u64(listen.substr(colon + 1), &port) || port > 65535) {
      std::fprintf(stderr, "kilnd: --listen must be HOST:PORT (got %s)\n", listen.c_str());
      return 2;
    }
    o.server.tcp_host = listen.substr(0, colon);
    if (!o.server.tcp_host.empty() && o.server.tcp_host.front() == '[') {
      o.server.tcp_host = o.server.tcp_host.substr(1, o.server.tcp_host.size() - 2);
    }
    o.server.tcp_port = static_cast<std::uint16_t>(port);
  } else {
    o.server.tcp_host.clear();
  }
  if (unix_path.empty()) unix_path = o.state_dir + "/kilnd.sock";
  if (unix_path != "none") o.server.unix_path = unix_path;
  if (vmm.vmm_path.empty()) {
    std::string next_to_us = self_dir() + "/kiln-vmm";
    vmm.vmm_path = ::access(next_to_us.c_str(), X_OK) == 0 ? next_to_us : "kiln-vmm";
    if (vmm.vmm_path == "kiln-vmm") {
      // posix_spawn does not search $PATH: resolve it here.
      const char* path = std::getenv("PATH");
      std::string p = path ? path : "/usr/bin:/bin";
      std::size_t pos = 0;
      while (pos <= p.size()) {
        auto next = p.find(':', pos);
        std::string cand = p.substr(pos, next == std::string::npos ? std::string::npos : next - pos) + "/kiln-vmm";
        if (::access(cand.c_str(), X_OK) == 0) {
          vmm.vmm_path = cand;
          break;
        }
        if (next == std::string::npos) break;
        pos = next + 1;
      }
    }
  }
  vmm.run_dir = o.state_dir + "/run";
  if (snapshots) vmm.snapshot_dir = o.state_dir + "/snapshots";
  vmm.jail = jail;
  // The pool waits for a start as long as the backend may take: API, boot, then a snapshot.
  o.start_timeout = vmm.api_timeout + vmm.boot_timeout + std::max(vmm.api_timeout, vmm.boot_timeout);
  if (vmm.kernel_path.empty()) std::fprintf(stderr, "kilnd: warning: no --kernel given; instances cannot boot\n");

  std::error_code ec;
  fs::create_directories(vmm.run_dir, ec);
  for (const auto& line : pool::VmmBackend::reap_stale(vmm.run_dir)) std::fprintf(stderr, "kilnd: %s\n", line.c_str());

  asio::io_context io;
  pool::VmmBackend backend(io, vmm);
  daemon::Daemon d(io, o, backend, daemon::rootfs_image_builder(o.state_dir + "/images"));
  if (auto st = d.start(); !st.ok()) {
    std::fprintf(stderr, "kilnd: %s\n", st.error().message.c_str());
    return 1;
  }
  std::string where;
  if (!o.server.tcp_host.empty()) where += o.server.tcp_host + ":" + std::to_string(d.tcp_port());
  if (!o.server.unix_path.empty()) where += (where.empty() ? "unix:" : " and unix:") + o.server.unix_path;
  std::printf("kilnd: listening on %s (state in %s)\n", where.c_str(), o.state_dir.c_str());
  if (o.tenants) {
    std::printf("kilnd: %zu tenants; bearer tokens required%s\n", o.tenants->tenants.size(),
                o.tenants->unix_socket_admin && !o.server.unix_path.empty() ? " (the Unix socket is trusted as admin)" : "");
  }
  std::fflush(stdout);

  // SIGHUP: read the tenants file again (token rotation); a bad file keeps the tenants we have.
  asio::signal_set hup(io, SIGHUP);
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& e, int) {
      if (e) return;
      if (tenants_file.empty()) {
        std::fprintf(stderr, "kilnd: SIGHUP: no --tenants file to read again\n");
      } else if (auto t = load_tenants(tenants_file); !t.ok()) {
        std::fprintf(stderr, "kilnd: SIGHUP: keeping the tenants: %s\n", t.error().message.c_str());
      } else {
        std::fprintf(stderr, "kilnd: SIGHUP: %zu tenants from %s\n", t->tenants.size(), tenants_file.c_str());
        d.set_tenants(std::move(*t));
      }
      wait_hup();
    });
  };
  wait_hup();

  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& e, int sig) {
    if (e) return;
    std::fprintf(stderr, "kilnd: %s: draining and stopping VMs\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    d.shutdown([&io] { io.stop(); });
    // A second signal stops at once.
    signals.async_wait([&io](const boost::system::error_code& e2, int) {
      if (!e2) io.stop();
    });
  });
  io.run();
  std::fprintf(stderr, "kilnd: stopped\n");
  return 0;
}
