// kiln-jailer: runs a VMM (kiln-vmm) jailed, with Firecracker's jailer flags; see
// `kiln-jailer --help` and src/jail/jail.h.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/cli/option_parser.h"
#include "common/unique_fd.h"
#include "src/jail/jail.h"
#include "src/jail/jailer_cli.h"

namespace {

int fail(int code, const std::string& what) {
  std::fprintf(stderr, "kiln-jailer: %s\n", what.c_str());
  return code;
}

// Waits for the VMM, forwarding stop signals to it; returns its exit code (128+sig if killed).
int wait_forwarding(const kiln::jail::JailedProcess& p, int signal_fd) {
  while (true) {
    pollfd fds[2] = {{p.pidfd.get(), POLLIN, 0}, {signal_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si{};
      if (::read(signal_fd, &si, sizeof si) == sizeof si) ::kill(p.pid, static_cast<int>(si.ssi_signo));
    }
    if (fds[0].revents & POLLIN) break;
  }
  int status = 0;
  while (::waitpid(p.pid, &status, 0) < 0) {
    if (errno != EINTR) return 1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kiln::jail;
  auto cmd = parse_jailer_args(kiln::cli::args_of(argc, argv));
  if (!cmd.ok()) return kiln::cli::usage_error("kiln-jailer", cmd.error().message, jailer_usage());
  if (cmd->help) return kiln::cli::print_help(jailer_usage());
  if (cmd->cleanup) {
    auto s = cleanup(cmd->spec);
    return s.ok() ? 0 : fail(1, s.error().message);
  }
  // As Firecracker's jailer, /dev/net/tun goes into the jail whenever the host has it.
  cmd->spec.dev_net_tun = ::access("/dev/net/tun", F_OK) == 0;
  // Also as Firecracker's: files hard-linked into <base>/<exec name>/<id>/root beforehand are used.
  cmd->spec.reuse_existing_dir = true;
  // Waiting for the VMM, kiln-jailer is its keeper: if kiln-jailer is killed, so is the VMM.
  cmd->spec.kill_with_parent = !cmd->spec.daemonize;

  // Stop signals are read from a signalfd (and forwarded); the VMM starts with them unblocked.
  sigset_t stop;
  sigemptyset(&stop);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stop, sig);
  if (!cmd->spec.daemonize) ::sigprocmask(SIG_BLOCK, &stop, nullptr);

  auto p = spawn(cmd->spec, cmd->vmm_args);
  if (!p.ok()) return fail(1, p.error().message);
  if (cmd->spec.daemonize) {
    const std::string pid_file = p->chroot_dir + "/" + exec_name(cmd->spec) + ".pid";
    const std::string text = std::to_string(p->pid) + "\n";
    kiln::UniqueFd fd(::open(pid_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      return fail(1, "writing " + pid_file);
    return 0;
  }
  kiln::UniqueFd signal_fd(::signalfd(-1, &stop, SFD_CLOEXEC));
  if (!signal_fd) return fail(1, "signalfd failed");
  const int code = wait_forwarding(*p, signal_fd.get());
  if (auto s = cleanup(cmd->spec); !s.ok()) return fail(code == 0 ? 1 : code, s.error().message);
  return code;
}
