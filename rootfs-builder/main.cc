// kiln-rootfs: build an ext4 rootfs image from an OCI image reference, inspect one, or cut an
// image into a chunked block image.
//   kiln-rootfs build REF -o OUT [--cache-dir D] [--tls-verify=false] [--creds U:P]
//                                [--authfile F] [--ca-file F] [--platform OS/ARCH]
//   kiln-rootfs inspect REF [same options]
//   kiln-rootfs chunk IMAGE OUT_DIR [--chunk-kib N] [--zstd-level N]
#include <unistd.h>

#include <chrono>
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
  if (cmd->action == RootfsAction::kChunk) {
    const kiln::rootfs::ChunkRequest& c = cmd->chunk;
    const auto start = std::chrono::steady_clock::now();
    auto r = kiln::rootfs::chunks::chunk_image_file(c.image_path, c.out_dir, c.options);
    if (!r.ok()) return fail(r.error());
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const kiln::rootfs::chunks::ChunkStats& s = r->stats;
    std::printf("index %s\n", r->index_digest.str().c_str());
    std::printf("chunks %llu of %u KiB: %llu stored, %llu zero, %llu repeated\n",
                static_cast<unsigned long long>(s.chunks), c.options.chunk_size / 1024,
                static_cast<unsigned long long>(s.stored_chunks), static_cast<unsigned long long>(s.zero_chunks),
                static_cast<unsigned long long>(s.repeated_chunks));
    std::printf("compressed %llu bytes (%s) of %llu (%s), index %zu bytes, %.2f s\n",
                static_cast<unsigned long long>(r->index.data_size), human(r->index.data_size).c_str(),
                static_cast<unsigned long long>(r->index.image_size), human(r->index.image_size).c_str(),
                r->index_bytes.size(), secs);
    return 0;
  }
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
