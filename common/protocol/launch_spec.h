// LaunchSpec: what kiln-init runs (image config with the function's overrides applied by the
// host). Travels as a kLaunchSpec frame on control port 10000 or on the config drive.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol/net_address.h"
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
// Lambda (all optional; see RuntimeApi):
//   runtime_api       "http9000" (default: the command serves HTTP on `port`) or "lambda"
//                     (kiln-init serves the Lambda Runtime API and the command polls it)
//   function_name     AWS_LAMBDA_FUNCTION_NAME (default "function"), at most 140 bytes
//   function_arn      Lambda-Runtime-Invoked-Function-Arn (default derived from the name)
//   function_region   AWS_REGION / AWS_DEFAULT_REGION (default "us-east-1")
//   memory_mib        AWS_LAMBDA_FUNCTION_MEMORY_SIZE, 1..1048576 (default 128)
//   function_handler  _HANDLER (default: argv[1], the CMD's first element of an image with a
//                     one-element ENTRYPOINT as Lambda's base images have; none with one arg)
//   timeout_ms        the function's timeout, 1..3600000 (default 3000): an invocation's
//                     deadline when kilnd's request carries none
// Network (all optional; every other net_* key needs net_mac; see NetworkSpec):
//   net_mac           MAC of the guest NIC to configure, "aa:bb:cc:dd:ee:ff"; absent = no network
//   net_address       IPv4 address/prefix on that NIC, "10.0.0.2/30"
//   net_gateway       IPv4 default gateway (needs net_address)
//   net_address6      IPv6 address/prefix, "fd00::2/64"
//   net_gateway6      IPv6 default gateway (needs net_address6; may be link-local)
//   net_mtu           68..65535 (1280.. with net_address6); absent = leave the link's MTU
//   net_dns           repeated, at most 3: nameservers (IPv4 or IPv6) -> /etc/resolv.conf
//   net_search        repeated, at most 6: search domains -> /etc/resolv.conf
//   net_hosts         repeated, at most 64: "ADDRESS NAME [NAME...]" lines added to /etc/hosts

// Text forms as on the wire (common/protocol/net_address.h parses them); empty = absent.
struct NetworkSpec {
  std::string mac;
  std::string address;
  std::string gateway;
  std::string address6;
  std::string gateway6;
  std::uint32_t mtu = 0;  // 0 = leave the link's
  std::vector<std::string> dns;
  std::vector<std::string> search;
  std::vector<std::string> hosts;

  bool enabled() const { return !mac.empty(); }
  bool operator==(const NetworkSpec&) const = default;
};

inline constexpr std::size_t kMaxNameservers = 3;  // MAXNS of glibc and musl: more are ignored
inline constexpr std::size_t kMaxSearchDomains = 6;
inline constexpr std::size_t kMaxHostsEntries = 64;
inline constexpr std::size_t kMaxHostsLine = 1024;
inline constexpr std::uint32_t kMinMtu = 68;        // RFC 791's minimum
inline constexpr std::uint32_t kMinMtuIpv6 = 1280;  // RFC 8200's: below it the kernel drops IPv6
inline constexpr std::uint32_t kMaxMtu = 65535;

// How the command receives invocations.
enum class RuntimeApi { kHttp9000, kLambda };
const char* runtime_api_name(RuntimeApi api);
Result<RuntimeApi> parse_runtime_api(std::string_view text);

// What a Lambda runtime is told about its function (reserved environment, `next` headers).
struct LambdaSpec {
  std::string function_name = "function";
  std::string function_arn;  // "" = arn:aws:lambda:<region>:000000000000:function:<name>
  std::string region = "us-east-1";
  std::uint64_t memory_mib = 128;
  std::uint64_t timeout_ms = 3000;
  std::string handler;  // "" = see function_handler above

  std::string invoked_arn() const;
  bool operator==(const LambdaSpec&) const = default;
};

inline constexpr std::size_t kMaxFunctionName = 140;  // Lambda's limit for a function name
inline constexpr std::size_t kMaxFunctionArn = 256;
inline constexpr std::uint64_t kMaxMemoryMib = 1ull << 20;

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
  NetworkSpec net;
  RuntimeApi runtime_api = RuntimeApi::kHttp9000;
  LambdaSpec lambda;
};

inline constexpr std::size_t kMaxArgs = 4096;
inline constexpr std::size_t kMaxEnv = 4096;

// Validates the fields (argv non-empty, no NUL bytes, env has NAME=, absolute cwd, ranges).
Status validate_launch_spec(const LaunchSpec& spec);
// The network part alone; errors name the key ("launch spec: net_gateway: ...").
Status validate_network_spec(const NetworkSpec& net);

// One net_hosts line: an address and its names, separated by spaces or tabs.
struct HostsEntry {
  IpAddress address;
  std::vector<std::string> names;
};
Result<HostsEntry> parse_hosts_entry(std::string_view line);

// Record payload (not including the frame header).
Result<std::string> encode_launch_spec(const LaunchSpec& spec);
Result<LaunchSpec> decode_launch_spec(std::string_view payload);

// Config drive content: one kLaunchSpec frame at offset 0; trailing bytes (sector padding) are
// ignored. encode produces the frame only; the host pads to the sector size.
Result<std::string> encode_config_drive(const LaunchSpec& spec);
Result<LaunchSpec> decode_config_drive(std::string_view bytes);

}  // namespace kiln::protocol
