// Request-body parsing of the pre-boot resources: good bodies, and hostile ones (wrong
// types, missing and unknown fields, out-of-range values, NUL bytes, bad ids).
#include "vmm/config/vm_config.h"

#include <gtest/gtest.h>

#include "tests/unit/vmm/config/parse_test_util.h"

namespace kiln::vmm::config {
namespace {

using nlohmann::json;
using testing::err;
using testing::J;

TEST(JsonText, SyntaxErrorsAreValuesWithFirecrackerPrefix) {
  for (std::string_view bad : {"", "{", "{\"a\":}", "nul", "{} trailing", "{\"a\":1,}", "// c\n{}", "\xff"}) {
    auto r = parse_json_text(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().message.rfind("An error occurred when deserializing the json body of a request", 0), 0u);
  }
  EXPECT_TRUE(parse_json_text("{\"a\": [1, 2.5, null]}").ok());
}

TEST(JsonText, DuplicateFieldsAreRefusedAtAnyDepth) {
  auto top = parse_json_text(R"({"vcpu_count": 1, "vcpu_count": 32})");
  ASSERT_FALSE(top.ok());
  EXPECT_NE(top.error().message.find("duplicate field `vcpu_count`"), std::string::npos);
  EXPECT_FALSE(parse_json_text(R"({"a": {"b": 1, "b": 2}})").ok());
  EXPECT_FALSE(parse_json_text(R"({"a": [{"b": 1}, {"c": 1, "c": 1}]})").ok());
  // The same key in sibling objects is fine.
  EXPECT_TRUE(parse_json_text(R"({"a": {"b": 1}, "c": {"b": 2}, "d": [{"b": 1}, {"b": 2}]})").ok());
}

TEST(JsonText, DeepNestingIsHandled) {
  std::string deep(20000, '[');
  deep += std::string(20000, ']');
  auto r = parse_json_text(deep);
  EXPECT_TRUE(r.ok());
  // And a body that is deep but not an object is refused by every parser.
  if (r.ok()) {
    EXPECT_FALSE(parse_machine_config(r.value()).ok());
  }
}

TEST(MachineConfig, GoodBodyAndDefaults) {
  auto mc = parse_machine_config(J(R"({"vcpu_count": 2, "mem_size_mib": 256})"));
  ASSERT_TRUE(mc.ok()) << mc.error().message;
  EXPECT_EQ(mc->vcpu_count, 2u);
  EXPECT_EQ(mc->mem_size_mib, 256u);
  EXPECT_FALSE(mc->smt);
  EXPECT_FALSE(mc->track_dirty_pages);
  auto full = parse_machine_config(J(R"({"vcpu_count": 4, "mem_size_mib": 1024, "smt": true,
      "track_dirty_pages": true, "cpu_template": "None", "huge_pages": "None"})"));
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_TRUE(full->smt);
  EXPECT_TRUE(full->track_dirty_pages);
  // null optionals are absent (serde Option semantics)
  EXPECT_TRUE(parse_machine_config(J(R"({"vcpu_count": 1, "mem_size_mib": 1, "smt": null, "cpu_template": null})")).ok());
}

TEST(MachineConfig, VcpuRange) {
  EXPECT_EQ(err(parse_machine_config(J(R"({"vcpu_count": 0, "mem_size_mib": 128})"))),
            "vcpu_count: must be between 1 and 32");
  EXPECT_EQ(err(parse_machine_config(J(R"({"vcpu_count": 33, "mem_size_mib": 128})"))),
            "vcpu_count: must be between 1 and 32");
  EXPECT_TRUE(parse_machine_config(J(R"({"vcpu_count": 32, "mem_size_mib": 128})")).ok());
  EXPECT_NE(err(parse_machine_config(J(R"({"vcpu_count": -1, "mem_size_mib": 128})"))).find("vcpu_count"),
            std::string::npos);
  EXPECT_NE(err(parse_machine_config(J(R"({"vcpu_count": 18446744073709551615, "mem_size_mib": 128})")))
                .find("vcpu_count: must be between 1 and 32"),
            std::string::npos);
}

TEST(MachineConfig, SmtNeedsOneOrEvenVcpus) {
  EXPECT_NE(err(parse_machine_config(J(R"({"vcpu_count": 3, "mem_size_mib": 128, "smt": true})"))).find("even"),
            std::string::npos);
  EXPECT_TRUE(parse_machine_config(J(R"({"vcpu_count": 1, "mem_size_mib": 128, "smt": true})")).ok());
  EXPECT_TRUE(parse_machine_config(J(R"({"vcpu_count": 3, "mem_size_mib": 128, "smt": false})")).ok());
}

TEST(MachineConfig, MemoryBounds) {
  EXPECT_NE(err(parse_machine_config(J(R"({"vcpu_count": 1, "mem_size_mib": 0})"))).find("mem_size_mib"),
            std::string::npos);
  EXPECT_NE(err(parse_machine_config(J(R"({"vcpu_count": 1, "mem_size_mib": 17592186044416})"))).find("mem_size_mib"),
            std::string::npos);
}

TEST(MachineConfig, WrongTypesMissingAndUnknownFields) {
  EXPECT_EQ(err(parse_machine_config(J(R"({"vcpu_count": "2", "mem_size_mib": 128})"))),
            "vcpu_count: invalid type: expected an unsigned integer, got string");
  EXPECT_NE(err(parse_machine_config(J(R"({"vcpu_count": 2.0, "mem_size_mib": 128})"))).find("vcpu_count"),
            std::string::npos);
  EXPECT_NE(err(parse_machine_config(J(R"({"vcpu_count": 2, "mem_size_mib": 128, "smt": "yes"})"))).find("smt"),
            std::string::npos);
  EXPECT_EQ(err(parse_machine_config(J(R"({"mem_size_mib": 128})"))), "vcpu_count: missing required field");
  EXPECT_EQ(err(parse_machine_config(J(R"({"vcpu_count": 1})"))), "mem_size_mib: missing required field");
  EXPECT_EQ(err(parse_machine_config(J(R"({"vcpu_count": null, "mem_size_mib": 128})"))),
            "vcpu_count: missing required field");
  auto unknown = err(parse_machine_config(J(R"({"vcpu_count": 1, "mem_size_mib": 128, "ht_enabled": true})")));
  EXPECT_EQ(unknown.rfind("ht_enabled: unknown field", 0), 0u) << unknown;
  EXPECT_NE(unknown.find("`vcpu_count`"), std::string::npos);
  EXPECT_NE(err(parse_machine_config(J(R"([1, 2])"))).find("expected an object"), std::string::npos);
  EXPECT_NE(err(parse_machine_config(J(R"("x")"))).find("expected an object"), std::string::npos);
}

TEST(MachineConfig, UnsupportedTemplatesAndHugePages) {
  EXPECT_NE(err(parse_machine_config(J(R"({"vcpu_count": 1, "mem_size_mib": 128, "cpu_template": "T2"})")))
                .find("cpu_template"),
            std::string::npos);
  EXPECT_NE(err(parse_machine_config(J(R"({"vcpu_count": 1, "mem_size_mib": 128, "huge_pages": "2M"})")))
                .find("huge_pages"),
            std::string::npos);
}

TEST(MachineConfig, PatchKeepsUnmentionedFieldsAndRevalidates) {
  MachineConfig base;
  base.vcpu_count = 2;
  base.mem_size_mib = 512;
  auto p = patch_machine_config(base, J(R"({"mem_size_mib": 1024})"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->vcpu_count, 2u);
  EXPECT_EQ(p->mem_size_mib, 1024u);
  EXPECT_TRUE(patch_machine_config(base, J("{}")).ok());
  base.vcpu_count = 3;
  EXPECT_NE(err(patch_machine_config(base, J(R"({"smt": true})"))).find("even"), std::string::npos);
  EXPECT_FALSE(patch_machine_config(base, J(R"({"bogus": 1})")).ok());
  EXPECT_FALSE(patch_machine_config(base, J(R"({"vcpu_count": 0})")).ok());
}

TEST(MachineConfig, SerializesInFirecrackerShape) {
  MachineConfig mc;
  const json j = to_json(mc);
  EXPECT_EQ(j["vcpu_count"], 1);
  EXPECT_EQ(j["mem_size_mib"], 128);
  EXPECT_EQ(j["smt"], false);
  EXPECT_EQ(j["track_dirty_pages"], false);
  EXPECT_EQ(parse_machine_config(j).value(), mc);
}

TEST(BootSource, GoodAndHostile) {
  auto bs = parse_boot_source(J(R"({"kernel_image_path": "/k", "boot_args": "console=ttyS0", "initrd_path": "/i"})"));
  ASSERT_TRUE(bs.ok());
  EXPECT_EQ(bs->kernel_image_path, "/k");
  EXPECT_EQ(bs->boot_args.value(), "console=ttyS0");
  EXPECT_EQ(bs->initrd_path.value(), "/i");
  EXPECT_EQ(parse_boot_source(to_json(*bs)).value(), *bs);
  auto minimal = parse_boot_source(J(R"({"kernel_image_path": "vmlinux", "initrd_path": null})"));
  ASSERT_TRUE(minimal.ok());
  EXPECT_FALSE(minimal->initrd_path.has_value());
  EXPECT_FALSE(minimal->boot_args.has_value());

  EXPECT_EQ(err(parse_boot_source(J(R"({"boot_args": "x"})"))), "kernel_image_path: missing required field");
  EXPECT_EQ(err(parse_boot_source(J(R"({"kernel_image_path": ""})"))), "kernel_image_path: must not be empty");
  EXPECT_EQ(err(parse_boot_source(J(R"({"kernel_image_path": "/k\u0000/etc/shadow"})"))),
            "kernel_image_path: must not contain NUL bytes");
  EXPECT_FALSE(parse_boot_source(J(R"({"kernel_image_path": 5})")).ok());
  EXPECT_FALSE(parse_boot_source(J(R"({"kernel_image_path": "/k", "boot_args": ["a"]})")).ok());
  EXPECT_FALSE(parse_boot_source(J(R"({"kernel_image_path": "/k", "initrd_path": ""})")).ok());
  EXPECT_EQ(err(parse_boot_source(J(R"({"kernel_image_path": "/k", "kernel_args": "x"})"))).rfind("kernel_args", 0),
            0u);
}

TEST(ResourceId, OnlyAlnumAndUnderscore) {
  EXPECT_TRUE(is_valid_resource_id("rootfs"));
  EXPECT_TRUE(is_valid_resource_id("Drive_0"));
  EXPECT_TRUE(is_valid_resource_id("1"));
  for (std::string_view bad : {"", "..", "../etc", "a/b", "a b", "a-b", "a.b", "%2e%2e", "a\n", "é"}) {
    EXPECT_FALSE(is_valid_resource_id(bad)) << bad;
  }
  EXPECT_FALSE(is_valid_resource_id(std::string_view("a\0b", 3)));
}

TEST(Drive, GoodBodies) {
  auto d = parse_drive(J(R"({"drive_id": "rootfs", "path_on_host": "/img.ext4", "is_root_device": true,
                             "is_read_only": true})"));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->drive_id, "rootfs");
  EXPECT_TRUE(d->is_root_device);
  EXPECT_TRUE(d->is_read_only);
  EXPECT_EQ(d->cache_type, CacheType::kUnsafe);
  EXPECT_EQ(parse_drive(to_json(*d)).value(), *d);

  auto full = parse_drive(J(R"({"drive_id": "data", "path_on_host": "/d", "is_root_device": false,
      "is_read_only": false, "partuuid": "abc", "cache_type": "Writeback", "io_engine": "Sync",
      "rate_limiter": null, "socket": null})"));
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_EQ(full->cache_type, CacheType::kWriteback);
  EXPECT_EQ(full->partuuid.value(), "abc");
  EXPECT_EQ(parse_drive(to_json(*full)).value(), *full);
  // is_read_only defaults to false
  auto rw = parse_drive(J(R"({"drive_id": "x", "path_on_host": "/d", "is_root_device": false})"));
  ASSERT_TRUE(rw.ok());
  EXPECT_FALSE(rw->is_read_only);
}

TEST(Drive, HostileBodies) {
  EXPECT_EQ(err(parse_drive(J(R"({"path_on_host": "/d", "is_root_device": false})"))),
            "drive_id: missing required field");
  EXPECT_EQ(err(parse_drive(J(R"({"drive_id": "x", "path_on_host": "/d"})"))),
            "is_root_device: missing required field");
  EXPECT_EQ(err(parse_drive(J(R"({"drive_id": "x", "is_root_device": false})"))),
            "path_on_host: missing required field");
  EXPECT_NE(err(parse_drive(J(R"({"drive_id": "../x", "path_on_host": "/d", "is_root_device": false})")))
                .find("alphanumeric"),
            std::string::npos);
  EXPECT_NE(err(parse_drive(J(R"({"drive_id": "", "path_on_host": "/d", "is_root_device": false})"))).find("empty"),
            std::string::npos);
  EXPECT_FALSE(parse_drive(J(R"({"drive_id": 1, "path_on_host": "/d", "is_root_device": false})")).ok());
  EXPECT_FALSE(parse_drive(J(R"({"drive_id": "x", "path_on_host": "/d", "is_root_device": "true"})")).ok());
  EXPECT_FALSE(parse_drive(J(R"({"drive_id": "x", "path_on_host": "/d", "is_root_device": false,
                                  "cache_type": "Fast"})")).ok());
  EXPECT_NE(err(parse_drive(J(R"({"drive_id": "x", "path_on_host": "/d", "is_root_device": false,
                                  "io_engine": "Async"})"))).find("io_engine"),
            std::string::npos);
  EXPECT_NE(err(parse_drive(J(R"({"drive_id": "x", "path_on_host": "/d", "is_root_device": false,
                                  "rate_limiter": {"ops": {"size": 0, "refill_time": 1}}})"))).find("rate_limiter"),
            std::string::npos);
  EXPECT_NE(err(parse_drive(J(R"({"drive_id": "x", "path_on_host": "/d", "is_root_device": false,
                                  "socket": "/vhost"})"))).find("socket"),
            std::string::npos);
  EXPECT_EQ(err(parse_drive(J(R"({"drive_id": "x", "path_on_host": "/d", "is_root_device": false,
                                  "direct": true})"))).rfind("direct: unknown field", 0),
            0u);
}

TEST(Drive, UpsertEnforcesOneRootAndReplacesById) {
  VmConfig vm;
  Drive a{"a", "/a", true, true, std::nullopt, CacheType::kUnsafe, {}};
  Drive b{"b", "/b", false, false, std::nullopt, CacheType::kUnsafe, {}};
  ASSERT_TRUE(upsert_drive(vm, b).ok());
  ASSERT_TRUE(upsert_drive(vm, a).ok());
  ASSERT_EQ(vm.drives.size(), 2u);
  EXPECT_EQ(vm.drives[0].drive_id, "a");  // root first (becomes /dev/vda)
  Drive c = b;
  c.drive_id = "c";
  c.is_root_device = true;
  EXPECT_EQ(upsert_drive(vm, c).error().message, "A root block device already exists!");
  // Re-putting the root drive itself is fine; replacing keeps one entry.
  a.path_on_host = "/a2";
  ASSERT_TRUE(upsert_drive(vm, a).ok());
  ASSERT_EQ(vm.drives.size(), 2u);
  EXPECT_EQ(vm.root_drive()->path_on_host, "/a2");
}

TEST(Drive, UpsertCapsDriveCount) {
  VmConfig vm;
  for (size_t i = 0; i < kMaxDrives; ++i) {
    ASSERT_TRUE(upsert_drive(vm, Drive{"d" + std::to_string(i), "/d", false, false, {}, CacheType::kUnsafe, {}}).ok());
  }
  EXPECT_FALSE(upsert_drive(vm, Drive{"extra", "/d", false, false, {}, CacheType::kUnsafe, {}}).ok());
  // Replacing an existing one still works at the cap.
  EXPECT_TRUE(upsert_drive(vm, Drive{"d0", "/other", false, true, {}, CacheType::kUnsafe, {}}).ok());
}

TEST(Vsock, GoodAndHostile) {
  auto v = parse_vsock(J(R"({"guest_cid": 3, "uds_path": "/tmp/v.sock"})"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->guest_cid, 3u);
  EXPECT_EQ(parse_vsock(to_json(*v)).value(), *v);
  auto with_id = parse_vsock(J(R"({"guest_cid": 4294967294, "uds_path": "/v", "vsock_id": "vsock0"})"));
  ASSERT_TRUE(with_id.ok());
  EXPECT_EQ(with_id->vsock_id.value(), "vsock0");

  EXPECT_NE(err(parse_vsock(J(R"({"guest_cid": 2, "uds_path": "/v"})"))).find("guest_cid: must be between 3"),
            std::string::npos);
  EXPECT_FALSE(parse_vsock(J(R"({"guest_cid": 0, "uds_path": "/v"})")).ok());
  EXPECT_FALSE(parse_vsock(J(R"({"guest_cid": 4294967295, "uds_path": "/v"})")).ok());
  EXPECT_FALSE(parse_vsock(J(R"({"guest_cid": 4294967296, "uds_path": "/v"})")).ok());
  EXPECT_FALSE(parse_vsock(J(R"({"guest_cid": -3, "uds_path": "/v"})")).ok());
  EXPECT_EQ(err(parse_vsock(J(R"({"guest_cid": 3})"))), "uds_path: missing required field");
  EXPECT_EQ(err(parse_vsock(J(R"({"uds_path": "/v"})"))), "guest_cid: missing required field");
  EXPECT_FALSE(parse_vsock(J(R"({"guest_cid": 3, "uds_path": "/v", "vsock_id": "a/b"})")).ok());
  EXPECT_FALSE(parse_vsock(J(R"({"guest_cid": 3, "uds_path": "/v", "port": 1})")).ok());
}

TEST(SmallResources, EntropySerialLoggerMetrics) {
  EXPECT_TRUE(parse_entropy(J("{}")).ok());
  EXPECT_TRUE(parse_entropy(J(R"({"rate_limiter": null})")).ok());
  EXPECT_FALSE(parse_entropy(J(R"({"rate_limiter": {}})")).ok());
  EXPECT_FALSE(parse_entropy(J(R"({"x": 1})")).ok());

  EXPECT_EQ(parse_serial(J(R"({"serial_out_path": "/tmp/console"})"))->serial_out_path.value(), "/tmp/console");
  EXPECT_FALSE(parse_serial(J(R"({"serial_out_path": ""})")).ok());

  auto l = parse_logger(J(R"({"log_path": "/tmp/l", "level": "debug", "show_level": true})"));
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(parse_logger(to_json(*l)).value(), *l);
  EXPECT_NE(err(parse_logger(J(R"({"level": "loud"})"))).find("level"), std::string::npos);

  EXPECT_EQ(parse_metrics(J(R"({"metrics_path": "/m"})"))->metrics_path, "/m");
  EXPECT_EQ(err(parse_metrics(J("{}"))), "metrics_path: missing required field");
}

}  // namespace
}  // namespace kiln::vmm::config
