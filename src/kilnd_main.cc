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

#include "common/cli/option_parser.h"
#include "common/spawn.h"
#include "src/cli/kilnd_options.h"
#include "src/daemon/daemon.h"
#include "src/lazy/lazy_images.h"
#include "src/net/instance_networks.h"
#include "src/pool/vmm_backend.h"

namespace {

namespace fs = std::filesystem;
using namespace kiln::kilnd;

std::string self_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
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
  auto flags = cli::parse_kilnd_args(kiln::cli::args_of(argc, argv), cli::kilnd_defaults());
  if (!flags.ok()) return kiln::cli::usage_error("kilnd", flags.error().message, cli::kilnd_usage());
  if (flags->help) return kiln::cli::print_help(cli::kilnd_usage());
  daemon::DaemonOptions o;
  pool::VmmBackendOptions vmm;
  std::string unix_path = flags->unix_path;
  const std::string tenants_file = flags->tenants_file;
  const bool snapshots = flags->snapshots;
  const bool jail = flags->jail;
  o.state_dir = flags->state_dir;
  vmm.vmm_path = flags->vmm_path;
  vmm.kernel_path = flags->kernel_path;
  vmm.initrd_path = flags->initrd_path;
  vmm.boot_args = flags->boot_args;
  vmm.extra_vmm_args = flags->vmm_args;
  if (flags->boot_timeout) vmm.boot_timeout = *flags->boot_timeout;
  if (flags->park_vmms) vmm.park_vmms = *flags->park_vmms;
  if (flags->drain_timeout) o.drain_timeout = *flags->drain_timeout;
  if (flags->log_memory_bytes) o.logs.max_memory_bytes = *flags->log_memory_bytes;
  o.allow_second_schedules = flags->allow_second_schedules;

  if (!tenants_file.empty()) {
    auto t = load_tenants(tenants_file);
    if (!t.ok()) {
      std::fprintf(stderr, "kilnd: %s\n", t.error().message.c_str());
      return kiln::cli::kUsageExit;
    }
    o.tenants = std::move(*t);
  }
  if (o.state_dir.empty() || o.state_dir[0] != '/') {
    std::error_code ec;
    o.state_dir = fs::absolute(o.state_dir.empty() ? "." : o.state_dir, ec).string();
  }
  o.server.tcp_host = flags->tcp ? flags->tcp_host : "";
  o.server.tcp_port = flags->tcp_port;
  if (unix_path.empty()) unix_path = o.state_dir + "/kilnd.sock";
  if (unix_path != "none") o.server.unix_path = unix_path;
  if (vmm.vmm_path.empty()) {
    std::string next_to_us = self_dir() + "/kiln-vmm";
    vmm.vmm_path = ::access(next_to_us.c_str(), X_OK) == 0 ? next_to_us : "kiln-vmm";
    if (vmm.vmm_path == "kiln-vmm") {
      if (std::string found = kiln::find_in_path("kiln-vmm"); !found.empty()) vmm.vmm_path = found;
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
  // Instance networks: after the stale VMMs are gone, their namespaces and veths go too.
  o.network = flags->network_defaults;
  if (flags->network && flags->network_defaults) {
    std::vector<std::string> report;
    const auto& defaults = *flags->network_defaults;
    kiln::net::InstanceNetworks::Options options{.netns_dir = o.state_dir + "/netns",
                                                 .instance_range = defaults.instance_range,
                                                 .link_prefix = defaults.link_prefix};
    auto nets = kiln::net::InstanceNetworks::start(options, report);
    for (const auto& line : report) std::fprintf(stderr, "kilnd: %s\n", line.c_str());
    if (!nets.ok()) {
      std::fprintf(stderr, "kilnd: instance networks: %s (start with --network off to run without them)\n",
                   nets.error().message.c_str());
      return 1;
    }
    vmm.networks = *nets;
  }

  // Lazy root disks: the host's chunk cache and one NBD server per lazy image; snapshots of their
  // instances keep the chunks read so far, fetched ahead before such a snapshot is restored.
  std::unique_ptr<lazy::LazyImages> lazy_images;
  if (flags->lazy_images) {
    auto opened = lazy::LazyImages::open(o.state_dir + "/lazy", flags->chunk_cache_gib << 30);
    if (!opened.ok()) {
      std::fprintf(stderr, "kilnd: lazy images: %s\n", opened.error().message.c_str());
      return 1;
    }
    lazy_images = std::move(*opened);
    o.lazy_images = lazy_images.get();
    vmm.lazy_read_order = [l = lazy_images.get()](const std::string& digest) { return l->read_order(digest); };
    vmm.lazy_prefetch = [l = lazy_images.get()](const std::string& digest, std::vector<std::uint32_t> chunks) {
      l->prefetch(digest, std::move(chunks));
    };
  }

  asio::io_context io;
  pool::VmmBackend backend(io, vmm);
  daemon::Daemon d(io, o, backend, daemon::rootfs_image_builder(o.state_dir + "/images", flags->lazy_images));
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
