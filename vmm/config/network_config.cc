// Parsing, validation and serialization of network interfaces (Firecracker swagger:
// NetworkInterface, PartialNetworkInterface; mtu as in its current swagger).
#include "vmm/config/network_config.h"

#include <utility>

#include "common/json/field_reader.h"
#include "vmm/config/vm_config.h"

namespace kiln::vmm::config {

using nlohmann::json;
using kiln::json::ObjectReader;

Status check_host_dev_name(const std::string& field, const std::string& name) {
  if (name.empty()) return make_error(field + ": must not be empty");
  if (name.size() > kMaxHostDevNameBytes) {
    return make_error(field + ": longer than " + std::to_string(kMaxHostDevNameBytes) +
                      " bytes (a Linux interface name fits IFNAMSIZ)");
  }
  if (name == "." || name == "..") return make_error(field + ": \"" + name + "\" is not an interface name");
  for (char c : name) {
    const bool space = c == ' ' || (c >= '\t' && c <= '\r');
    if (c == '\0' || c == '/' || c == ':' || space) {
      return make_error(field + ": must not contain '/', ':', NUL or whitespace");
    }
  }
  return ok_status();
}

Result<NetworkInterface> parse_network_interface(const json& j, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, path, {"iface_id", "host_dev_name", "guest_mac", "mtu",
                                                             "rx_rate_limiter", "tx_rate_limiter"}));
  NetworkInterface n;
  KILN_ASSIGN_OR_RETURN(n.iface_id, r.req_string("iface_id"));
  KILN_TRY(check_resource_id(r.field("iface_id"), n.iface_id));
  KILN_ASSIGN_OR_RETURN(n.host_dev_name, r.req_string("host_dev_name"));
  KILN_TRY(check_host_dev_name(r.field("host_dev_name"), n.host_dev_name));
  KILN_ASSIGN_OR_RETURN(auto mac_text, r.opt_string("guest_mac"));
  if (mac_text) {
    // A NIC's own address: unicast and not all zero (protocol::parse_mac refuses the others).
    auto mac = protocol::parse_mac(*mac_text);
    if (!mac.ok()) return mac.error().wrap(r.field("guest_mac"));
    n.guest_mac = *mac;
  }
  KILN_ASSIGN_OR_RETURN(auto mtu, r.opt_uint_in("mtu", kMinMtu, kMaxMtu));
  if (mtu) n.mtu = static_cast<std::uint16_t>(*mtu);
  KILN_ASSIGN_OR_RETURN(n.rx_rate_limiter, parse_rate_limiter(r.opt_value("rx_rate_limiter"), r.field("rx_rate_limiter")));
  KILN_ASSIGN_OR_RETURN(n.tx_rate_limiter, parse_rate_limiter(r.opt_value("tx_rate_limiter"), r.field("tx_rate_limiter")));
  KILN_TRY(r.check_unknown());
  return n;
}

Result<NetworkInterfaceUpdate> parse_network_interface_update(const json& j) {
  KILN_ASSIGN_OR_RETURN(auto r, ObjectReader::make(j, "", {"iface_id", "rx_rate_limiter", "tx_rate_limiter"}));
  NetworkInterfaceUpdate u;
  KILN_ASSIGN_OR_RETURN(u.iface_id, r.req_string("iface_id"));
  KILN_TRY(check_resource_id("iface_id", u.iface_id));
  KILN_ASSIGN_OR_RETURN(u.rx_rate_limiter, parse_rate_limiter_update(r.opt_value("rx_rate_limiter"), "rx_rate_limiter"));
  KILN_ASSIGN_OR_RETURN(u.tx_rate_limiter, parse_rate_limiter_update(r.opt_value("tx_rate_limiter"), "tx_rate_limiter"));
  KILN_TRY(r.check_unknown());
  return u;
}

json to_json(const NetworkInterface& n) {
  return json{{"iface_id", n.iface_id},
              {"host_dev_name", n.host_dev_name},
              {"guest_mac", n.guest_mac ? json(protocol::format_mac(*n.guest_mac)) : json(nullptr)},
              {"mtu", n.mtu ? json(*n.mtu) : json(nullptr)},
              {"rx_rate_limiter", rate_limiter_json(n.rx_rate_limiter)},
              {"tx_rate_limiter", rate_limiter_json(n.tx_rate_limiter)}};
}

Status check_network_interfaces(const std::vector<NetworkInterface>& ifaces) {
  if (ifaces.size() > kMaxNetworkInterfaces) {
    return make_error("network-interfaces: at most " + std::to_string(kMaxNetworkInterfaces) +
                      " network interfaces are supported");
  }
  for (size_t i = 0; i < ifaces.size(); ++i) {
    for (size_t k = i + 1; k < ifaces.size(); ++k) {
      const NetworkInterface& a = ifaces[i];
      const NetworkInterface& b = ifaces[k];
      const std::string both = "network interfaces \"" + a.iface_id + "\" and \"" + b.iface_id + "\" both use ";
      if (a.iface_id == b.iface_id) return make_error("iface_id: duplicate iface_id \"" + a.iface_id + "\"");
      if (a.host_dev_name == b.host_dev_name) return make_error("host_dev_name: " + both + "\"" + a.host_dev_name + "\"");
      if (a.guest_mac && a.guest_mac == b.guest_mac) {
        return make_error("guest_mac: " + both + protocol::format_mac(*a.guest_mac));
      }
    }
  }
  return ok_status();
}

Status upsert_network_interface(VmConfig& vm, NetworkInterface iface) {
  std::vector<NetworkInterface> next = vm.network_interfaces;
  bool replaced = false;
  for (NetworkInterface& n : next) {
    if (n.iface_id == iface.iface_id) {
      n = iface;
      replaced = true;
    }
  }
  if (!replaced) next.push_back(std::move(iface));
  KILN_TRY(check_network_interfaces(next));
  vm.network_interfaces = std::move(next);
  return ok_status();
}

}  // namespace kiln::vmm::config
