// kiln-rootfs: build an ext4 rootfs image from an OCI image reference, inspect one, cut an
// image into a chunked block image, publish one next to its image, or look one up.
//   kiln-rootfs build REF -o OUT [--cache-dir D] [--tls-verify=false] [--creds U:P]
//                                [--authfile F] [--ca-file F] [--platform OS/ARCH]
//   kiln-rootfs inspect REF [same options]
//   kiln-rootfs chunk IMAGE OUT_DIR [--chunk-kib N] [--zstd-level N]
//   kiln-rootfs convert REF [--push] [-o OUT_DIR] [chunk and registry options]
//   kiln-rootfs lazy-info REF [--verify-chunks] [registry options]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "common/cli/option_parser.h"
#include "rootfs-builder/artifact/artifact_discovery.h"
#include "rootfs-builder/artifact/convert.h"
#include "rootfs-builder/artifact/registry_chunk_source.h"
#include "rootfs-builder/chunks/chunk_verifier.h"
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

unsigned long long ull(uint64_t n) { return static_cast<unsigned long long>(n); }

// The lines `chunk` and `convert` print.
void print_chunked(const kiln::rootfs::chunks::ChunkedImage& r, double secs) {
  const kiln::rootfs::chunks::ChunkStats& s = r.stats;
  std::printf("index %s\n", r.index_digest.str().c_str());
  std::printf("chunks %llu of %u KiB: %llu stored, %llu zero, %llu repeated\n", ull(s.chunks),
              r.index.chunk_size / 1024, ull(s.stored_chunks), ull(s.zero_chunks), ull(s.repeated_chunks));
  std::printf("compressed %llu bytes (%s) of %llu (%s), index %zu bytes, %.2f s\n", ull(r.index.data_size),
              human(r.index.data_size).c_str(), ull(r.index.image_size), human(r.index.image_size).c_str(),
              r.index_bytes.size(), secs);
}

// lazy-info: exit 0 and the artifact's lines, 1 and "no chunked artifact ..." or an error.
// Reads every stored chunk of `a` once, in index order, and verifies it.
int verify_chunks(const kiln::rootfs::ImageReference& ref, const kiln::rootfs::SourceOptions& opts,
                  const kiln::rootfs::artifact::DiscoveredArtifact& a,
                  const std::function<int(const kiln::Error&)>& fail) {
  namespace rootfs = kiln::rootfs;
  rootfs::artifact::RegistryChunkSource src(ref, opts, a.data);
  const auto start = std::chrono::steady_clock::now();
  uint64_t chunks = 0;
  for (uint64_t i = 0; i < a.index.entries.size(); ++i) {
    const auto& e = a.index.entries[i];
    if (e.zero()) continue;
    auto frame = src.fetch_frame(e);
    if (!frame.ok()) return fail(frame.error().wrap("chunk " + std::to_string(i)));
    auto chunk = rootfs::chunks::verify_chunk(a.index, i, *frame);
    if (!chunk.ok()) return fail(chunk.error());
    ++chunks;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto& c = src.counters();
  std::printf("verified %llu chunks: %llu fetches, %llu bytes (%s) in %.2f s, %.2f ms per fetch\n", ull(chunks),
              ull(c.fetches.load()), ull(c.bytes.load()), human(c.bytes.load()).c_str(), secs,
              c.fetches.load() ? c.wait_ns.load() / 1e6 / c.fetches.load() : 0.0);
  return 0;
}

int lazy_info(const kiln::rootfs::BuildRequest& req, bool verify,
              const std::function<int(const kiln::Error&)>& fail) {
  namespace rootfs = kiln::rootfs;
  auto ref = rootfs::parse_reference(req.reference);
  if (!ref.ok()) return fail(ref.error());
  if (ref->transport != rootfs::Transport::kDocker) return fail(kiln::Error{"lazy-info needs a registry reference"});
  auto image = rootfs::inspect(req);
  if (!image.ok()) return fail(image.error());
  auto found = rootfs::artifact::discover_artifact(*ref, image->manifest_digest, rootfs::source_options(req));
  if (!found.ok()) return fail(found.error());
  if (!*found) {
    std::printf("no chunked artifact for %s\n", image->manifest_digest.str().c_str());
    return 1;
  }
  const rootfs::artifact::DiscoveredArtifact& a = **found;
  uint64_t stored = 0, zero = 0;
  for (const auto& e : a.index.entries) (e.zero() ? zero : stored) += 1;
  std::printf("image %s\n", image->manifest_digest.str().c_str());
  std::printf("artifact %s (%s)\n", a.artifact.str().c_str(),
              a.via_referrers_api ? "referrers API" : "fallback tag");
  std::printf("index %s\n", a.index_digest.str().c_str());
  std::printf("image size %llu bytes (%s), chunks %zu of %u KiB: %llu stored, %llu zero\n", ull(a.index.image_size),
              human(a.index.image_size).c_str(), a.index.entries.size(), a.index.chunk_size / 1024, ull(stored),
              ull(zero));
  std::printf("data %s, %llu bytes (%s)\n", a.data.digest.str().c_str(), ull(a.data.size), human(a.data.size).c_str());
  if (verify) return verify_chunks(*ref, rootfs::source_options(req), a, fail);
  return 0;
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
    print_chunked(*r, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return 0;
  }
  if (cmd->action == RootfsAction::kLazyInfo) return lazy_info(req, cmd->verify_chunks, fail);
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
  if (cmd->action == RootfsAction::kConvert) {
    auto r = kiln::rootfs::artifact::convert(cmd->convert, progress);
    if (!r.ok()) {
      if (tty) std::fputc('\n', stderr);
      return fail(r.error());
    }
    std::printf("image %s%s\n", r->image.manifest_digest.str().c_str(), r->image.cache_hit ? " (cached)" : "");
    print_chunked(r->chunked, r->chunk_seconds);
    if (r->pushed) {
      const kiln::rootfs::artifact::PushedArtifact& p = *r->pushed;
      std::printf("artifact %s pushed, %llu bytes uploaded%s\n", p.artifact.str().c_str(), ull(p.uploaded_bytes),
                  p.fallback_tag_updated ? ", referrers tag updated" : "");
    }
    return 0;
  }
  auto r = kiln::rootfs::build(req, progress);
  if (!r.ok()) {
    if (tty) std::fputc('\n', stderr);
    return fail(r.error());
  }
  std::printf("%s %s%s\n", r->manifest_digest.str().c_str(), req.output_path.c_str(),
              r->cache_hit ? " (cached)" : "");
  return 0;
}
