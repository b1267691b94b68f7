// Deterministic mutation sweeps: bit flips, truncations and splices of valid layers and
// documents must give an error or a contained tree, never a crash or a write outside the root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "rootfs-builder/oci/image_documents.h"
#include "rootfs-builder/unpack/tree_builder.h"
#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::rootfs {
namespace {

namespace fs = std::filesystem;
using namespace kiln::rootfs::testing;

std::string mutate(const std::string& in, std::mt19937& rng) {
  std::string s = in;
  if (s.empty()) return s;
  switch (rng() % 4) {
    case 0:  // flip a few bits
      for (int i = 0; i < 1 + static_cast<int>(rng() % 8); ++i) s[rng() % s.size()] ^= static_cast<char>(1 << (rng() % 8));
      break;
    case 1:  // truncate
      s.resize(rng() % s.size());
      break;
    case 2: {  // overwrite a run with one byte value
      size_t at = rng() % s.size();
      size_t len = std::min<size_t>(s.size() - at, 1 + rng() % 64);
      std::fill_n(s.begin() + static_cast<long>(at), len, static_cast<char>(rng() % 256));
      break;
    }
    default: {  // duplicate a slice somewhere else
      size_t a = rng() % s.size(), len = std::min<size_t>(s.size() - a, 1 + rng() % 1024);
      s.insert(rng() % s.size(), s.substr(a, len));
    }
  }
  return s;
}

TEST(RootfsMutation, LayersNeverEscape) {
  TempDir t;
  fs::create_directories(t / "outside");
  write_file(t / "outside/sentinel", "original");
  std::string base = make_tar({dir("etc"), file("etc/a", "alpha"), symlink("etc/l", "../outside/sentinel"),
                               hardlink("etc/h", "etc/a"), file("etc/.wh.x", ""), dir("d"),
                               file("d/.wh..wh..opq", ""), file("d/big", std::string(5000, 'b'))});
  std::mt19937 rng(1234);
  UnpackLimits limits;
  limits.max_total_bytes = 16 << 20;
  for (int i = 0; i < 300; ++i) {
    Compression c = static_cast<Compression>(i % 3);
    std::string blob = mutate(c == Compression::kNone ? base : compress(base, c), rng);
    std::string root = t / ("root" + std::to_string(i));
    fs::create_directories(root);
    auto tb = TreeBuilder::create(root, limits);
    ASSERT_TRUE(tb.ok());
    write_file(t / "blob", blob);
    int fd = ::open((t / "blob").c_str(), O_RDONLY | O_CLOEXEC);
    (void)tb->apply_layer(fd);
    ::close(fd);
    ASSERT_EQ(read_file(t / "outside/sentinel"), "original") << "iteration " << i;
    fs::remove_all(root);
  }
  size_t n = 0;
  for (auto& e : fs::directory_iterator(t / "outside")) {
    (void)e;
    ++n;
  }
  EXPECT_EQ(n, 1u);
}

TEST(RootfsMutation, DocumentsNeverCrash) {
  const std::string d = "sha256:" + std::string(64, 'c');
  std::string manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + d +
                         R"(","size":10},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
                         d + R"(","size":20}]})";
  std::string config = R"({"os":"linux","architecture":"amd64","config":{"Cmd":["a"],"Env":["A=1"],)"
                       R"("ExposedPorts":{"9000/tcp":{}}},"rootfs":{"type":"layers","diff_ids":[")" + d + R"("]}})";
  std::string index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
                      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + d +
                      R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}}]})";
  // The originals are valid, so every refusal below is caused by the mutation.
  ASSERT_TRUE(parse_manifest(manifest, media_type::kOciManifest).ok());
  ASSERT_TRUE(parse_config(config).ok());
  ASSERT_TRUE(parse_index(index, media_type::kOciIndex).ok());
  // Each parser gives a value or an error that says why; the sweep reaches both outcomes.
  std::size_t refused = 0, accepted = 0;
  auto tally = [&](const auto& r) {
    if (r.ok()) {
      ++accepted;
    } else {
      ++refused;
      EXPECT_FALSE(r.error().message.empty());
    }
  };
  std::mt19937 rng(99);
  for (int i = 0; i < 3000; ++i) {
    std::string m = mutate(manifest, rng), c = mutate(config, rng), x = mutate(index, rng);
    std::string mt;
    tally(classify_document(m, "", &mt));
    tally(parse_manifest(m, media_type::kOciManifest));
    tally(parse_config(c));
    auto idx = parse_index(x, media_type::kOciIndex);
    tally(idx);
    if (idx.ok()) tally(select_platform(*idx, "linux", "amd64"));
    tally(parse_saved_config(c));
  }
  EXPECT_GT(refused, 1000u);
  EXPECT_GT(accepted, 100u);
}

}  // namespace
}  // namespace kiln::rootfs
