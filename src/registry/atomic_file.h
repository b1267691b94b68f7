// The registry's durable state-file operations beside common/io.h's atomic replacement
// (io::write_file_atomic): durable removal, and mkdir -p of a state directory.
#pragma once

#include <string>
#include <string_view>

#include "common/io.h"
#include "common/result.h"

namespace kiln::kilnd::registry {

// Suffix of in-flight temp files (io::write_file_atomic's); loaders skip and delete them.
inline constexpr std::string_view kTempSuffix = io::kAtomicTempSuffix;

// Unlinks `path` and fsyncs its directory; a missing file is not an error.
Status remove_file_durable(const std::string& path);
// mkdir -p of a state directory: mode 0700 for each missing component.
inline Status make_dirs(const std::string& path) { return io::make_dirs(path, 0700); }

}  // namespace kiln::kilnd::registry
