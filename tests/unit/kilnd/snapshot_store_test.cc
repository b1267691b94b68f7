// SnapshotStore: the key moves with everything that shapes a VM and ignores per-instance
// fields; snapshots appear only whole (temp dir + rename); one creator per key; a snapshot set
// aside is no longer found; temporary leftovers of a crashed kilnd are removed on open.
#include "src/pool/snapshot_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <vector>

namespace kiln::kilnd::pool {
namespace {

namespace fs = std::filesystem;

class SnapshotStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln-snapstore-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "bin");
    for (const char* f : {"kernel", "initrd", "kiln-vmm", "rootfs.ext4"}) write(dir_ / "bin" / f, f);
    inputs_ = {bin("kernel"), bin("initrd"), bin("kiln-vmm"), "console=ttyS0", 3};
    spec_.instance_id = "i-1";
    spec_.function = "fn";
    spec_.launch.argv = {"/hello"};
    spec_.launch.instance_id = "i-1";
    spec_.rootfs_path = bin("rootfs.ext4");
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }
  std::string bin(const char* name) const { return (dir_ / "bin" / name).string(); }
  std::string key() const {
    auto k = SnapshotStore::key_for(spec_, inputs_);
    EXPECT_TRUE(k.ok()) << k.error().message;
    return k.ok() ? *k : "";
  }

  fs::path dir_;
  SnapshotInputs inputs_;
  InstanceSpec spec_;
};

TEST_F(SnapshotStoreTest, KeyFollowsWhatShapesTheVmAndIgnoresPerInstanceFields) {
  const std::string base = key();
  EXPECT_EQ(base.size(), 64u);
  spec_.instance_id = spec_.launch.instance_id = "i-2";
  spec_.launch.wall_clock_ns = 12345;
  EXPECT_EQ(key(), base);

  std::vector<std::function<void()>> changes = {
      [&] { spec_.launch.env.push_back("A=1"); },
      [&] { spec_.launch.argv.push_back("--flag"); },
      [&] { spec_.memory_mib = 256; },
      [&] { spec_.vcpus = 2; },
      [&] { inputs_.boot_args += " quiet"; },
      [&] { write(bin("kernel"), "a rebuilt kernel"); },
      [&] { write(bin("initrd"), "a new kiln-init"); },
      [&] { write(bin("kiln-vmm"), "a new kiln-vmm build"); },
      [&] { spec_.rootfs_path = bin("initrd"); },
      // The interface's rate limiters live in the VMM's state.
      [&] { spec_.network = net::EgressPolicy{}; spec_.network->bandwidth.rx = 1 << 20; },
      [&] { spec_.network->bandwidth.tx = 1 << 20; },
      // A lazy root disk is named by its pinned chunk index (no file to identify), and its socket
      // (the same for every instance of the image) is not part of the key.
      [&] {
        spec_.rootfs_path.clear();
        spec_.rootfs_index_digest = "sha256:" + std::string(64, 'a');
        spec_.rootfs_nbd_socket = "/state/lazy/sockets/aaaa.sock";
      },
      [&] { spec_.rootfs_index_digest = "sha256:" + std::string(64, 'b'); },
  };
  std::set<std::string> seen = {base};
  for (auto& change : changes) {
    change();
    EXPECT_TRUE(seen.insert(key()).second) << "a change did not move the key";
  }
  const std::string lazy = key();
  spec_.rootfs_nbd_socket = "/elsewhere.sock";
  EXPECT_EQ(key(), lazy);
  inputs_.kernel_path = bin("missing");
  EXPECT_FALSE(SnapshotStore::key_for(spec_, inputs_).ok());
}

TEST_F(SnapshotStoreTest, OnlyWholeSnapshotsAreFoundAndOneCreatorPerKey) {
  auto store = SnapshotStore::open((dir_ / "snaps").string());
  ASSERT_TRUE(store.ok());
  const std::string k = key();
  EXPECT_FALSE(store->find(k));
  auto tmp = store->begin(k);
  ASSERT_TRUE(tmp.ok() && *tmp);
  auto second = store->begin(k);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second) << "two creators for one key";
  write((*tmp)->state, "state");  // no memory file yet: incomplete
  EXPECT_FALSE(store->find(k));
  EXPECT_FALSE(store->commit(k, **tmp).ok());
  EXPECT_FALSE(fs::exists((*tmp)->dir));
  EXPECT_EQ(store->stats().create_failures, 1u);

  tmp = store->begin(k);
  ASSERT_TRUE(tmp.ok() && *tmp);
  write((*tmp)->state, "state");
  write((*tmp)->mem, "mem");
  ASSERT_TRUE(store->commit(k, **tmp).ok());
  auto found = store->find(k);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->dir, (dir_ / "snaps" / k).string());
  EXPECT_FALSE(*store->begin(k)) << "an existing snapshot must not be re-created";
  EXPECT_EQ(store->stats().created, 1u);
}

TEST_F(SnapshotStoreTest, SetAsideSnapshotsAreNotFoundAgain) {
  auto store = SnapshotStore::open((dir_ / "snaps").string());
  ASSERT_TRUE(store.ok());
  const std::string k = key();
  auto tmp = store->begin(k);
  ASSERT_TRUE(tmp.ok() && *tmp);
  write((*tmp)->state, "corrupt");
  write((*tmp)->mem, "mem");
  ASSERT_TRUE(store->commit(k, **tmp).ok());
  store->set_aside(k);
  EXPECT_FALSE(store->find(k));
  EXPECT_TRUE(fs::exists(dir_ / "snaps" / (k + ".bad" )/ "state"));
  EXPECT_EQ(store->stats().load_failures, 1u);
  auto again = store->begin(k);  // a fresh snapshot may be taken
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(*again);
}

TEST_F(SnapshotStoreTest, OpenRemovesTemporaryLeftovers) {
  fs::create_directories(dir_ / "snaps" / "abc.tmp-1-1");
  write(dir_ / "snaps" / "abc.tmp-1-1" / "state", "half");
  fs::create_directories(dir_ / "snaps" / "kept");
  auto store = SnapshotStore::open((dir_ / "snaps").string());
  ASSERT_TRUE(store.ok());
  EXPECT_FALSE(fs::exists(dir_ / "snaps" / "abc.tmp-1-1"));
  EXPECT_TRUE(fs::exists(dir_ / "snaps" / "kept"));
}

TEST_F(SnapshotStoreTest, APrefetchListTravelsWithTheSnapshot) {
  fs::create_directories(dir_ / "snap");
  const SnapshotPaths snap{(dir_ / "snap").string(), "", ""};
  auto none = read_prefetch_list(snap);  // a snapshot of a built image has none
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  ASSERT_TRUE(write_prefetch_list(snap, {7, 0, 4294967295u, 3}).ok());
  auto list = read_prefetch_list(snap);
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(*list, (std::vector<std::uint32_t>{7, 0, 4294967295u, 3}));
  write(dir_ / "snap" / "prefetch", "1\n2\nx3\n");
  auto bad = read_prefetch_list(snap);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "prefetch line 3: not a chunk number");
  write(dir_ / "snap" / "prefetch", "1\n\n");
  EXPECT_FALSE(read_prefetch_list(snap).ok());
  write(dir_ / "snap" / "prefetch", "4294967296\n");
  EXPECT_FALSE(read_prefetch_list(snap).ok());
}

}  // namespace
}  // namespace kiln::kilnd::pool
