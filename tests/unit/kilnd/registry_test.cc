// Function config validation (400s name the field), record JSON, state files and restart
// recovery (a second store on the same directory loads the same functions).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "src/registry/function_config.h"
#include "src/registry/function_store.h"

namespace kiln::kilnd::registry {
namespace {

namespace fs = std::filesystem;

std::string field_of(std::string_view name, std::string_view body) {
  FieldError fe;
  auto r = parse_function_config(name, body, &fe);
  if (r.ok()) return "<ok>";
  EXPECT_EQ(r.error().message, fe.message);
  EXPECT_EQ(fe.message.rfind(fe.field + ": ", 0), 0u) << fe.message;
  return fe.field;
}

TEST(FunctionConfig, ValidFullConfig) {
  FieldError fe;
  auto c = parse_function_config("hello", R"({
    "image": "oci:/tmp/hello:latest", "command": ["/hello"], "args": ["--x"],
    "env": {"GREETING": "hi", "_A1": ""}, "working_dir": "/srv", "user": "app",
    "memory_mib": 256, "vcpus": 2, "timeout_ms": 5000, "concurrency": 4,
    "min_instances": 1, "max_instances": 3, "max_queue": 7, "idle_timeout_s": 60,
    "registry_credentials": {"username": "u", "password": "p"}, "tls_verify": false})", &fe);
  ASSERT_TRUE(c.ok()) << fe.message;
  EXPECT_EQ(c->image, "oci:/tmp/hello:latest");
  EXPECT_EQ(*c->command, std::vector<std::string>{"/hello"});
  EXPECT_EQ(c->env.at("GREETING"), "hi");
  EXPECT_EQ(c->memory_mib, 256u);
  EXPECT_EQ(c->concurrency, 4u);
  EXPECT_EQ(c->max_queue, 7u);
  EXPECT_EQ(c->credentials.password, "p");
  EXPECT_FALSE(c->tls_verify);
}

TEST(FunctionConfig, DefaultsFromImageOnly) {
  FieldError fe;
  auto c = parse_function_config("a", R"({"image": "registry.local:5000/hello:1"})", &fe);
  ASSERT_TRUE(c.ok()) << fe.message;
  EXPECT_FALSE(c->command.has_value());
  EXPECT_EQ(c->memory_mib, 128u);
  EXPECT_EQ(c->timeout_ms, 3000u);
  EXPECT_EQ(c->concurrency, 1u);
}

TEST(FunctionConfig, ErrorsNameTheField) {
  EXPECT_EQ(field_of("ok", R"({})"), "image");
  EXPECT_EQ(field_of("ok", R"({"image": 5})"), "image");
  EXPECT_EQ(field_of("ok", R"({"image": "UPPER/Case::bad"})"), "image");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "memory_mib": 1})"), "memory_mib");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "memory_mib": -128})"), "memory_mib");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "memory_mib": 1.5})"), "memory_mib");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "vcpus": 0})"), "vcpus");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "timeout_ms": 0})"), "timeout_ms");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "concurrency": "4"})"), "concurrency");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "command": []})"), "command");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "args": ["a", 1]})"), "args[1]");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "env": {"1BAD": "v"}})"), "env.1BAD");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "env": {"OK": 1}})"), "env.OK");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "env": []})"), "env");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "working_dir": "rel"})"), "working_dir");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "min_instances": 5, "max_instances": 2})"), "min_instances");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "imgae": "typo"})"), "imgae");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "registry_credentials": {"token": "t"}})"),
            "registry_credentials.token");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "name": "other"})"), "name");
  EXPECT_EQ(field_of("ok", "not json"), "body");
  EXPECT_EQ(field_of("ok", "[1,2]"), "body");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "args": ["a\u0000"]})"),
            "args[0]");
}

TEST(FunctionConfig, NetworkErrorsNameTheField) {
  EXPECT_EQ(field_of("ok", R"({"image": "x", "network": "egress"})"), "network");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "network": null})"), "network");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "network": {"mode": "open"}})"), "network.mode");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "network": {"allow": ["10.0.0.0/8", "10.0.0.1/8"]}})"),
            "network.allow[1]");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "network": {"allow": ["169.254.169.254"]}})"), "network.allow[0]");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "network": {"deny": "10.0.0.0/8"}})"), "network.deny");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "network": {"dns": ["::1"]}})"), "network.dns[0]");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "network": {"mdoe": "none"}})"), "network.mdoe");
  EXPECT_EQ(field_of("ok", R"({"image": "x", "network": {}})"), "<ok>");
}

TEST(FunctionConfig, NetworkAbsentMeansTheOperatorsDefaults) {
  FieldError fe;
  auto plain = parse_function_config("f", R"({"image":"x"})", &fe);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->network.has_value());
  auto empty = parse_function_config("f", R"({"image":"x","network":{}})", &fe);
  ASSERT_TRUE(empty.ok());
  ASSERT_TRUE(empty->network.has_value());
  EXPECT_EQ(*empty->network, net::NetworkSettings{});
  auto full = parse_function_config(
      "f", R"({"image":"x","network":{"mode":"none","allow":["10.1.0.0/16"],"deny":["10.1.2.0/24"],"dns":["10.1.0.53"]}})",
      &fe);
  ASSERT_TRUE(full.ok()) << fe.message;
  ASSERT_TRUE(full->network.has_value());
  EXPECT_EQ(full->network->mode, net::NetworkMode::kNone);
  ASSERT_EQ(full->network->allow.size(), 1u);
  EXPECT_EQ(protocol::format_ip_prefix(full->network->allow[0]), "10.1.0.0/16");
  ASSERT_EQ(full->network->deny.size(), 1u);
  EXPECT_EQ(protocol::format_ip_prefix(full->network->deny[0]), "10.1.2.0/24");
  ASSERT_EQ(full->network->dns.size(), 1u);
  EXPECT_EQ(protocol::format_ip(full->network->dns[0]), "10.1.0.53");
}

TEST(FunctionConfig, HostileNames) {
  EXPECT_EQ(field_of("..", R"({"image": "x"})"), "name");
  EXPECT_EQ(field_of("a/b", R"({"image": "x"})"), "name");
  EXPECT_EQ(field_of("", R"({"image": "x"})"), "name");
  EXPECT_EQ(field_of(std::string(65, 'a'), R"({"image": "x"})"), "name");
  EXPECT_EQ(field_of(std::string("a\0b", 3), R"({"image": "x"})"), "name");
  EXPECT_EQ(field_of("-lead", R"({"image": "x"})"), "name");
  EXPECT_EQ(field_of(std::string(64, 'a'), R"({"image": "x"})"), "<ok>");
}

TEST(FunctionRecord, StateJsonRoundTripAndApiRedaction) {
  FieldError fe;
  FunctionRecord r;
  r.config = *parse_function_config("f1", R"({"image":"x","registry_credentials":{"username":"u","password":"secret"}})", &fe);
  r.image.state = ImageState::kReady;
  r.image.manifest_digest = "sha256:abc";
  r.image.rootfs_path = "/state/images/abc.ext4";
  r.image.entrypoint = {"/hello"};
  r.version = 3;
  auto back = record_from_state_json(record_to_state_json(r));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->config.credentials.password, "secret");
  EXPECT_EQ(back->image.state, ImageState::kReady);
  EXPECT_EQ(back->image.entrypoint, std::vector<std::string>{"/hello"});
  EXPECT_EQ(back->version, 3u);
  EXPECT_FALSE(back->image.lazy.has_value());
  auto api = record_to_api_json(r);
  EXPECT_EQ(api.dump().find("secret"), std::string::npos);
  EXPECT_EQ(api["image"]["state"], "ready");

  r.image.rootfs_path.clear();
  r.image.lazy = ImageStatus::Lazy{"sha256:" + std::string(64, 'c'), "/state/images/lazy/c.index", 1ull << 30,
                                   "sha256:" + std::string(64, 'd'), 123456789};
  auto lazy = record_from_state_json(record_to_state_json(r));
  ASSERT_TRUE(lazy.ok()) << lazy.error().message;
  EXPECT_EQ(lazy->image.lazy, r.image.lazy);
  EXPECT_EQ(record_to_api_json(r)["image"]["lazy"]["image_size"], 1ull << 30);
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kilnd-store-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(StoreTest, RestartLoadsTheSameFunctions) {
  FieldError fe;
  {
    auto store = FunctionStore::open(dir_ + "/functions");
    ASSERT_TRUE(store.ok());
    for (const char* n : {"alpha", "beta", "gamma"}) {
      FunctionRecord r;
      r.config = *parse_function_config(n, R"({"image":"x"})", &fe);
      ASSERT_TRUE(store->save(r).ok());
    }
    ASSERT_TRUE(store->remove("beta").ok());
    ASSERT_TRUE(store->remove("never-existed").ok());
  }
  // What a crash mid-write leaves behind, plus garbage: neither breaks loading.
  std::ofstream(dir_ + "/functions/alpha.json.123.0.tmp") << "{partial";
  std::ofstream(dir_ + "/functions/broken.json") << "{not json";
  std::ofstream(dir_ + "/functions/mismatch.json") << R"({"config":{"name":"other","image":"x"},"image":{"state":"pending"}})";
  auto store2 = FunctionStore::open(dir_ + "/functions");
  ASSERT_TRUE(store2.ok());
  std::vector<std::string> problems;
  auto all = store2->load_all(&problems);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].config.name, "alpha");
  EXPECT_EQ((*all)[1].config.name, "gamma");
  EXPECT_EQ(problems.size(), 2u);
  EXPECT_FALSE(fs::exists(dir_ + "/functions/alpha.json.123.0.tmp"));
}

TEST_F(StoreTest, NetworkSettingSurvivesARestartAndShowsInTheApi) {
  FieldError fe;
  const char* body = R"({"image":"x","network":{"mode":"egress","allow":["10.1.0.0/16"],"deny":["8.8.8.8"],"dns":["1.1.1.1"]}})";
  FunctionRecord with;
  with.config = *parse_function_config("netted", body, &fe);
  FunctionRecord without;
  without.config = *parse_function_config("plain", R"({"image":"x"})", &fe);
  {
    auto store = FunctionStore::open(dir_ + "/functions");
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store->save(with).ok());
    ASSERT_TRUE(store->save(without).ok());
  }
  auto store2 = FunctionStore::open(dir_ + "/functions");
  ASSERT_TRUE(store2.ok());
  std::vector<std::string> problems;
  auto all = store2->load_all(&problems);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(problems.empty());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].config.name, "netted");
  ASSERT_TRUE((*all)[0].config.network.has_value());
  EXPECT_EQ(*(*all)[0].config.network, *with.config.network);
  EXPECT_FALSE((*all)[1].config.network.has_value());  // still the operator's defaults
  auto api = record_to_api_json((*all)[0]);
  EXPECT_EQ(api["config"]["network"],
            nlohmann::json::parse(R"({"mode":"egress","allow":["10.1.0.0/16"],"deny":["8.8.8.8/32"],"dns":["1.1.1.1"]})"));
  EXPECT_FALSE(record_to_api_json((*all)[1])["config"].contains("network"));
}

}  // namespace
}  // namespace kiln::kilnd::registry
