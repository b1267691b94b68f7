// kiln-rootfs: build an ext4 rootfs image from an OCI image reference, or inspect one.
//   kiln-rootfs build REF -o OUT [--cache-dir D] [--tls-verify=false] [--creds U:P]
//                                [--authfile F] [--ca-file F] [--platform OS/ARCH]
//   kiln-rootfs inspect REF [same options]
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/cli/option_parser.h"
#include "rootfs-builder/builder/builder.h"
#include "rootfs-builder/cli/rootfs_options.h"

namespace {

std::string human(uint64_t n) {
  char buf[32];
  if (n >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.1f GiB", n / double(1ull << 30));
  else if (n >= (1 << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", n / double(1 << 20));
  else std::snprintf(buf, sizeof buf, "%.1f KiB", n / 1024.0);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  using kiln::rootfs::RootfsAction;
  auto cmd = kiln::rootfs::parse_rootfs_args(kiln::cli::args_of(argc, argv), kiln::rootfs::default_cache_dir());
  if (!cmd.ok()) return kiln::cli::usage_error("kiln-rootfs", cmd.error().message, kiln::rootfs::rootfs_usage());
  if (cmd->action == RootfsAction::kHelp) return kiln::cli::print_help(kiln::rootfs::rootfs_usage());
  const kiln::rootfs::BuildRequest& req = cmd->request;
  auto fail = [](const kiln::Error& e) {
    std::fprintf(stderr, "kiln-rootfs: %s\n",
                 kiln::rootfs::add_flag_hints(e.message, kiln::rootfs::kRootfsFlagHints).c_str());
    return 1;
  };
  if (cmd->action == RootfsAction::kInspect) {
    auto r = kiln::rootfs::inspect(req);
    if (!r.ok()) return fail(r.error());
    std::fputs(kiln::rootfs::inspect_json(*r).c_str(), stdout);
    return 0;
  }
  bool tty = ::isatty(STDERR_FILENO) == 1;
  std::string last_stage;
  auto progress = [&](const kiln::rootfs::Progress& p) {
    if (!tty) return;
    std::string line = p.stage;
    if (p.total > 0 && p.stage != "done") {
      line += " " + human(p.done) + " / " + human(p.total) + " (" +
              std::to_string(p.done * 100 / p.total) + "%)";
    } else if (!p.detail.empty()) {
      line += " " + p.detail;
    }
    if (line.size() > 100) line.resize(100);
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    if (p.stage == "done") std::fputc('\n', stderr);
  };
  auto r = kiln::rootfs::build(req, progress);
  if (!r.ok()) {
    if (tty) std::fputc('\n', stderr);
    return fail(r.error());
  }
  std::printf("%s %s%s\n", r->manifest_digest.str().c_str(), req.output_path.c_str(),
              r->cache_hit ? " (cached)" : "");
  return 0;
}
