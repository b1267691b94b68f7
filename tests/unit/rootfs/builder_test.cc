// End to end without a network: OCI layout / oci-archive / docker-archive -> ext4 image,
// checked with debugfs (no mounting), the cache hit, reproducibility and failure cleanup.
#include "rootfs-builder/builder/builder.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "rootfs-builder/image/ext4_image.h"
#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::rootfs {
namespace {

namespace fs = std::filesystem;
using namespace kiln::rootfs::testing;

ImageSpec sample_spec() {
  ImageSpec s;
  TarEntry tool = file("bin/server", "#!/bin/sh\necho hi\n", 0755);
  tool.uid = 1000;
  tool.gid = 1000;
  s.layers.push_back(make_tar({dir("bin"), tool, dir("etc"), file("etc/motd", "layer1"),
                               file("etc/old", "x"), symlink("bin/sh", "busybox"), dir("srv")}));
  TarEntry suid = file("bin/su", "su", 04755);
  suid.xattrs.push_back({"user.kiln", "kept"});
  suid.mtime = 1600000000;
  TarEntry null_dev;
  null_dev.path = "dev/null";
  null_dev.type = TarEntry::Type::kChar;
  null_dev.mode = 0666;
  null_dev.dev_major = 1;
  null_dev.dev_minor = 3;
  std::vector<TarEntry> l2 = {file("etc/motd", "layer2"), file("etc/.wh.old", ""), file("srv/data", "payload"), suid};
  if (::geteuid() == 0) {
    l2.push_back(dir("dev"));
    l2.push_back(null_dev);
  }
  s.layers.push_back(make_tar(l2));
  return s;
}

size_t count_files(const std::string& dir) {
  if (!fs::exists(dir)) return 0;
  size_t n = 0;
  for (auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++n;
  }
  return n;
}

void expect_no_image(const std::string& cache) {
  for (auto& e : fs::directory_iterator(cache + "/images")) {
    EXPECT_NE(e.path().extension(), ".ext4") << e.path();
    EXPECT_NE(e.path().extension(), ".json") << e.path();
  }
  EXPECT_EQ(count_files(cache + "/tmp"), 0u);
  EXPECT_EQ(count_files(cache + "/blobs/tmp"), 0u);
}

TEST(RootfsBuilder, OciLayoutToExt4AndCacheHit) {
  TempDir t;
  WrittenImage img = write_oci_layout(t / "layout", sample_spec(), "v1");
  BuildRequest req;
  req.reference = "oci:" + (t / "layout") + ":v1";
  req.cache_dir = t / "cache";
  req.output_path = t / "out.ext4";
  std::vector<std::string> stages;
  auto r = build(req, [&](const Progress& p) { stages.push_back(p.stage); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->cache_hit);
  EXPECT_EQ(r->manifest_digest.str(), img.manifest_digest);
  EXPECT_EQ(r->config.entrypoint, std::vector<std::string>{"/bin/server"});
  EXPECT_EQ(r->config.working_dir, "/srv");
  EXPECT_EQ(r->config.exposed_ports, std::vector<std::string>{"9000/tcp"});
  EXPECT_NE(std::find(stages.begin(), stages.end(), "mkfs"), stages.end());
  EXPECT_NE(std::find(stages.begin(), stages.end(), "unpack"), stages.end());
  EXPECT_EQ(stages.back(), "done");
  EXPECT_LT(stages.size(), 50u);  // throttled
  EXPECT_EQ(debugfs_cat(r->image_path, "/etc/motd"), "layer2");
  EXPECT_EQ(debugfs_cat(r->image_path, "/srv/data"), "payload");
  EXPECT_EQ(debugfs_cat(r->image_path, "/bin/server"), "#!/bin/sh\necho hi\n");
  EXPECT_NE(debugfs_stat(r->image_path, "/etc/old").find("File not found"), std::string::npos);
  std::string st = debugfs_stat(r->image_path, "/bin/server");
  EXPECT_NE(st.find("Mode:  0755"), std::string::npos) << st;
  if (::geteuid() == 0) {
    EXPECT_NE(st.find("User:  1000"), std::string::npos) << st;  // owners need root (chown)
  }
  EXPECT_NE(debugfs_stat(r->image_path, "/bin/sh").find("Fast link dest: \"busybox\""), std::string::npos);
  std::string su = debugfs_stat(r->image_path, "/bin/su");
  EXPECT_NE(su.find("Mode:  04755"), std::string::npos) << su;
  EXPECT_NE(su.find("mtime: 0x5f5e1000"), std::string::npos) << su;
  std::string ea;
  run({"/usr/sbin/debugfs", "-R", "ea_list /bin/su", r->image_path}, &ea);
  EXPECT_NE(ea.find("user.kiln"), std::string::npos) << ea;
  if (::geteuid() == 0) {
    std::string dev = debugfs_stat(r->image_path, "/dev/null");
    EXPECT_NE(dev.find("Type: character special"), std::string::npos) << dev;
    EXPECT_NE(dev.find("Device major/minor number: 01:03"), std::string::npos) << dev;
  }
  EXPECT_EQ(read_file(req.output_path), read_file(r->image_path));
  std::string saved = read_file(r->config_path);
  EXPECT_NE(saved.find("\"Entrypoint\""), std::string::npos);
  EXPECT_NE(saved.find(img.manifest_digest), std::string::npos);
  int fsck = run({"/usr/sbin/e2fsck", "-fn", r->image_path});
  EXPECT_EQ(fsck, 0) << "e2fsck found problems";

  fs::remove(req.output_path);
  auto again = build(req);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->cache_hit);
  EXPECT_EQ(again->image_path, r->image_path);
  EXPECT_EQ(again->config.cmd, r->config.cmd);
  EXPECT_TRUE(fs::exists(req.output_path));

  auto found = find_cached(req.cache_dir, r->manifest_digest);
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->image_path, r->image_path);
  EXPECT_EQ(found->config.entrypoint, r->config.entrypoint);
  EXPECT_FALSE(find_cached(req.cache_dir, sha256_of("other")).ok());
}

TEST(RootfsBuilder, SameInputSameBytes) {
  TempDir t;
  write_oci_layout(t / "layout", sample_spec(), "v1");
  BuildRequest a;
  a.reference = "oci:" + (t / "layout") + ":v1";
  a.cache_dir = t / "cache-a";
  BuildRequest b = a;
  b.cache_dir = t / "cache-b";
  auto ra = build(a);
  ASSERT_TRUE(ra.ok()) << ra.error().message;
  auto rb = build(b);
  ASSERT_TRUE(rb.ok()) << rb.error().message;
  EXPECT_TRUE(read_file(ra->image_path) == read_file(rb->image_path)) << "images differ";
}

TEST(RootfsBuilder, Ext4ImageIgnoresAtimeAndCtimeOfTheTree) {
  TempDir t;
  fs::create_directories(t / "tree/etc");
  write_file(t / "tree/etc/a", "a");
  write_file(t / "tree/b", "b");
  auto set_times = [&](int64_t atime) {
    for (const auto& p : {t / "tree", t / "tree/etc", t / "tree/etc/a", t / "tree/b"}) {
      struct timespec ts[2] = {{atime, 0}, {5000, 0}};
      ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0);
    }
  };
  set_times(1111);
  ASSERT_TRUE(make_ext4(t / "tree", t / "a.img", Ext4Options{"seed", 1}).ok());
  set_times(999999);  // also moves every ctime to "now"
  ASSERT_TRUE(make_ext4(t / "tree", t / "b.img", Ext4Options{"seed", 1}).ok());
  EXPECT_TRUE(read_file(t / "a.img") == read_file(t / "b.img")) << "image depends on atime/ctime";
  std::string st = debugfs_stat(t / "a.img", "/etc/a");
  EXPECT_NE(st.find("atime: 0x00001388"), std::string::npos) << st;  // == mtime 5000
  EXPECT_NE(st.find("ctime: 0x00000001"), std::string::npos) << st;
}

TEST(RootfsBuilder, OciArchiveAndDockerArchive) {
  TempDir t;
  ImageSpec spec = sample_spec();
  write_oci_layout(t / "layout", spec, "v1");
  tar_directory(t / "layout", t / "image-oci.tar");
  BuildRequest req;
  req.cache_dir = t / "cache";
  req.reference = "oci-archive:" + (t / "image-oci.tar");
  auto r = build(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(debugfs_cat(r->image_path, "/etc/motd"), "layer2");

  spec.compression = Compression::kNone;
  write_docker_archive(t / "image-docker.tar", spec, "app:v1");
  req.reference = "docker-archive:" + (t / "image-docker.tar");
  auto d = build(req);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(debugfs_cat(d->image_path, "/srv/data"), "payload");
  EXPECT_EQ(d->config.entrypoint, std::vector<std::string>{"/bin/server"});
  req.reference = "docker-archive:" + (t / "image-docker.tar") + ":app:v1";
  auto tagged = build(req);
  ASSERT_TRUE(tagged.ok()) << tagged.error().message;
  EXPECT_TRUE(tagged->cache_hit);
  req.reference = "docker-archive:" + (t / "image-docker.tar") + ":other:v9";
  EXPECT_FALSE(build(req).ok());
  EXPECT_EQ(count_files(t / "cache/tmp"), 0u);
}

TEST(RootfsBuilder, DockerArchiveWithSymlinkedDuplicateLayer) {
  TempDir t;
  std::string tar = make_tar({file("same", "twice")});
  std::string d = sha256_of(tar).str();
  std::string cfg = R"({"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[")" +
                    d + R"(",")" + d + R"("]}})";
  std::string manifest = R"([{"Config":"c.json","RepoTags":["x:1"],"Layers":["a/layer.tar","b/layer.tar"]}])";
  write_file(t / "img.tar", make_tar({file("c.json", cfg), dir("a"), file("a/layer.tar", tar), dir("b"),
                                      symlink("b/layer.tar", "../a/layer.tar"), file("manifest.json", manifest)}));
  BuildRequest req;
  req.reference = "docker-archive:" + (t / "img.tar");
  req.cache_dir = t / "cache";
  auto r = build(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(debugfs_cat(r->image_path, "/same"), "twice");
}

TEST(RootfsBuilder, ArchiveSymlinksCannotReachHostFiles) {
  TempDir t;
  write_file(t / "host-secret", "secret");
  std::string secret_digest = sha256_of("secret").str();
  // A docker archive whose config is a symlink to a host file.
  std::string manifest = R"([{"Config":"c.json","RepoTags":["x:1"],"Layers":[]}])";
  write_file(t / "d.tar", make_tar({symlink("c.json", t / "host-secret"), file("manifest.json", manifest)}));
  BuildRequest req;
  req.reference = "docker-archive:" + (t / "d.tar");
  req.cache_dir = t / "cache";
  auto r = build(req);
  ASSERT_FALSE(r.ok());
  // An OCI archive whose config blob is a symlink to the host file, with the matching digest.
  std::string man = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                    R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                    secret_digest + R"(","size":6},"layers":[]})";
  std::string index = R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                      R"("digest":")" + sha256_of(man).str() + R"(","size":)" + std::to_string(man.size()) + "}]}";
  write_file(t / "o.tar",
             make_tar({file("oci-layout", R"({"imageLayoutVersion":"1.0.0"})"), file("index.json", index),
                       dir("blobs"), dir("blobs/sha256"), file("blobs/sha256/" + sha256_of(man).hex, man),
                       symlink("blobs/sha256/" + secret_digest.substr(7), t / "host-secret")}));
  req.reference = "oci-archive:" + (t / "o.tar");
  r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("No such file"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(req.cache_dir + "/blobs/sha256/" + secret_digest.substr(7)));
}

TEST(RootfsBuilder, WrongDiffIdLeavesNoCacheEntry) {
  TempDir t;
  ImageSpec spec = sample_spec();
  spec.wrong_diff_id = true;
  write_oci_layout(t / "layout", spec, "v1");
  BuildRequest req;
  req.reference = "oci:" + (t / "layout");
  req.cache_dir = t / "cache";
  auto r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("diff_id"), std::string::npos) << r.error().message;
  expect_no_image(req.cache_dir);
}

TEST(RootfsBuilder, TamperedBlobIsRefused) {
  TempDir t;
  WrittenImage img = write_oci_layout(t / "layout", sample_spec(), "v1");
  std::string layer = t / ("layout/blobs/sha256/" + img.layer_digests[1].substr(7));
  std::string data = read_file(layer);
  data[data.size() / 2] ^= 0x55;
  write_file(layer, data);
  BuildRequest req;
  req.reference = "oci:" + (t / "layout") + ":v1";
  req.cache_dir = t / "cache";
  auto r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("digest mismatch"), std::string::npos) << r.error().message;
  expect_no_image(req.cache_dir);
  EXPECT_FALSE(fs::exists(req.cache_dir + "/blobs/sha256/" + img.layer_digests[1].substr(7)));

  write_file(layer, data.substr(0, data.size() / 2));  // truncated
  r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << r.error().message;
  expect_no_image(req.cache_dir);

  data[data.size() / 2] ^= 0x55;  // restore, then append junk
  write_file(layer, data + "junk");
  r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("larger than its descriptor"), std::string::npos) << r.error().message;
  expect_no_image(req.cache_dir);
}

TEST(RootfsBuilder, WrongArchitectureAndHostileLayerFailCleanly) {
  TempDir t;
  ImageSpec arm = sample_spec();
  arm.architecture = "arm64";
  write_oci_layout(t / "arm", arm, "v1");
  BuildRequest req;
  req.reference = "oci:" + (t / "arm");
  req.cache_dir = t / "cache";
  auto r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("arm64"), std::string::npos);

  ImageSpec evil;
  evil.layers.push_back(make_tar({file("../escape", "x")}));
  write_oci_layout(t / "evil", evil, "v1");
  req.reference = "oci:" + (t / "evil");
  r = build(req);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(fs::exists(t / "escape"));
  EXPECT_FALSE(fs::exists(req.cache_dir + "/escape"));
  expect_no_image(req.cache_dir);
}

TEST(RootfsBuilder, ReapsScratchOfDeadBuilders) {
  TempDir t;
  write_oci_layout(t / "layout", sample_spec(), "v1");
  BuildRequest req;
  req.reference = "oci:" + (t / "layout");
  req.cache_dir = t / "cache";
  fs::create_directories(req.cache_dir + "/tmp/build-999999999-0/rootfs/etc");
  write_file(req.cache_dir + "/blobs/tmp/999999999-3.partial", "half a blob");
  auto r = build(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(fs::exists(req.cache_dir + "/tmp/build-999999999-0"));
  EXPECT_FALSE(fs::exists(req.cache_dir + "/blobs/tmp/999999999-3.partial"));
}

TEST(RootfsBuilder, RemoveImageAndPruneBlobs) {
  TempDir t;
  write_oci_layout(t / "layout", sample_spec(), "v1");
  BuildRequest req;
  req.reference = "oci:" + (t / "layout");
  req.cache_dir = t / "cache";
  auto r = build(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto freed = prune_blobs(req.cache_dir);
  ASSERT_TRUE(freed.ok()) << freed.error().message;
  EXPECT_GT(*freed, 0u);  // at least the config blob
  EXPECT_TRUE(fs::is_empty(req.cache_dir + "/blobs/sha256"));
  EXPECT_TRUE(fs::exists(r->image_path));  // images do not need their blobs
  ASSERT_TRUE(remove_image(req.cache_dir, r->manifest_digest).ok());
  EXPECT_FALSE(fs::exists(r->image_path));
  EXPECT_FALSE(fs::exists(r->config_path));
  EXPECT_FALSE(find_cached(req.cache_dir, r->manifest_digest).ok());
  EXPECT_TRUE(remove_image(req.cache_dir, r->manifest_digest).ok());  // idempotent
  auto again = build(req);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->cache_hit);
}

TEST(RootfsBuilder, InspectPrintsConfig) {
  TempDir t;
  WrittenImage img = write_oci_layout(t / "layout", sample_spec(), "v1");
  BuildRequest req;
  req.reference = "oci:" + (t / "layout") + ":v1";
  req.cache_dir = t / "cache";
  auto r = inspect(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::string j = inspect_json(*r);
  EXPECT_NE(j.find(img.manifest_digest), std::string::npos);
  EXPECT_NE(j.find("\"WorkingDir\": \"/srv\""), std::string::npos) << j;
}

}  // namespace
}  // namespace kiln::rootfs
