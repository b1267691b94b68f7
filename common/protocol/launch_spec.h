// LaunchSpec: what kiln-init runs (image config with the function's overrides applied by the
// host). Travels as a kLaunchSpec frame on control port 10000 or on the config drive.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace kiln::protocol {

// Record keys (see record.h):
//   arg               repeated, required (>= 1): argv; argv[0] is the command (PATH-searched)
//   env               repeated: "NAME=value"
//   cwd               absolute working directory (default "/")
//   user              "" (root), "uid", "uid:gid", "name", "name:group" (resolved in the image)
//   hostname          guest hostname (default "kiln")
//   instance_id       opaque id echoed in hello events
//   port              port the function listens on, default 9000
//   ready_timeout_ms  how long to wait for the port to accept, default 10000
//   stop_grace_ms     SIGTERM -> SIGKILL grace period, default 5000
//   overlay_mib       size of the writable tmpfs layer over the image, default 256
//   wall_clock_ns     host time (ns since the epoch) to set the guest clock to; 0 = leave it
struct LaunchSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string working_dir = "/";
  std::string user;
  std::string hostname = "kiln";
  std::string instance_id;
  std::uint16_t port = 9000;
  std::uint64_t ready_timeout_ms = 10000;
  std::uint64_t stop_grace_ms = 5000;
  std::uint64_t overlay_mib = 256;
  std::uint64_t wall_clock_ns = 0;
};

inline constexpr std::size_t kMaxArgs = 4096;
inline constexpr std::size_t kMaxEnv = 4096;

// Validates the fields (argv non-empty, no NUL bytes, env has NAME=, absolute cwd, ranges).
Status validate_launch_spec(const LaunchSpec& spec);

// Record payload (not including the frame header).
Result<std::string> encode_launch_spec(const LaunchSpec& spec);
Result<LaunchSpec> decode_launch_spec(std::string_view payload);

// Config drive content: one kLaunchSpec frame at offset 0; trailing bytes (sector padding) are
// ignored. encode produces the frame only; the host pads to the sector size.
Result<std::string> encode_config_drive(const LaunchSpec& spec);
Result<LaunchSpec> decode_config_drive(std::string_view bytes);

}  // namespace kiln::protocol
