// kiln-vmm entry point: parses flags, then boots from --config-file and/or serves the
// Firecracker-compatible API on --api-sock until the microVM ends.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "common/cli/option_parser.h"
#include "vmm/api/api_router.h"
#include "vmm/api/api_server.h"
#include "vmm/config/cli_options.h"
#include "vmm/config/vm_config.h"
#include "vmm/core/vmm_controller.h"
#include "vmm/kvm/selftest.h"
#include "vmm/seccomp/seccomp_filter.h"

namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "kiln-vmm: %s\n", what.c_str());
  return static_cast<int>(kiln::vmm::VmExit::kVmmError);
}

// --no-seccomp wins over --seccomp-audit.
kiln::vmm::seccomp::Settings seccomp_settings_of(const kiln::vmm::config::CliOptions& o) {
  kiln::vmm::seccomp::Settings s;
  if (o.no_seccomp) s.mode = kiln::vmm::seccomp::Mode::kDisabled;
  else if (o.seccomp_audit) s.mode = kiln::vmm::seccomp::Mode::kAuditOnly;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kiln::vmm;
  auto opts = config::parse_cli_options(argc, argv);
  if (!opts.ok()) return fail(opts.error().message + "\n" + config::cli_usage());
  if (opts->help) return kiln::cli::print_help(config::cli_usage());
  if (opts->version) { std::printf("kiln-vmm %s\n", std::string(api::vmm_version()).c_str()); return 0; }
  if (opts->self_test) {
    SelfTestVerdict v = run_kvm_self_test();
    std::printf("%s\n", v.sentence.c_str());
    return v.can_run_linux ? 0 : 1;
  }
  if (opts->no_api && !opts->config_file) return fail("--no-api needs --config-file");
  if (auto s = config::apply_logging_options(*opts); !s.ok()) return fail(s.error().message);
  const seccomp::Settings seccomp_settings = seccomp_settings_of(*opts);

  // SIGINT/SIGTERM end the VM; they are handled by one thread (blocked everywhere else).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::optional<config::VmConfig> file_config;
  if (opts->config_file) {
    auto c = config::load_vm_config_file(*opts->config_file);
    if (!c.ok()) return fail(c.error().message);
    file_config = std::move(*c);
  }

  Vmm::Options vmm_options;
  vmm_options.seccomp = seccomp_settings;
  if (opts->debug_seccomp_violation_after_ms) {
    vmm_options.debug_seccomp_violation_after = std::chrono::milliseconds(*opts->debug_seccomp_violation_after_ms);
  }
  VmmController controller(vmm_options);
  api::RouterOptions router_options;
  router_options.instance_id = opts->id;
  api::ApiRouter router(controller, router_options);

  std::unique_ptr<api::ApiServer> server;
  if (!opts->no_api) {
    // The API server thread is created inside ApiServer::start; a thread inherits its creator's
    // filters, so the kApi filter goes on here to be in force from that thread's first
    // instruction. This thread narrows itself to kVmm below.
    if (auto f = seccomp::install_thread_filter(seccomp::ThreadKind::kApi, seccomp_settings); !f.ok()) {
      return fail(f.error().message);
    }
    api::ApiServerOptions so;
    so.socket_path = opts->api_sock;
    so.max_body_bytes = opts->http_api_max_payload_size;
    auto s = api::ApiServer::start(so, [&router](std::string_view m, std::string_view t, std::string_view b) {
      return router.handle(m, t, b);
    });
    if (!s.ok()) return fail(s.error().message);
    server = std::move(*s);
  }
  if (file_config) {
    if (auto s = router.set_config(*file_config); !s.ok()) return fail(s.error().message);
    if (auto s = router.start_instance(); !s.ok()) return fail(s.error().message);
  }

  std::thread signal_thread([&controller, &stop_signals, seccomp_settings] {
    if (auto f = seccomp::install_thread_filter(seccomp::ThreadKind::kVmm, seccomp_settings); !f.ok()) {
      std::fprintf(stderr, "kiln-vmm: signal thread: %s\n", f.error().message.c_str());
      controller.shutdown(VmExit::kVmmError);
      return;
    }
    int sig = 0;
    if (sigwait(&stop_signals, &sig) == 0 && sig != SIGUSR2) controller.shutdown(VmExit::kGuestShutdown);
  });
  // From here the main thread only waits and tears down: the kVmm filter suffices.
  if (auto f = seccomp::install_thread_filter(seccomp::ThreadKind::kVmm, seccomp_settings); !f.ok()) {
    std::fprintf(stderr, "kiln-vmm: main thread: %s\n", f.error().message.c_str());
    controller.shutdown(VmExit::kVmmError);
  }
  int code = controller.wait_for_exit();
  if (server) server->stop();
  // Release the signal thread (it only acts on SIGINT/SIGTERM).
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  return code;
}
