// Atomic replacement of small state files: write a temp file in the same directory, fsync it,
// rename it over the target, fsync the directory. A crash leaves the old or the new content.
#pragma once

#include <string>
#include <string_view>

#include "common/io.h"
#include "common/result.h"

namespace kiln::kilnd::registry {

// Suffix of in-flight temp files; loaders skip (and may delete) files ending in it.
inline constexpr std::string_view kTempSuffix = ".tmp";

Status write_file_atomic(const std::string& path, std::string_view content);
// Unlinks `path` and fsyncs its directory; a missing file is not an error.
Status remove_file_durable(const std::string& path);
// mkdir -p of a state directory: mode 0700 for each missing component.
inline Status make_dirs(const std::string& path) { return io::make_dirs(path, 0700); }

}  // namespace kiln::kilnd::registry
