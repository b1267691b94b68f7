// kiln-rootfs's command line: `build REF -o OUT [options]` and `inspect REF [options]`, parsed
// into a BuildRequest with errors as values (each one a usage error: exit 2).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "rootfs-builder/builder/builder.h"
#include "rootfs-builder/registry/error_hints.h"

namespace kiln::rootfs {

enum class RootfsAction { kHelp, kBuild, kInspect };

struct RootfsCommand {
  RootfsAction action = RootfsAction::kHelp;
  BuildRequest request;
};

// `args` without argv[0]; `cache_dir` is the default for --cache-dir.
Result<RootfsCommand> parse_rootfs_args(const std::vector<std::string>& args, const std::string& cache_dir);
// $KILN_CACHE_DIR/rootfs, else $XDG_CACHE_HOME/kiln/rootfs, else ~/.cache/kiln/rootfs.
std::string default_cache_dir();
std::string rootfs_usage();

// kiln-rootfs's flags for the registry hints (error_hints.h).
inline constexpr FrontEndFlags kRootfsFlagHints{"use --creds USER:PASS or --authfile FILE", "use --tls-verify=false"};

}  // namespace kiln::rootfs
