// Hostile layers: every case must fail cleanly (an error, no crash) and leave a sentinel file
// outside the root untouched, with nothing new created outside the root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "rootfs-builder/unpack/tree_builder.h"
#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::rootfs {
namespace {

namespace fs = std::filesystem;
using namespace kiln::rootfs::testing;

class HostileArchive : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(t_ / "outside");
    fs::create_directories(t_ / "root");
    write_file(t_ / "outside/sentinel", "original");
  }

  // Applies the layers in order; returns the first error (or ok).
  Status apply(const std::vector<std::string>& layers, UnpackLimits limits = UnpackLimits{}) {
    auto tb = TreeBuilder::create(t_ / "root", limits);
    if (!tb.ok()) return tb.error();
    int n = 0;
    for (const auto& l : layers) {
      std::string p = t_ / ("blob" + std::to_string(n++));
      write_file(p, l);
      int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
      auto r = tb->apply_layer(fd);
      ::close(fd);
      if (!r.ok()) return r.error();
    }
    return tb->finish();
  }

  void expect_contained() {
    EXPECT_EQ(read_file(t_ / "outside/sentinel"), "original");
    size_t n = 0;
    for (auto& e : fs::directory_iterator(t_ / "outside")) {
      (void)e;
      ++n;
    }
    EXPECT_EQ(n, 1u) << "something was created outside the root";
  }

  void expect_fails(const std::vector<std::string>& layers, const std::string& needle = "",
                    UnpackLimits limits = UnpackLimits{}) {
    Status s = apply(layers, limits);
    EXPECT_FALSE(s.ok()) << "hostile input was accepted";
    if (!s.ok() && !needle.empty()) {
      EXPECT_NE(s.error().message.find(needle), std::string::npos) << s.error().message;
    }
    expect_contained();
  }

  std::string abs_outside() const { return t_.path() + "/outside"; }

  TempDir t_;
};

TEST_F(HostileArchive, DotDotName) { expect_fails({make_tar({file("../outside/sentinel", "pwned")})}, ".."); }

TEST_F(HostileArchive, DotDotInTheMiddle) {
  expect_fails({make_tar({dir("a"), file("a/../../outside/sentinel", "pwned")})}, "..");
}

TEST_F(HostileArchive, AbsoluteName) {
  expect_fails({make_tar({file(abs_outside() + "/sentinel", "pwned")})}, "absolute");
}

TEST_F(HostileArchive, SymlinkThenWriteThroughIt) {
  expect_fails({make_tar({symlink("evil", "../outside"), file("evil/sentinel", "pwned")})});
  expect_fails({make_tar({symlink("evil", abs_outside()), file("evil/sentinel", "pwned")})});
  // Across layers too.
  expect_fails({make_tar({symlink("evil", abs_outside())}), make_tar({file("evil/sentinel", "pwned")})});
}

TEST_F(HostileArchive, SymlinkToFileThenFileOverIt) {
  // Same layer: a duplicate name is refused.
  expect_fails({make_tar({symlink("evil", abs_outside() + "/sentinel"), file("evil", "pwned")})}, "duplicate");
  // Next layer: the file replaces the link itself; the link is never followed.
  Status s = apply({make_tar({symlink("evil2", abs_outside() + "/sentinel")}), make_tar({file("evil2", "mine")})});
  EXPECT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(read_file(t_ / "root/evil2"), "mine");
  EXPECT_FALSE(fs::is_symlink(t_ / "root/evil2"));
  expect_contained();
}

TEST_F(HostileArchive, HardlinkToOutside) {
  expect_fails({make_tar({hardlink("h", "../outside/sentinel")})});
  expect_fails({make_tar({hardlink("h", abs_outside() + "/sentinel")})});
  // Through a symlinked directory: resolved inside the root, where there is no such file.
  expect_fails({make_tar({symlink("d", abs_outside()), hardlink("h", "d/sentinel")})});
  expect_fails({make_tar({symlink("d", "../outside"), hardlink("h", "d/sentinel")})});
}

TEST_F(HostileArchive, WhiteoutOfDotDot) {
  expect_fails({make_tar({file(".wh..", "")})});
  expect_fails({make_tar({dir("a"), file("a/.wh..", "")})});
  expect_fails({make_tar({file("../outside/.wh.sentinel", "")})});
}

TEST_F(HostileArchive, WhiteoutThroughSymlink) {
  expect_fails({make_tar({symlink("evil", abs_outside())}), make_tar({file("evil/.wh.sentinel", "")})}, "symlink");
  expect_fails({make_tar({symlink("evil", "../outside")}), make_tar({file("evil/.wh.sentinel", "")})}, "symlink");
  expect_fails({make_tar({symlink("evil", abs_outside())}), make_tar({file("evil/.wh..wh..opq", "")})}, "symlink");
}

TEST_F(HostileArchive, DuplicateEntries) {
  expect_fails({make_tar({file("a", "1"), file("a", "2")})}, "duplicate");
  expect_fails({make_tar({dir("d"), file("d", "2")})}, "duplicate");
}

TEST_F(HostileArchive, FileUsedAsDirectory) { expect_fails({make_tar({file("f", "x"), file("f/g", "y")})}); }

TEST_F(HostileArchive, HugeDeclaredSize) {
  // A header claiming 1 TiB (base-256 size) with no data behind it.
  expect_fails({raw_header("big", '0', 1ull << 40) + raw_end()}, "size limit");
  UnpackLimits small;
  small.max_total_bytes = 1 << 20;
  expect_fails({make_tar({file("a", std::string(600 << 10, 'a')), file("b", std::string(600 << 10, 'b'))})},
               "size limit", small);
}

TEST_F(HostileArchive, GzipBomb) {
  std::string zeros = make_tar({file("zeros", std::string(48 << 20, '\0'))});
  UnpackLimits l;
  l.max_ratio = 100;
  l.ratio_grace_bytes = 1 << 20;
  expect_fails({compress(zeros, Compression::kGzip)}, "ratio", l);
  UnpackLimits total;
  total.max_total_bytes = 8 << 20;
  expect_fails({compress(zeros, Compression::kGzip)}, "limit", total);
}

TEST_F(HostileArchive, ZstdBomb) {
  std::string zeros = make_tar({file("zeros", std::string(48 << 20, '\0'))});
  UnpackLimits l;
  l.max_ratio = 100;
  l.ratio_grace_bytes = 1 << 20;
  expect_fails({compress(zeros, Compression::kZstd)}, "ratio", l);
}

TEST_F(HostileArchive, BombAfterTarEnd) {
  // Zeros after the end-of-archive marker still count (they are hashed for the diff_id).
  std::string s = make_tar({file("a", "x")}) + std::string(32 << 20, '\0');
  UnpackLimits l;
  l.max_total_bytes = 4 << 20;
  expect_fails({compress(s, Compression::kGzip)}, "limit", l);
}

TEST_F(HostileArchive, EntryCountCap) {
  std::vector<TarEntry> many;
  for (int i = 0; i < 50; ++i) many.push_back(file("f" + std::to_string(i), "x"));
  UnpackLimits l;
  l.max_entries = 20;
  expect_fails({make_tar(many)}, "entries", l);
}

TEST_F(HostileArchive, PaxPathOverride) {
  expect_fails({raw_pax({{"path", "../outside/sentinel"}}) + raw_entry("innocent", '0', "pwned") + raw_end()}, "..");
  expect_fails({raw_pax({{"path", abs_outside() + "/sentinel"}}) + raw_entry("innocent", '0', "pwned") + raw_end()});
}

TEST_F(HostileArchive, PaxLinkpathOverride) {
  expect_fails({raw_pax({{"linkpath", "../outside/sentinel"}}) + raw_entry("h", '1', "", "innocent") + raw_end()});
}

TEST_F(HostileArchive, PaxHugePath) {
  expect_fails({raw_pax({{"path", std::string(100000, 'a')}}) + raw_entry("x", '0', "data") + raw_end()});
}

TEST_F(HostileArchive, PaxHugeSize) {
  expect_fails({raw_pax({{"size", "99999999999999999"}}) + raw_entry("x", '0', "data") + raw_end()});
  expect_fails({raw_pax({{"size", "-5"}}) + raw_entry("x", '0', "data") + raw_end()});
}

TEST_F(HostileArchive, PaxMalformedRecords) {
  std::string lying = "999 path=x\n";
  expect_fails({raw_entry("PaxHeader", 'x', lying) + raw_entry("x", '0', "data") + raw_end()});
  std::string no_eq = "12 pathxxxx\n";
  Status s = apply({raw_entry("PaxHeader", 'x', no_eq) + raw_entry("y", '0', "data") + raw_end()});
  expect_contained();  // libarchive may accept or reject; either way nothing escapes
  (void)s;
}

TEST_F(HostileArchive, HugeXattr) {
  TarEntry e = file("x", "data");
  e.xattrs.push_back({"user.big", std::string(1 << 20, 'v')});
  expect_fails({make_tar({e})});
}

}  // namespace
}  // namespace kiln::rootfs
