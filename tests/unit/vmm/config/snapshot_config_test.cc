// Snapshot request bodies (PUT /snapshot/create, PUT /snapshot/load, PATCH /vm).
#include "vmm/config/snapshot_config.h"

#include <gtest/gtest.h>

#include "tests/unit/vmm/config/parse_test_util.h"

namespace kiln::vmm::config {
namespace {

using nlohmann::json;
using testing::err;
using testing::J;

TEST(SnapshotCreate, GoodBodies) {
  auto s = parse_snapshot_create(J(R"({"snapshot_type": "Full", "snapshot_path": "/s", "mem_file_path": "/m"})"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->snapshot_path, "/s");
  EXPECT_EQ(s->mem_file_path, "/m");
  EXPECT_EQ(parse_snapshot_create(to_json(*s)).value(), *s);
  EXPECT_TRUE(parse_snapshot_create(J(R"({"snapshot_path": "/s", "mem_file_path": "/m"})")).ok());
}

TEST(SnapshotCreate, HostileBodies) {
  EXPECT_EQ(err(parse_snapshot_create(J(R"({"mem_file_path": "/m"})"))), "snapshot_path: missing required field");
  EXPECT_EQ(err(parse_snapshot_create(J(R"({"snapshot_path": "/s"})"))), "mem_file_path: missing required field");
  EXPECT_NE(err(parse_snapshot_create(J(R"({"snapshot_type": "Diff", "snapshot_path": "/s", "mem_file_path": "/m"})")))
                .find("Diff"),
            std::string::npos);
  EXPECT_FALSE(parse_snapshot_create(J(R"({"snapshot_type": "full", "snapshot_path": "/s", "mem_file_path": "/m"})")).ok());
  EXPECT_FALSE(parse_snapshot_create(J(R"({"snapshot_path": "/s", "mem_file_path": "/s"})")).ok());
  EXPECT_FALSE(parse_snapshot_create(J(R"({"snapshot_path": "", "mem_file_path": "/m"})")).ok());
  EXPECT_FALSE(parse_snapshot_create(J(R"({"snapshot_path": 1, "mem_file_path": "/m"})")).ok());
  EXPECT_FALSE(parse_snapshot_create(J(R"({"snapshot_path": "/s", "mem_file_path": "/m", "version": "1.0"})")).ok());
  EXPECT_FALSE(parse_snapshot_create(J(R"({"snapshot_path": "/s", "mem_file_path": "/m", "extra": 1})")).ok());
}

TEST(SnapshotLoad, MemBackendAndDeprecatedMemFilePath) {
  auto s = parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_backend": {"backend_type": "File",
      "backend_path": "/m"}, "resume_vm": true})"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->mem_backend.backend_path, "/m");
  EXPECT_TRUE(s->resume_vm);
  EXPECT_FALSE(s->used_deprecated_mem_file_path);
  EXPECT_EQ(parse_snapshot_load(to_json(*s)).value(), *s);

  auto old = parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_file_path": "/m", "enable_diff_snapshots": true})"));
  ASSERT_TRUE(old.ok()) << old.error().message;
  EXPECT_EQ(old->mem_backend.backend_path, "/m");
  EXPECT_TRUE(old->used_deprecated_mem_file_path);
  EXPECT_TRUE(old->track_dirty_pages);
  EXPECT_FALSE(old->resume_vm);
}

TEST(SnapshotLoad, ExactlyOneMemorySource) {
  EXPECT_NE(err(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_file_path": "/m",
      "mem_backend": {"backend_type": "File", "backend_path": "/m"}})"))).find("only one"),
            std::string::npos);
  EXPECT_NE(err(parse_snapshot_load(J(R"({"snapshot_path": "/s"})"))).find("mem_backend"), std::string::npos);
}

TEST(SnapshotLoad, HostileBodies) {
  EXPECT_EQ(err(parse_snapshot_load(J(R"({"mem_file_path": "/m"})"))), "snapshot_path: missing required field");
  EXPECT_NE(err(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_backend": {"backend_type": "Uffd",
      "backend_path": "/u"}})"))).find("Uffd"),
            std::string::npos);
  EXPECT_FALSE(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_backend": {"backend_type": "File"}})")).ok());
  EXPECT_FALSE(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_backend": {"backend_type": "File",
      "backend_path": "/m", "x": 1}})")).ok());
  EXPECT_FALSE(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_backend": "/m"})")).ok());
  EXPECT_FALSE(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_file_path": "/m", "resume_vm": 1})")).ok());
  EXPECT_FALSE(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_file_path": "/m", "bogus": 1})")).ok());
  EXPECT_FALSE(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_file_path": "/m",
      "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap/1"}]})")).ok());
  EXPECT_TRUE(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_file_path": "/m", "network_overrides": []})")).ok());
}

TEST(SnapshotLoad, PathOverrides) {
  auto s = parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_file_path": "/m",
      "vsock_override": {"uds_path": "/new.sock"},
      "drive_overrides": [{"drive_id": "rootfs", "path_on_host": "/img2"}]})"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->vsock_uds_path_override.value(), "/new.sock");
  ASSERT_EQ(s->drive_overrides.size(), 1u);
  EXPECT_EQ(s->drive_overrides[0].path_on_host, "/img2");
  auto back = parse_snapshot_load(to_json(*s)).value();
  EXPECT_FALSE(back.used_deprecated_mem_file_path);  // serialized as mem_backend
  back.used_deprecated_mem_file_path = true;
  EXPECT_EQ(back, *s);

  EXPECT_FALSE(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_file_path": "/m",
      "vsock_override": {}})")).ok());
  EXPECT_FALSE(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_file_path": "/m",
      "drive_overrides": [{"drive_id": "../x", "path_on_host": "/i"}]})")).ok());
  EXPECT_FALSE(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_file_path": "/m",
      "drive_overrides": [{"drive_id": "a", "path_on_host": "/i"}, {"drive_id": "a", "path_on_host": "/j"}]})")).ok());
  EXPECT_FALSE(parse_snapshot_load(J(R"({"snapshot_path": "/s", "mem_file_path": "/m", "drive_overrides": {}})")).ok());
}

TEST(VmState, PausedResumedOnly) {
  EXPECT_EQ(parse_vm_state(J(R"({"state": "Paused"})")).value(), VmStateRequest::kPaused);
  EXPECT_EQ(parse_vm_state(J(R"({"state": "Resumed"})")).value(), VmStateRequest::kResumed);
  EXPECT_FALSE(parse_vm_state(J(R"({"state": "paused"})")).ok());
  EXPECT_FALSE(parse_vm_state(J(R"({"state": "Running"})")).ok());
  EXPECT_FALSE(parse_vm_state(J(R"({"state": 1})")).ok());
  EXPECT_FALSE(parse_vm_state(J(R"({})")).ok());
  EXPECT_FALSE(parse_vm_state(J(R"({"state": "Paused", "now": true})")).ok());
}

}  // namespace
}  // namespace kiln::vmm::config
