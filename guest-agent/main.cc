// kiln-init: PID 1 of every kiln microVM (static binary in the initramfs). As PID 1 it sets
// up the system and runs the agent on vsock; with --no-boot it runs only the agent loop
// (development and tests: Unix sockets instead of vsock, no mounts, no reboot).
#include <signal.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>

#include "common/protocol/launch_spec.h"
#include "common/protocol/record.h"
#include "guest-agent/agent/agent.h"
#include "guest-agent/agent/boot.h"

namespace {

using kiln::Status;
using kiln::agent::Agent;
using kiln::agent::AgentOptions;
using kiln::agent::console_line;
using kiln::agent::Endpoint;

constexpr const char* kUsage =
    "usage: kiln-init                  (as PID 1: boot the guest, agent on vsock)\n"
    "       kiln-init --no-boot [--control EP] [--proxy EP] [--events EP]\n"
    "                 [--spec-file FILE] [--config-drive DEV]\n"
    "       kiln-init --write-spec FILE [--env K=V]... [--cwd DIR] [--user U] [--hostname H]\n"
    "                 [--port N] [--ready-timeout-ms N] [--stop-grace-ms N] [--overlay-mib N]\n"
    "                 [--instance-id ID] [--wall-clock-ns N] -- COMMAND [ARG]...\n"
    "                 (writes a config drive image: one launch-spec frame, 512-byte padded)\n"
    "EP is vsock:CID:PORT (CID may be 'any') or unix:PATH. Defaults: control vsock:any:10000,\n"
    "proxy vsock:any:9000, events vsock:2:10001. FILE/DEV hold one launch-spec frame.\n";

std::string read_text(const char* path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

[[noreturn]] void fatal_pid1(const std::string& why) {
  console_line("fatal: " + why);
  kiln::agent::reboot_now("fatal agent error");
}

// A crash of PID 1 would panic the kernel: turn it into a console line and a clean reboot.
// Only async-signal-safe calls here.
void on_crash(int sig) {
  static const char msg[] = "kiln-init: fatal: crashed (signal), rebooting\n";
  (void)!write(2, msg, sizeof(msg) - 1);
  (void)sig;
  sync();
  reboot(RB_AUTOBOOT);
  _exit(1);
}

int run_boot() {
  std::set_terminate([] { fatal_pid1("unhandled exception"); });
  struct sigaction sa {};
  sa.sa_handler = on_crash;
  for (int s : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) sigaction(s, &sa, nullptr);
  // Ctrl-Alt-Del (the VMM's SendCtrlAltDel) then arrives as SIGINT: a graceful shutdown.
  reboot(RB_DISABLE_CAD);
  if (auto st = kiln::agent::mount_early(); !st.ok()) fatal_pid1(st.error().message);
  console_line("starting");
  (void)kiln::agent::set_hostname("kiln");
  if (auto st = kiln::agent::bring_up_loopback(); !st.ok()) console_line("loopback: " + st.error().message);

  AgentOptions opt;
  opt.pid1 = true;
  opt.console = [](const std::string& m) { console_line(m); };
  opt.boot_id = read_text("/proc/sys/kernel/random/boot_id");
  // The control port is the primary way in; a config drive, if attached, wins because it is
  // there before the host could connect.
  auto drive = kiln::agent::read_config_drive("/dev/vdb");
  if (!drive.ok()) {
    console_line("config drive ignored: " + drive.error().message);
  } else if (drive->has_value()) {
    console_line("launch spec from config drive /dev/vdb");
    opt.spec = **drive;
  } else {
    console_line("waiting for the launch spec on vsock port 10000");
  }
  opt.prepare_root = [](const kiln::protocol::LaunchSpec& spec) -> Status {
    if (auto st = kiln::agent::set_hostname(spec.hostname); !st.ok()) console_line(st.error().message);
    kiln::agent::RootOptions root;
    root.overlay_mib = spec.overlay_mib;
    KILN_TRY(kiln::agent::mount_overlay_root(root));
    return kiln::agent::write_etc_files(spec.hostname);
  };
  Agent agent(std::move(opt));
  Status st = agent.run();
  if (!st.ok()) fatal_pid1(st.error().message);
  kiln::agent::reboot_now("command finished");
}

int run_no_boot(int argc, char** argv) {
  AgentOptions opt;
  opt.console = [](const std::string& m) { console_line(m); };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n%s", a.c_str(), kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    auto endpoint = [&](Endpoint* out) {
      auto ep = Endpoint::parse(value());
      if (!ep.ok()) {
        std::fprintf(stderr, "%s\n", ep.error().message.c_str());
        std::exit(2);
      }
      *out = *ep;
    };
    if (a == "--no-boot") {
    } else if (a == "--control") {
      endpoint(&opt.control);
    } else if (a == "--proxy") {
      endpoint(&opt.proxy);
    } else if (a == "--events") {
      endpoint(&opt.events);
    } else if (a == "--spec-file" || a == "--config-drive") {
      auto spec = kiln::agent::read_config_drive(value());
      if (!spec.ok() || !spec->has_value()) {
        std::fprintf(stderr, "no launch spec in %s: %s\n", argv[i],
                     spec.ok() ? "file not found" : spec.error().message.c_str());
        return 2;
      }
      opt.spec = **spec;
    } else {
      std::fprintf(stderr, "%s", kUsage);
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  Agent agent(std::move(opt));
  Status st = agent.run();
  if (!st.ok()) {
    std::fprintf(stderr, "kiln-init: %s\n", st.error().message.c_str());
    return 1;
  }
  const auto& e = agent.exit_info();
  return e.signaled ? 128 + e.code : e.code;
}

// Host-side helper for scripts and tests: builds a config drive from command-line flags.
int run_write_spec(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  std::string out = argv[2];
  kiln::protocol::LaunchSpec spec;
  int i = 3;
  auto number = [&](const char* flag, std::uint64_t max) -> std::uint64_t {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", flag);
      std::exit(2);
    }
    auto v = kiln::protocol::parse_u64(argv[++i]);
    if (!v || *v > max) {
      std::fprintf(stderr, "%s: bad number\n", flag);
      std::exit(2);
    }
    return *v;
  };
  auto text = [&](const char* flag) -> std::string {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", flag);
      std::exit(2);
    }
    return argv[++i];
  };
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      for (++i; i < argc; ++i) spec.argv.emplace_back(argv[i]);
      break;
    }
    if (a == "--env") spec.env.push_back(text("--env"));
    else if (a == "--cwd") spec.working_dir = text("--cwd");
    else if (a == "--user") spec.user = text("--user");
    else if (a == "--hostname") spec.hostname = text("--hostname");
    else if (a == "--instance-id") spec.instance_id = text("--instance-id");
    else if (a == "--port") spec.port = static_cast<std::uint16_t>(number("--port", 65535));
    else if (a == "--ready-timeout-ms") spec.ready_timeout_ms = number("--ready-timeout-ms", UINT64_MAX);
    else if (a == "--stop-grace-ms") spec.stop_grace_ms = number("--stop-grace-ms", UINT64_MAX);
    else if (a == "--overlay-mib") spec.overlay_mib = number("--overlay-mib", UINT64_MAX);
    else if (a == "--wall-clock-ns") spec.wall_clock_ns = number("--wall-clock-ns", UINT64_MAX);
    else {
      std::fprintf(stderr, "unknown option %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  auto bytes = kiln::protocol::encode_config_drive(spec);
  if (!bytes.ok()) {
    std::fprintf(stderr, "kiln-init: %s\n", bytes.error().message.c_str());
    return 2;
  }
  std::string data = *bytes;
  data.resize((data.size() + 511) / 512 * 512, '\0');
  std::ofstream f(out, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!f.good()) {
    std::fprintf(stderr, "kiln-init: cannot write %s\n", out.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (getpid() == 1) return run_boot();
  if (argc >= 2 && std::strcmp(argv[1], "--write-spec") == 0) return run_write_spec(argc, argv);
  if (argc < 2 || std::strcmp(argv[1], "--no-boot") != 0) {
    std::fprintf(stderr, "kiln-init runs as PID 1 in a kiln microVM; outside one, pass --no-boot.\n%s",
                 kUsage);
    return 2;
  }
  return run_no_boot(argc, argv);
}
