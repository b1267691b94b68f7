// kiln-rootfs's command line: `build REF -o OUT [options]`, `inspect REF [options]`,
// `chunk IMAGE OUT_DIR [options]`, `convert REF [--push] [-o OUT_DIR] [options]` and
// `lazy-info REF [options]`, parsed into requests with errors as values (each one a usage
// error: exit 2).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "rootfs-builder/artifact/convert.h"
#include "rootfs-builder/builder/builder.h"
#include "rootfs-builder/chunks/chunker.h"
#include "rootfs-builder/registry/error_hints.h"

namespace kiln::rootfs {

enum class RootfsAction { kHelp, kBuild, kInspect, kChunk, kConvert, kLazyInfo };

// `chunk IMAGE OUT_DIR [--chunk-kib N] [--zstd-level N]`.
struct ChunkRequest {
  std::string image_path;
  std::string out_dir;
  chunks::ChunkOptions options;
};

struct RootfsCommand {
  RootfsAction action = RootfsAction::kHelp;
  BuildRequest request;  // build, inspect, lazy-info
  ChunkRequest chunk;  // chunk
  artifact::ConvertRequest convert;  // convert (its build: the registry options)
  bool verify_chunks = false;  // lazy-info --verify-chunks: fetch and verify every stored chunk
};

// `args` without argv[0]; `cache_dir` is the default for --cache-dir.
Result<RootfsCommand> parse_rootfs_args(const std::vector<std::string>& args, const std::string& cache_dir);
// $KILN_CACHE_DIR/rootfs, else $XDG_CACHE_HOME/kiln/rootfs, else ~/.cache/kiln/rootfs.
std::string default_cache_dir();
std::string rootfs_usage();

// kiln-rootfs's flags for the registry hints (error_hints.h).
inline constexpr FrontEndFlags kRootfsFlagHints{"use --creds USER:PASS or --authfile FILE", "use --tls-verify=false"};

}  // namespace kiln::rootfs
