// A function's `network` setting in kilnd: the instance factory's policy (the operator's
// defaults applied, the function's lists carried, no interface when nothing is reachable or
// kilnd runs without instance networks), the deploy refusal with --network off, the policy the
// backend receives, and a restart without networks keeping the setting but not running it.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/functions/function_table.h"
#include "tests/unit/kilnd/support/daemon_harness.h"

namespace kiln::kilnd::functions {
namespace {

using nlohmann::json;

net::IpPrefix cidr(const std::string& text) {
  auto p = protocol::parse_ip_prefix(text, protocol::IpFamily::kV4);
  EXPECT_TRUE(p.ok()) << text;
  return *p;
}

net::IpAddress ip(const std::string& text) { return *protocol::parse_ip(text, protocol::IpFamily::kV4); }

bool contains(const std::vector<net::IpPrefix>& list, const std::string& text) {
  return std::find(list.begin(), list.end(), cidr(text)) != list.end();
}

registry::FunctionRecord record(const std::string& body) {
  registry::FieldError fe;
  auto c = registry::parse_function_config("fn", body, &fe);
  EXPECT_TRUE(c.ok()) << fe.message;
  registry::FunctionRecord r;
  r.config = *c;
  r.version = 4;
  r.image.rootfs_path = "/images/fn.ext4";
  return r;
}

net::NetworkDefaults operator_defaults() {
  net::NetworkDefaults d;
  d.deny = {cidr("203.0.113.0/24")};
  d.dns = {ip("192.0.2.53")};
  return d;
}

TEST(InstanceNetwork, DefaultsApplyToAFunctionWithoutASetting) {
  auto policy = instance_network(record(R"({"image":"x"})").config, operator_defaults());
  ASSERT_TRUE(policy.has_value());
  EXPECT_EQ(policy->mode, net::NetworkMode::kEgress);
  EXPECT_FALSE(policy->allow_private);
  EXPECT_TRUE(policy->allow.empty());
  EXPECT_TRUE(contains(policy->never, "203.0.113.0/24"));  // the operator's deny
  EXPECT_TRUE(contains(policy->never, "169.254.0.0/16"));  // metadata, always
  EXPECT_TRUE(contains(policy->never, "10.200.0.0/16"));  // other instances, always
  EXPECT_EQ(policy->dns, std::vector<net::IpAddress>{ip("192.0.2.53")});
}

TEST(InstanceNetwork, TheFunctionsListsAreCarried) {
  auto policy = instance_network(
      record(R"({"image":"x","network":{"mode":"none","allow":["10.1.0.0/16"],"deny":["10.1.2.0/24"],"dns":["10.1.0.53"]}})")
          .config,
      operator_defaults());
  ASSERT_TRUE(policy.has_value());  // mode none, but something to reach: an interface
  EXPECT_EQ(policy->mode, net::NetworkMode::kNone);
  EXPECT_EQ(policy->allow, std::vector<net::IpPrefix>{cidr("10.1.0.0/16")});
  EXPECT_EQ(policy->deny, std::vector<net::IpPrefix>{cidr("10.1.2.0/24")});
  EXPECT_EQ(policy->dns, std::vector<net::IpAddress>{ip("10.1.0.53")});
  EXPECT_TRUE(contains(policy->never, "203.0.113.0/24"));  // the function cannot re-open it
}

TEST(InstanceNetwork, NothingReachableMeansNoInterface) {
  EXPECT_FALSE(instance_network(record(R"({"image":"x","network":{"mode":"none"}})").config, operator_defaults()));
  net::NetworkDefaults closed = operator_defaults();
  closed.mode = net::NetworkMode::kNone;
  EXPECT_FALSE(instance_network(record(R"({"image":"x"})").config, closed));
  // The function's own mode wins over the operator's.
  EXPECT_TRUE(instance_network(record(R"({"image":"x","network":{"mode":"egress"}})").config, closed));
}

TEST(InstanceNetwork, KilndWithoutNetworksGivesNoInterface) {
  EXPECT_FALSE(instance_network(record(R"({"image":"x"})").config, std::nullopt));
  EXPECT_FALSE(instance_network(record(R"({"image":"x","network":{"mode":"egress"}})").config, std::nullopt));
}

TEST(InstanceNetwork, TheFactoryFillsTheSpec) {
  auto rec = record(R"({"image":"x","memory_mib":256,"network":{"allow":["10.9.0.0/16"]}})");
  pool::InstanceSpec spec = make_instance_spec(rec, "fn-1-abc", operator_defaults());
  EXPECT_EQ(spec.instance_id, "fn-1-abc");
  EXPECT_EQ(spec.function, "fn");
  EXPECT_EQ(spec.function_version, 4u);
  EXPECT_EQ(spec.rootfs_path, "/images/fn.ext4");
  EXPECT_EQ(spec.memory_mib, 256u);
  ASSERT_TRUE(spec.network.has_value());
  EXPECT_EQ(spec.network->allow, std::vector<net::IpPrefix>{cidr("10.9.0.0/16")});
  EXPECT_FALSE(make_instance_spec(rec, "fn-2-abc", std::nullopt).network.has_value());
}

TEST(InstanceNetwork, RefusalOnlyForAnExplicitSettingWithoutNetworks) {
  auto with = record(R"({"image":"x","network":{}})").config;
  auto without = record(R"({"image":"x"})").config;
  auto refusal = network_refusal(with, std::nullopt);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->field, "network");
  EXPECT_EQ(refusal->message, "network: kilnd runs without instance networks (--network off)");
  EXPECT_FALSE(network_refusal(without, std::nullopt));
  EXPECT_FALSE(network_refusal(with, operator_defaults()));
}

using InstanceNetworkApi = test::StateDirTest;

TEST_F(InstanceNetworkApi, DeployWithANetworkIsRefusedWhenKilndRunsWithoutNetworks) {
  test::DaemonHarness k(dir_);
  auto r = k.call("PUT", "/v1/functions/f", R"({"image":"oci:/img:1","network":{"mode":"egress"}})");
  EXPECT_EQ(r.status, 400) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["field"], "network");
  EXPECT_EQ(j["message"], "network: kilnd runs without instance networks (--network off)");
  EXPECT_EQ(k.call("GET", "/v1/functions/f").status, 404);  // nothing stored
  // Without a `network` it deploys and runs on loopback only.
  k.deploy("f", R"({"image":"oci:/img:1"})");
  ASSERT_EQ(k.call("POST", "/v1/functions/f/invoke", "{}").status, 200);
  auto specs = k.on_loop([&k] { return k.backend_.specs; });
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_FALSE(specs.begin()->second.network.has_value());
}

TEST_F(InstanceNetworkApi, TheBackendGetsThePolicyAndARestartWithoutNetworksKeepsTheSetting) {
  {
    test::DaemonHarness k(dir_, std::nullopt, operator_defaults());
    k.deploy("f", R"({"image":"oci:/img:1","network":{"mode":"none","allow":["10.1.0.0/16"]}})");
    auto got = json::parse(k.call("GET", "/v1/functions/f").body);
    EXPECT_EQ(got["config"]["network"], json::parse(R"({"mode":"none","allow":["10.1.0.0/16"]})"));
    ASSERT_EQ(k.call("POST", "/v1/functions/f/invoke", "{}").status, 200);
    auto specs = k.on_loop([&k] { return k.backend_.specs; });
    ASSERT_EQ(specs.size(), 1u);
    const auto& spec = specs.begin()->second;
    ASSERT_TRUE(spec.network.has_value());
    EXPECT_EQ(spec.network->mode, net::NetworkMode::kNone);
    EXPECT_EQ(spec.network->allow, std::vector<net::IpPrefix>{cidr("10.1.0.0/16")});
    EXPECT_EQ(spec.network->dns, std::vector<net::IpAddress>{ip("192.0.2.53")});
    // A changed setting is a new version, like any other config change.
    auto v1 = got["version"].get<std::uint64_t>();
    auto put = k.call("PUT", "/v1/functions/f", R"({"image":"oci:/img:1","network":{"mode":"egress"}})");
    ASSERT_EQ(put.status, 200) << put.body;
    EXPECT_EQ(json::parse(put.body)["version"], v1 + 1);
    // ... whose instances get the new policy.
    ASSERT_EQ(k.call("POST", "/v1/functions/f/invoke", "{}").status, 200);
    auto after = k.on_loop([&k] { return k.backend_.specs; });
    auto newer = std::find_if(after.begin(), after.end(),
                              [&](const auto& s) { return s.second.function_version == v1 + 1; });
    ASSERT_NE(newer, after.end());
    ASSERT_TRUE(newer->second.network.has_value());
    EXPECT_EQ(newer->second.network->mode, net::NetworkMode::kEgress);
    EXPECT_TRUE(newer->second.network->allow.empty());
  }
  // The same state without instance networks: the setting is kept (and shown), but the
  // function does not run without the network it asked for.
  test::DaemonHarness k(dir_);
  auto got = json::parse(k.call("GET", "/v1/functions/f").body);
  EXPECT_EQ(got["config"]["network"], json::parse(R"({"mode":"egress"})"));
  EXPECT_EQ(got["image"]["state"], "ready");
  EXPECT_NE(k.call("POST", "/v1/functions/f/invoke", "{}").status, 200);
  EXPECT_TRUE(k.on_loop([&k] { return k.backend_.specs.empty(); }));
}

}  // namespace
}  // namespace kiln::kilnd::functions
