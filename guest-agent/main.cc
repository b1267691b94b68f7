// kiln-init: PID 1 of every kiln microVM (static binary in the initramfs). As PID 1 it sets
// up the system and runs the agent on vsock; with --no-boot it runs only the agent loop
// (development and tests: Unix sockets instead of vsock, no mounts, no reboot).
#include <signal.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <memory>
#include <string>

#include "common/cli/option_parser.h"
#include "common/io.h"
#include "common/protocol/launch_spec.h"
#include "common/protocol/record.h"
#include "guest-agent/agent/agent.h"
#include "guest-agent/agent/boot.h"
#include "guest-agent/cli/init_options.h"
#include "guest-agent/net/guest_network.h"

namespace {

using kiln::Status;
using kiln::agent::Agent;
using kiln::agent::AgentOptions;
using kiln::agent::console_line;
using kiln::agent::InitOptions;

// The kernel's boot id without its newline; "" when /proc does not have it.
std::string boot_id() {
  auto text = kiln::io::read_file("/proc/sys/kernel/random/boot_id", 4096);
  if (!text.ok()) return "";
  std::string s = std::move(*text);
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
  opt.boot_id = boot_id();
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
  // The network the launch spec configured, kept for the refresh after a snapshot restore.
  auto network = std::make_shared<kiln::agent::net::GuestNetwork>();
  opt.prepare_root = [network](const kiln::protocol::LaunchSpec& spec) -> Status {
    if (auto st = kiln::agent::set_hostname(spec.hostname); !st.ok()) console_line(st.error().message);
    kiln::agent::RootOptions root;
    root.overlay_mib = spec.overlay_mib;
    KILN_TRY(kiln::agent::mount_overlay_root(root));
    KILN_TRY(kiln::agent::write_etc_files(spec.hostname));
    // After the switch into the overlay root, so the files land in the guest's writable /etc.
    KILN_ASSIGN_OR_RETURN(std::string note, network->apply(spec.net, "/etc", kiln::agent::default_hosts(spec.hostname)));
    if (!note.empty()) console_line(note);
    return kiln::ok_status();
  };
  opt.after_identity = [network]() { return network->refresh(); };
  Agent agent(std::move(opt));
  Status st = agent.run();
  if (!st.ok()) fatal_pid1(st.error().message);
  kiln::agent::reboot_now("command finished");
}

int run_no_boot(const InitOptions& o) {
  AgentOptions opt;
  opt.console = [](const std::string& m) { console_line(m); };
  if (o.control) opt.control = *o.control;
  if (o.proxy) opt.proxy = *o.proxy;
  if (o.events) opt.events = *o.events;
  if (!o.spec_file.empty()) {
    auto spec = kiln::agent::read_config_drive(o.spec_file);
    if (!spec.ok() || !spec->has_value()) {
      std::fprintf(stderr, "kiln-init: no launch spec in %s: %s\n", o.spec_file.c_str(),
                   spec.ok() ? "file not found" : spec.error().message.c_str());
      return kiln::cli::kUsageExit;
    }
    opt.spec = **spec;
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

// Host-side helper for scripts and tests: writes the config drive the flags describe.
int run_write_spec(const InitOptions& o) {
  auto bytes = kiln::protocol::encode_config_drive(o.spec);
  if (!bytes.ok()) {
    std::fprintf(stderr, "kiln-init: %s\n", bytes.error().message.c_str());
    return kiln::cli::kUsageExit;
  }
  std::string data = *bytes;
  data.resize((data.size() + 511) / 512 * 512, '\0');
  std::ofstream f(o.out_file, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!f.good()) {
    std::fprintf(stderr, "kiln-init: cannot write %s\n", o.out_file.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (getpid() == 1) return run_boot();
  auto o = kiln::agent::parse_init_args(kiln::cli::args_of(argc, argv));
  if (!o.ok()) return kiln::cli::usage_error("kiln-init", o.error().message, kiln::agent::init_usage());
  switch (o->mode) {
    case kiln::agent::InitMode::kHelp:
      return kiln::cli::print_help(kiln::agent::init_usage());
    case kiln::agent::InitMode::kNoBoot:
      return run_no_boot(*o);
    case kiln::agent::InitMode::kWriteSpec:
      return run_write_spec(*o);
  }
  return kiln::cli::kUsageExit;
}
