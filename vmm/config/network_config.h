// Firecracker's NetworkInterface (PUT /network-interfaces/{iface_id}, the config file's
// "network-interfaces") and PartialNetworkInterface (PATCH, rate limiters only): the structs,
// their parsing (errors name the field) and serialization, and the rules for a VM's set of
// interfaces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/protocol/net_address.h"
#include "vmm/config/rate_limiter_config.h"

namespace kiln::vmm::config {

struct VmConfig;

// Each interface takes a virtio-mmio slot and an IRQ line; kiln caps the count.
inline constexpr size_t kMaxNetworkInterfaces = 4;
// Firecracker's mtu bounds (the IPv4 minimum and the largest 16-bit value).
inline constexpr std::uint16_t kMinMtu = 68;
inline constexpr std::uint16_t kMaxMtu = 65535;
// IFNAMSIZ (16) with its NUL: the longest name a TAP device can have.
inline constexpr size_t kMaxHostDevNameBytes = 15;

struct NetworkInterface {
  std::string iface_id;
  std::string host_dev_name;  // the TAP device, opened by name
  std::optional<protocol::MacAddress> guest_mac;  // absent: the guest driver picks a random one
  std::optional<std::uint16_t> mtu;  // absent: VIRTIO_NET_F_MTU is not offered
  std::optional<RateLimiterConfig> rx_rate_limiter;
  std::optional<RateLimiterConfig> tx_rate_limiter;
  bool operator==(const NetworkInterface&) const = default;
};

// PATCH /network-interfaces/{iface_id}: absent directions stay as they are.
struct NetworkInterfaceUpdate {
  std::string iface_id;
  std::optional<RateLimiterUpdate> rx_rate_limiter;
  std::optional<RateLimiterUpdate> tx_rate_limiter;
  bool operator==(const NetworkInterfaceUpdate&) const = default;
};

// A Linux interface name: 1..15 bytes, no '/', NUL or whitespace (the kernel's dev_valid_name,
// and "." / ".." refused too).
Status check_host_dev_name(const std::string& field, const std::string& name);

// `path` as in vm_config.h ("network-interfaces[0]", "" for a request body).
Result<NetworkInterface> parse_network_interface(const nlohmann::json& j, const std::string& path = "");
Result<NetworkInterfaceUpdate> parse_network_interface_update(const nlohmann::json& j);
nlohmann::json to_json(const NetworkInterface& n);

// Inserts or replaces (same iface_id) an interface: at most kMaxNetworkInterfaces, and no two
// share a host_dev_name or a guest_mac.
Status upsert_network_interface(VmConfig& vm, NetworkInterface iface);
// The interface set's invariants (what upsert keeps), for a set changed another way.
Status check_network_interfaces(const std::vector<NetworkInterface>& ifaces);

}  // namespace kiln::vmm::config
