// Network interfaces and rate limiters in the configuration model: MAC text, token buckets
// (good, hostile, PATCH merging), NetworkInterface bodies, the interface set's rules, the
// config file's "network-interfaces", drives' rate_limiter, and the snapshot load overrides.
#include "vmm/config/network_config.h"

#include <gtest/gtest.h>

#include "tests/unit/vmm/config/parse_test_util.h"

#include "vmm/config/snapshot_config.h"
#include "vmm/config/vm_config.h"

namespace kiln::vmm::config {
namespace {

using nlohmann::json;
using testing::err;
using testing::J;

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// ---------------------------------------------------------------- rate limiters

Result<std::optional<RateLimiterConfig>> limiter(std::string_view text) {
  const json j = J(text);
  return parse_rate_limiter(&j, "rx_rate_limiter");
}

TEST(RateLimiter, FirecrackerShapeAndRoundTrip) {
  auto rl = limiter(R"({"bandwidth": {"size": 1048576, "one_time_burst": 4096, "refill_time": 1000},
                        "ops": {"size": 100, "refill_time": 10}})");
  ASSERT_TRUE(rl.ok()) << rl.error().message;
  ASSERT_TRUE(rl->has_value());
  const RateLimiterConfig& c = **rl;
  EXPECT_EQ(c.bandwidth, (TokenBucketConfig{1048576, 4096, 1000}));
  EXPECT_EQ(c.ops, (TokenBucketConfig{100, 0, 10}));  // one_time_burst defaults to 0
  const json out = to_json(c);
  EXPECT_EQ(out["bandwidth"]["refill_time"], 1000);
  EXPECT_EQ(out["ops"]["one_time_burst"], 0);
  EXPECT_EQ(parse_rate_limiter(&out, "x").value(), rl.value());

  auto bw_only = limiter(R"({"bandwidth": {"size": 10, "refill_time": 1}, "ops": null})");
  ASSERT_TRUE(bw_only.ok() && bw_only->has_value());
  EXPECT_FALSE((*bw_only)->ops.has_value());
  EXPECT_TRUE(to_json(**bw_only)["ops"].is_null());
}

TEST(RateLimiter, NullAbsentAndEmptyMeanNoLimit) {
  EXPECT_FALSE(parse_rate_limiter(nullptr, "rx_rate_limiter").value().has_value());
  EXPECT_FALSE(limiter("null").value().has_value());
  EXPECT_FALSE(limiter("{}").value().has_value());
  EXPECT_FALSE(limiter(R"({"bandwidth": null, "ops": null})").value().has_value());
  EXPECT_TRUE(rate_limiter_json(std::nullopt).is_null());
}

TEST(RateLimiter, HostileBucketsNameTheField) {
  EXPECT_TRUE(starts_with(err(limiter(R"({"bandwidth": {"size": 0, "refill_time": 100}})")),
                          "rx_rate_limiter.bandwidth.size: must be at least 1"));
  EXPECT_TRUE(starts_with(err(limiter(R"({"ops": {"size": 10, "refill_time": 0}})")),
                          "rx_rate_limiter.ops.refill_time: must be from 1 to"));
  EXPECT_TRUE(starts_with(err(limiter(R"({"ops": {"size": 10, "refill_time": 4294967297}})")),
                          "rx_rate_limiter.ops.refill_time: must be from 1 to"));
  EXPECT_TRUE(limiter(R"({"ops": {"size": 10, "refill_time": 4294967296}})").ok());  // kMaxRefillTimeMs itself
  EXPECT_EQ(err(limiter(R"({"bandwidth": {"refill_time": 100}})")), "rx_rate_limiter.bandwidth.size: missing required field");
  EXPECT_EQ(err(limiter(R"({"bandwidth": {"size": 100}})")), "rx_rate_limiter.bandwidth.refill_time: missing required field");
  EXPECT_EQ(err(limiter(R"({"bandwidth": {"size": -1, "refill_time": 100}})")),
            "rx_rate_limiter.bandwidth.size: invalid value: must not be negative");
  EXPECT_TRUE(starts_with(err(limiter(R"({"bandwidth": {"size": 1.5, "refill_time": 100}})")),
                          "rx_rate_limiter.bandwidth.size: invalid type"));
  EXPECT_TRUE(starts_with(err(limiter(R"({"bandwidth": {"size": "10", "refill_time": 100}})")),
                          "rx_rate_limiter.bandwidth.size: invalid type"));
  EXPECT_TRUE(starts_with(err(limiter(R"({"bandwidth": {"size": 10, "refill_time": 1, "one_time_burst": -5}})")),
                          "rx_rate_limiter.bandwidth.one_time_burst"));
  EXPECT_TRUE(starts_with(err(limiter(R"({"bandwidth": {"size": 10, "refill_time": 1, "refill": 2}})")),
                          "rx_rate_limiter.bandwidth.refill: unknown field"));
  EXPECT_TRUE(starts_with(err(limiter(R"({"bytes": {"size": 10, "refill_time": 1}})")),
                          "rx_rate_limiter.bytes: unknown field"));
  EXPECT_TRUE(starts_with(err(limiter(R"({"bandwidth": 10})")), "rx_rate_limiter.bandwidth: invalid type"));
  EXPECT_TRUE(starts_with(err(limiter("[]")), "rx_rate_limiter: invalid type"));
  // The largest sizes the limiter accepts are accepted here too.
  EXPECT_TRUE(limiter(R"({"bandwidth": {"size": 18446744073709551615, "one_time_burst": 18446744073709551615,
                          "refill_time": 1}})").ok());
}

TEST(RateLimiter, UpdateMergesAsFirecrackerDoes) {
  const RateLimiterConfig base{TokenBucketConfig{100, 0, 1000}, TokenBucketConfig{10, 0, 1000}};
  auto update = [](std::string_view text) {
    const json j = J(text);
    auto u = parse_rate_limiter_update(&j, "tx_rate_limiter");
    EXPECT_TRUE(u.ok()) << (u.ok() ? "" : u.error().message);
    return u.ok() && u->has_value() ? **u : RateLimiterUpdate{};
  };
  // An absent bucket stays, a given one replaces.
  auto bw = apply_rate_limiter_update(base, update(R"({"bandwidth": {"size": 200, "refill_time": 500}})"));
  ASSERT_TRUE(bw.has_value());
  EXPECT_EQ(bw->bandwidth, (TokenBucketConfig{200, 0, 500}));
  EXPECT_EQ(bw->ops, base.ops);
  // Size 0 removes a bucket; removing both lifts the limit.
  auto no_ops = apply_rate_limiter_update(base, update(R"({"ops": {"size": 0, "refill_time": 0}})"));
  ASSERT_TRUE(no_ops.has_value());
  EXPECT_FALSE(no_ops->ops.has_value());
  EXPECT_EQ(no_ops->bandwidth, base.bandwidth);
  EXPECT_FALSE(apply_rate_limiter_update(base, update(R"({"bandwidth": {"size": 0, "refill_time": 1},
      "ops": {"size": 0, "refill_time": 1}})")).has_value());
  // Onto no limiter at all.
  auto fresh = apply_rate_limiter_update(std::nullopt, update(R"({"ops": {"size": 5, "refill_time": 1}})"));
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(fresh->ops, (TokenBucketConfig{5, 0, 1}));
  EXPECT_FALSE(fresh->bandwidth.has_value());
  EXPECT_EQ(apply_rate_limiter_update(base, update("{}")), base);
  // Null or absent: no update of that direction.
  EXPECT_FALSE(parse_rate_limiter_update(nullptr, "tx_rate_limiter").value().has_value());
  // A non-zero bucket still needs a valid refill time.
  const json bad = J(R"({"ops": {"size": 5, "refill_time": 0}})");
  EXPECT_TRUE(starts_with(err(parse_rate_limiter_update(&bad, "tx_rate_limiter")), "tx_rate_limiter.ops.refill_time"));
}

TEST(RateLimiter, DrivesCarryOneAndRoundTripIt) {
  auto d = parse_drive(J(R"({"drive_id": "data", "path_on_host": "/d", "is_root_device": false,
      "rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}}})"));
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_TRUE(d->rate_limiter.has_value());
  EXPECT_EQ(d->rate_limiter->bandwidth, (TokenBucketConfig{1000, 0, 100}));
  EXPECT_EQ(to_json(*d)["rate_limiter"]["bandwidth"]["size"], 1000);
  EXPECT_EQ(parse_drive(to_json(*d)).value(), *d);
  EXPECT_TRUE(starts_with(err(parse_drive(J(R"({"drive_id": "data", "path_on_host": "/d", "is_root_device": false,
      "rate_limiter": {"ops": {"size": 0, "refill_time": 100}}})"))),
                          "rate_limiter.ops.size"));
}

// ---------------------------------------------------------------- network interfaces

constexpr std::string_view kFullIface = R"({"iface_id": "eth0", "host_dev_name": "tap0",
    "guest_mac": "06:00:AC:10:00:02", "mtu": 1500,
    "rx_rate_limiter": {"bandwidth": {"size": 1024, "one_time_burst": 1048576, "refill_time": 1000}},
    "tx_rate_limiter": {"ops": {"size": 100, "refill_time": 1000}}})";

TEST(NetworkInterface, GoodBodiesRoundTrip) {
  auto n = parse_network_interface(J(kFullIface));
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(n->iface_id, "eth0");
  EXPECT_EQ(n->host_dev_name, "tap0");
  EXPECT_EQ(n->guest_mac, (protocol::MacAddress{0x06, 0, 0xac, 0x10, 0, 0x02}));
  EXPECT_EQ(n->mtu, 1500);
  EXPECT_EQ(n->rx_rate_limiter->bandwidth->one_time_burst, 1048576u);
  EXPECT_EQ(n->tx_rate_limiter->ops->size, 100u);
  const json out = to_json(*n);
  EXPECT_EQ(out["guest_mac"], "06:00:ac:10:00:02");
  EXPECT_EQ(parse_network_interface(out).value(), *n);

  auto min = parse_network_interface(J(R"({"iface_id": "eth_1", "host_dev_name": "kiln-tap.012345"})"));
  ASSERT_TRUE(min.ok()) << min.error().message;  // 15 bytes: the longest name
  EXPECT_FALSE(min->guest_mac || min->mtu || min->rx_rate_limiter || min->tx_rate_limiter);
  const json min_out = to_json(*min);
  EXPECT_TRUE(min_out["guest_mac"].is_null());
  EXPECT_TRUE(min_out["mtu"].is_null());
  EXPECT_TRUE(min_out["rx_rate_limiter"].is_null());
  EXPECT_EQ(parse_network_interface(min_out).value(), *min);
  EXPECT_EQ(parse_network_interface(J(R"({"iface_id": "e", "host_dev_name": "t", "mtu": 68})"))->mtu, 68);
  EXPECT_EQ(parse_network_interface(J(R"({"iface_id": "e", "host_dev_name": "t", "mtu": 65535})"))->mtu, 65535);
}

TEST(NetworkInterface, HostileBodiesNameTheField) {
  auto e = [](std::string_view text) { return err(parse_network_interface(J(text))); };
  EXPECT_EQ(e(R"({"host_dev_name": "tap0"})"), "iface_id: missing required field");
  EXPECT_EQ(e(R"({"iface_id": "eth0"})"), "host_dev_name: missing required field");
  EXPECT_NE(e(R"({"iface_id": "eth-0", "host_dev_name": "tap0"})").find("alphanumeric"), std::string::npos);
  EXPECT_NE(e(R"({"iface_id": "", "host_dev_name": "tap0"})").find("empty"), std::string::npos);
  EXPECT_TRUE(starts_with(e(R"({"iface_id": "eth0", "host_dev_name": ""})"), "host_dev_name: must not be empty"));
  EXPECT_TRUE(starts_with(e(R"({"iface_id": "eth0", "host_dev_name": "kiln-tap.01234567"})"),
                          "host_dev_name: longer than 15 bytes"));
  for (const std::string& bad : {std::string("tap/0"), std::string("tap 0"), std::string("tap\t0"), std::string("tap\n"),
                                 std::string("tap:0"), std::string("tap\0" "0", 5)}) {
    json j = J(R"({"iface_id": "eth0"})");
    j["host_dev_name"] = bad;
    EXPECT_TRUE(starts_with(err(parse_network_interface(j)), "host_dev_name: must not contain")) << bad;
  }
  EXPECT_TRUE(starts_with(e(R"({"iface_id": "eth0", "host_dev_name": ".."})"), "host_dev_name:"));
  EXPECT_TRUE(starts_with(e(R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00"})"),
                          "guest_mac: '06:00:ac:10:00' is not a MAC address"));
  EXPECT_TRUE(starts_with(e(R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "01:00:5e:00:00:01"})"),
                          "guest_mac: '01:00:5e:00:00:01' is a multicast MAC address"));
  EXPECT_TRUE(starts_with(e(R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "FF:FF:FF:FF:FF:FF"})"),
                          "guest_mac: 'FF:FF:FF:FF:FF:FF' is a multicast MAC address"));
  EXPECT_TRUE(starts_with(e(R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "00:00:00:00:00:00"})"),
                          "guest_mac: '00:00:00:00:00:00' is the all-zero MAC address"));
  EXPECT_TRUE(starts_with(e(R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": 6})"),
                          "guest_mac: invalid type"));
  for (std::string_view mtu : {"67", "65536", "0", "-1", "1500.5", "\"1500\""}) {
    EXPECT_TRUE(starts_with(e(R"({"iface_id": "eth0", "host_dev_name": "tap0", "mtu": )" + std::string(mtu) + "}"),
                            "mtu:"))
        << mtu;
  }
  EXPECT_TRUE(starts_with(e(R"({"iface_id": "eth0", "host_dev_name": "tap0",
      "tx_rate_limiter": {"bandwidth": {"size": 0, "refill_time": 1}}})"),
                          "tx_rate_limiter.bandwidth.size: must be at least 1"));
  EXPECT_TRUE(starts_with(e(R"({"iface_id": "eth0", "host_dev_name": "tap0", "allow_mmds_requests": true})"),
                          "allow_mmds_requests: unknown field"));
  EXPECT_TRUE(starts_with(e(R"(["eth0"])"), "invalid type"));
}

NetworkInterface iface(std::string id, std::string tap, std::optional<protocol::MacAddress> mac = std::nullopt) {
  NetworkInterface n;
  n.iface_id = std::move(id);
  n.host_dev_name = std::move(tap);
  n.guest_mac = mac;
  return n;
}

TEST(NetworkInterface, UpsertReplacesByIdAndKeepsTheSetConsistent) {
  VmConfig vm;
  const protocol::MacAddress mac_a{0x06, 0, 0, 0, 0, 1};
  const protocol::MacAddress mac_b{0x06, 0, 0, 0, 0, 2};
  ASSERT_TRUE(upsert_network_interface(vm, iface("eth0", "tap0", mac_a)).ok());
  ASSERT_TRUE(upsert_network_interface(vm, iface("eth1", "tap1", mac_b)).ok());
  // Same id: replaced in place, even taking a name it had before.
  ASSERT_TRUE(upsert_network_interface(vm, iface("eth0", "tap9", mac_a)).ok());
  ASSERT_EQ(vm.network_interfaces.size(), 2u);
  EXPECT_EQ(vm.network_interfaces[0].host_dev_name, "tap9");

  const VmConfig before = vm;
  EXPECT_EQ(upsert_network_interface(vm, iface("eth2", "tap1")).error().message,
            "host_dev_name: network interfaces \"eth1\" and \"eth2\" both use \"tap1\"");
  EXPECT_EQ(upsert_network_interface(vm, iface("eth2", "tap2", mac_a)).error().message,
            "guest_mac: network interfaces \"eth0\" and \"eth2\" both use 06:00:00:00:00:01");
  // Replacing eth0 with eth1's TAP or MAC is refused the same way.
  EXPECT_TRUE(starts_with(upsert_network_interface(vm, iface("eth0", "tap1")).error().message, "host_dev_name:"));
  EXPECT_TRUE(starts_with(upsert_network_interface(vm, iface("eth0", "tap0", mac_b)).error().message, "guest_mac:"));
  EXPECT_EQ(vm, before);  // a refused upsert changes nothing
  // Interfaces without a MAC never clash on it.
  ASSERT_TRUE(upsert_network_interface(vm, iface("eth2", "tap2")).ok());
  ASSERT_TRUE(upsert_network_interface(vm, iface("eth3", "tap3")).ok());
  ASSERT_EQ(vm.network_interfaces.size(), kMaxNetworkInterfaces);
  EXPECT_TRUE(starts_with(upsert_network_interface(vm, iface("eth4", "tap4")).error().message,
                          "network-interfaces: at most 4"));
  EXPECT_TRUE(upsert_network_interface(vm, iface("eth3", "tap5")).ok());  // replacing at the cap
}

TEST(NetworkInterface, ConfigFileParsesAndEmitsThem) {
  const std::string text = R"({"boot-source": {"kernel_image_path": "/k"},
      "network-interfaces": [)" + std::string(kFullIface) + R"(,
                             {"iface_id": "eth1", "host_dev_name": "tap1"}]})";
  auto vm = parse_vm_config_text(text);
  ASSERT_TRUE(vm.ok()) << vm.error().message;
  ASSERT_EQ(vm->network_interfaces.size(), 2u);
  EXPECT_EQ(vm->network_interfaces[1].iface_id, "eth1");
  const json out = to_json(*vm);
  ASSERT_EQ(out["network-interfaces"].size(), 2u);
  EXPECT_EQ(out["network-interfaces"][0]["rx_rate_limiter"]["bandwidth"]["size"], 1024);
  EXPECT_EQ(parse_vm_config(out).value(), *vm);

  auto e = [](std::string_view ifaces) {
    return err(parse_vm_config_text(R"({"boot-source": {"kernel_image_path": "/k"}, "network-interfaces": )" +
                                    std::string(ifaces) + "}"));
  };
  EXPECT_EQ(e(R"([{"iface_id": "eth0", "host_dev_name": "tap0"}, {"iface_id": "eth0", "host_dev_name": "tap1"}])"),
            "network-interfaces[1].iface_id: duplicate iface_id \"eth0\"");
  EXPECT_EQ(e(R"([{"iface_id": "eth0", "host_dev_name": "tap0"}, {"iface_id": "eth1", "host_dev_name": "tap0"}])"),
            "network-interfaces[1]: host_dev_name: network interfaces \"eth0\" and \"eth1\" both use \"tap0\"");
  EXPECT_EQ(e(R"([{"iface_id": "eth0", "host_dev_name": "tap0", "mtu": 9}])").rfind("network-interfaces[0].mtu:", 0), 0u);
  EXPECT_EQ(e(R"([{"iface_id": "eth0", "host_dev_name": "tap0", "rx_rate_limiter": {"ops": {"size": 0,
      "refill_time": 1}}}])"),
            "network-interfaces[0].rx_rate_limiter.ops.size: must be at least 1 (leave the bucket out for no limit)");
  EXPECT_EQ(e(R"({})"), "network-interfaces: invalid type: expected an array, got object");
  std::string five = "[";
  for (int i = 0; i < 5; ++i) {
    five += std::string(i ? "," : "") + R"({"iface_id": "e)" + std::to_string(i) + R"(", "host_dev_name": "t)" +
            std::to_string(i) + R"("})";
  }
  EXPECT_EQ(e(five + "]").rfind("network-interfaces[4]: network-interfaces: at most 4", 0), 0u);
  EXPECT_TRUE(parse_vm_config_text(R"({"boot-source": {"kernel_image_path": "/k"}, "network-interfaces": null})").ok());
}

// ---------------------------------------------------------------- snapshot load overrides

TEST(LoadOverrides, ParsedAndSerialized) {
  auto s = parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_file_path": "/m",
      "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap7"}, {"iface_id": "eth1", "host_dev_name": "tap8"}]})"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->network_overrides.size(), 2u);
  EXPECT_EQ(s->network_overrides[1], (NetworkOverride{"eth1", "tap8"}));
  auto back = parse_snapshot_load(to_json(*s)).value();
  EXPECT_EQ(back.network_overrides, s->network_overrides);

  auto e = [](std::string_view overrides) {
    return err(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_file_path": "/m", "network_overrides": )" +
                                     std::string(overrides) + "}")));
  };
  EXPECT_EQ(e(R"([{"iface_id": "eth0"}])"), "network_overrides[0].host_dev_name: missing required field");
  EXPECT_NE(e(R"([{"iface_id": "eth/0", "host_dev_name": "t"}])").find("alphanumeric"), std::string::npos);
  EXPECT_EQ(e(R"([{"iface_id": "eth0", "host_dev_name": "a-very-long-tap-name"}])")
                .rfind("network_overrides[0].host_dev_name: longer than 15 bytes", 0),
            0u);
  EXPECT_EQ(e(R"([{"iface_id": "a", "host_dev_name": "t"}, {"iface_id": "a", "host_dev_name": "u"}])"),
            "network_overrides[1].iface_id: duplicate iface_id \"a\"");
  EXPECT_EQ(e(R"([{"iface_id": "a", "host_dev_name": "t", "guest_mac": "06:00:00:00:00:01"}])")
                .rfind("network_overrides[0].guest_mac: unknown field", 0),
            0u);
  EXPECT_EQ(e(R"({"iface_id": "a", "host_dev_name": "t"})"), "network_overrides: invalid type: expected an array, got object");
  EXPECT_EQ(e(R"([{"iface_id": "a", "host_dev_name": "t"}, {"iface_id": "b", "host_dev_name": "t"},
                  {"iface_id": "c", "host_dev_name": "t"}, {"iface_id": "d", "host_dev_name": "t"},
                  {"iface_id": "e", "host_dev_name": "t"}])"),
            "network_overrides: at most 4 entries");
}

VmConfig snapshot_config() {
  VmConfig vm;
  vm.vsock = VsockConfig{3, "/old.sock", std::nullopt};
  vm.drives.push_back(Drive{"rootfs", "/old.img", true, true, {}, CacheType::kUnsafe, {}});
  vm.network_interfaces = {iface("eth0", "tap0"), iface("eth1", "tap1")};
  return vm;
}

TEST(LoadOverrides, ApplyEveryKind) {
  VmConfig vm = snapshot_config();
  SnapshotLoad load;
  load.vsock_uds_path_override = "/new.sock";
  load.drive_overrides = {DriveOverride{"rootfs", "/new.img"}};
  load.network_overrides = {NetworkOverride{"eth1", "tap9"}};
  ASSERT_TRUE(apply_load_overrides(vm, load).ok());
  EXPECT_EQ(vm.vsock->uds_path, "/new.sock");
  EXPECT_EQ(vm.drives[0].path_on_host, "/new.img");
  EXPECT_EQ(vm.network_interfaces[0].host_dev_name, "tap0");
  EXPECT_EQ(vm.network_interfaces[1].host_dev_name, "tap9");
  // No overrides: nothing changes.
  const VmConfig same = vm;
  ASSERT_TRUE(apply_load_overrides(vm, SnapshotLoad{}).ok());
  EXPECT_EQ(vm, same);
  // Two interfaces swapping their TAPs is fine (checked after all overrides).
  load = SnapshotLoad{};
  load.network_overrides = {NetworkOverride{"eth0", "tap9"}, NetworkOverride{"eth1", "tap0"}};
  ASSERT_TRUE(apply_load_overrides(vm, load).ok());
  EXPECT_EQ(vm.network_interfaces[0].host_dev_name, "tap9");
  EXPECT_EQ(vm.network_interfaces[1].host_dev_name, "tap0");
}

TEST(LoadOverrides, UnknownDevicesAndClashesChangeNothing) {
  const VmConfig original = snapshot_config();
  auto refused = [&](SnapshotLoad load) {
    VmConfig vm = original;
    auto st = apply_load_overrides(vm, load);
    EXPECT_EQ(vm, original);
    return st.ok() ? std::string() : st.error().message;
  };
  SnapshotLoad unknown_iface;
  unknown_iface.drive_overrides = {DriveOverride{"rootfs", "/new.img"}};  // valid, but not applied either
  unknown_iface.network_overrides = {NetworkOverride{"eth7", "tap7"}};
  EXPECT_EQ(refused(unknown_iface), "network override for unknown network interface 'eth7'");
  SnapshotLoad unknown_drive;
  unknown_drive.drive_overrides = {DriveOverride{"data", "/d"}};
  EXPECT_EQ(refused(unknown_drive), "drive override for unknown drive 'data'");
  SnapshotLoad clash;
  clash.network_overrides = {NetworkOverride{"eth0", "tap1"}};
  EXPECT_EQ(refused(clash), "network_overrides: host_dev_name: network interfaces \"eth0\" and \"eth1\" both use \"tap1\"");
  VmConfig no_vsock = original;
  no_vsock.vsock.reset();
  SnapshotLoad vsock;
  vsock.vsock_uds_path_override = "/v";
  EXPECT_EQ(apply_load_overrides(no_vsock, vsock).error().message,
            "vsock_override given but the snapshot has no vsock device");
}

}  // namespace
}  // namespace kiln::vmm::config
