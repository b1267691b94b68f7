// Layer application: metadata kept, whiteouts and opaque directories across three layers,
// compression formats and diff_ids.
#include "rootfs-builder/unpack/tree_builder.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::rootfs {
namespace {

namespace fs = std::filesystem;
using namespace kiln::rootfs::testing;

Result<Digest> apply_blob(TreeBuilder& tb, const TempDir& t, const std::string& blob) {
  static int n = 0;
  std::string p = t / ("layer" + std::to_string(n++));
  write_file(p, blob);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  auto r = tb.apply_layer(fd);
  ::close(fd);
  return r;
}

// Every path in the tree (relative), with "/" suffix for directories and "@target" for links.
std::set<std::string> listing(const std::string& root) {
  std::set<std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    std::string rel = fs::relative(it->path(), root).string();
    if (it->is_symlink()) out.insert(rel + "@" + fs::read_symlink(it->path()).string());
    else if (it->is_directory()) out.insert(rel + "/");
    else out.insert(rel);
  }
  return out;
}

TEST(TreeBuilder, KeepsMetadata) {
  TempDir t;
  fs::create_directory(t / "root");
  auto tb = TreeBuilder::create(t / "root", UnpackLimits{});
  ASSERT_TRUE(tb.ok());
  TarEntry suid = file("usr/bin/tool", "#!/bin/true\n", 04755);
  suid.uid = 123;
  suid.gid = 456;
  suid.mtime = 1234567;
  suid.xattrs.push_back({"user.kiln", "yes"});
  TarEntry d = dir("var/tmp", 01777);
  d.mtime = 777;
  TarEntry dev;
  dev.path = "dev/null";
  dev.type = TarEntry::Type::kChar;
  dev.mode = 0666;
  dev.dev_major = 1;
  dev.dev_minor = 3;
  TarEntry fifo;
  fifo.path = "run/pipe";
  fifo.type = TarEntry::Type::kFifo;
  fifo.mode = 0600;
  TarEntry link = symlink("bin", "usr/bin");
  if (::geteuid() == 0) link.xattrs.push_back({"trusted.kiln", "on-a-link"});  // trusted.* needs root
  link.xattrs.push_back({"user.dropped", "not allowed on links"});
  std::vector<TarEntry> entries = {dir("usr"), dir("usr/bin"), suid, dir("var"), d, fifo, link,
                                   hardlink("usr/bin/tool2", "usr/bin/tool")};
  if (::geteuid() == 0) entries.push_back(dev);  // mknod of a device needs root
  std::string tar = make_tar(entries);
  auto id = apply_blob(*tb, t, tar);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(*id, sha256_of(tar));
  ASSERT_TRUE(tb->finish().ok());

  struct stat st;
  ASSERT_EQ(::lstat((t / "root/usr/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(st.st_mtime, 1234567);
  EXPECT_EQ(st.st_nlink, 2u);
  if (::geteuid() == 0) {
    EXPECT_EQ(st.st_uid, 123u);
    EXPECT_EQ(st.st_gid, 456u);
  }
  char val[16] = {};
  EXPECT_EQ(::getxattr((t / "root/usr/bin/tool").c_str(), "user.kiln", val, sizeof val), 3);
  EXPECT_STREQ(val, "yes");
  ASSERT_EQ(::lstat((t / "root/var/tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  EXPECT_EQ(st.st_mtime, 777);  // set after its children were created
  if (::geteuid() == 0) {
    ASSERT_EQ(::lstat((t / "root/dev/null").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(st.st_rdev, makedev(1, 3));
  }
  ASSERT_EQ(::lstat((t / "root/run/pipe").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(fs::read_symlink(t / "root/bin"), "usr/bin");
  if (::geteuid() == 0) {
    char lv[32] = {};
    EXPECT_EQ(::lgetxattr((t / "root/bin").c_str(), "trusted.kiln", lv, sizeof lv), 9);
    EXPECT_STREQ(lv, "on-a-link");
  }
  EXPECT_EQ(read_file(t / "root/usr/bin/tool2"), "#!/bin/true\n");
}

TEST(TreeBuilder, WhiteoutsAndOpaqueDirsAcrossThreeLayers) {
  TempDir t;
  fs::create_directory(t / "root");
  auto tb = TreeBuilder::create(t / "root", UnpackLimits{});
  ASSERT_TRUE(tb.ok());
  // Layer 1: the base.
  std::string l1 = make_tar({dir("etc"), file("etc/keep", "k1"), file("etc/gone", "g"), dir("app"),
                             file("app/a", "a1"), file("app/b", "b1"), dir("app/sub"), file("app/sub/c", "c1"),
                             dir("data"), file("data/x", "x1"), dir("data/deep"), file("data/deep/y", "y1"),
                             file("replace", "file"), symlink("lnk", "etc/keep")});
  // Layer 2: whiteouts of a file and a directory, opaque app/ with a new file, and a type change.
  std::string l2 = make_tar({file("etc/.wh.gone", ""), file(".wh.data", ""), dir("app"), file("app/new", "n2"),
                             file("app/.wh..wh..opq", ""), dir("replace"), file("replace/inner", "i2"),
                             file("lnk", "now a file")});
  // Layer 3: recreate a whited-out dir, opaque + same-layer content, whiteout of something absent.
  std::string l3 = make_tar({dir("data"), file("data/z", "z3"), file("app/.wh.new", ""),
                             file("app/b", "b3"), file(".wh.never-existed", ""), dir("etc"),
                             file("etc/.wh..wh..opq", ""), file("etc/fresh", "f3")});
  for (const auto& l : {l1, l2, l3}) {
    auto r = apply_blob(*tb, t, compress(l, Compression::kGzip));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, sha256_of(l));
  }
  ASSERT_TRUE(tb->finish().ok());
  std::set<std::string> want = {"etc/", "etc/fresh", "app/", "app/b", "data/", "data/z",
                                "replace/", "replace/inner", "lnk"};
  EXPECT_EQ(listing(t / "root"), want);
  EXPECT_EQ(read_file(t / "root/app/b"), "b3");
  EXPECT_EQ(read_file(t / "root/lnk"), "now a file");
  EXPECT_EQ(read_file(t / "root/data/z"), "z3");
  EXPECT_EQ(read_file(t / "root/etc/fresh"), "f3");
}

TEST(TreeBuilder, OpaqueMarkerAfterTheLayersOwnChildren) {
  TempDir t;
  fs::create_directory(t / "root");
  auto tb = TreeBuilder::create(t / "root", UnpackLimits{});
  ASSERT_TRUE(tb.ok());
  ASSERT_TRUE(apply_blob(*tb, t, make_tar({dir("d"), dir("d/sub"), file("d/sub/y", "lower"), file("d/keep", "lower")})).ok());
  // Children first, marker last (tar order is not fixed by the spec).
  auto r = apply_blob(*tb, t, make_tar({file("d/sub/x", "upper"), file("d/.wh..wh..opq", "")}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(listing(t / "root"), (std::set<std::string>{"d/", "d/sub/", "d/sub/x"}));
}

TEST(TreeBuilder, ZstdAndPlainLayers) {
  TempDir t;
  fs::create_directory(t / "root");
  auto tb = TreeBuilder::create(t / "root", UnpackLimits{});
  ASSERT_TRUE(tb.ok());
  std::string a = make_tar({file("a", "zstd")});
  std::string b = make_tar({file("b", "plain")});
  auto ra = apply_blob(*tb, t, compress(a, Compression::kZstd));
  ASSERT_TRUE(ra.ok()) << ra.error().message;
  EXPECT_EQ(*ra, sha256_of(a));
  auto rb = apply_blob(*tb, t, b);
  ASSERT_TRUE(rb.ok()) << rb.error().message;
  EXPECT_EQ(*rb, sha256_of(b));
  EXPECT_EQ(read_file(t / "root/a"), "zstd");
  EXPECT_EQ(read_file(t / "root/b"), "plain");
}

TEST(TreeBuilder, SymlinkedParentsResolveInsideTheRoot) {
  TempDir t;
  fs::create_directory(t / "root");
  auto tb = TreeBuilder::create(t / "root", UnpackLimits{});
  ASSERT_TRUE(tb.ok());
  // Merged-/usr style: lib -> /usr/lib (absolute) and a later layer writes through it.
  ASSERT_TRUE(apply_blob(*tb, t, make_tar({dir("usr"), dir("usr/lib"), symlink("lib", "/usr/lib")})).ok());
  auto r = apply_blob(*tb, t, make_tar({file("lib/libx.so", "x")}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(t / "root/usr/lib/libx.so"), "x");
}

TEST(TreeBuilder, GarbageIsAnError) {
  TempDir t;
  fs::create_directory(t / "root");
  auto tb = TreeBuilder::create(t / "root", UnpackLimits{});
  ASSERT_TRUE(tb.ok());
  EXPECT_FALSE(apply_blob(*tb, t, std::string(4096, 'x')).ok());
  EXPECT_FALSE(apply_blob(*tb, t, compress(std::string(4096, 'x'), Compression::kGzip)).ok());
  std::string truncated = compress(make_tar({file("a", std::string(100000, 'q'))}), Compression::kGzip);
  truncated.resize(truncated.size() / 2);
  EXPECT_FALSE(apply_blob(*tb, t, truncated).ok());
}

TEST(CleanEntryPath, Rules) {
  auto ok = clean_entry_path("./a//b/./c/", 4096);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(clean_entry_path("/etc/passwd", 4096).ok());
  EXPECT_FALSE(clean_entry_path("a/../../b", 4096).ok());
  EXPECT_FALSE(clean_entry_path("..", 4096).ok());
  EXPECT_FALSE(clean_entry_path(std::string("a\0b", 3), 4096).ok());
  EXPECT_FALSE(clean_entry_path(std::string(300, 'a'), 4096).ok());
  EXPECT_FALSE(clean_entry_path(std::string(5000, 'a'), 4096).ok());
}

}  // namespace
}  // namespace kiln::rootfs
