// kiln-rootfs benchmark (issue 4 "Performance"): seconds per GB to turn a generated >= 500 MB
// OCI image into an ext4 image, against `tar -x` + `mkfs.ext4 -d` of the same layers in the
// same run, plus the cached rebuild. Run: build/tests/bench/rootfs/bench_rootfs [MiB] [workdir] [rounds]
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rootfs-builder/builder/builder.h"
#include "rootfs-builder/digest/digest.h"
#include "tests/unit/rootfs/support/test_image.h"

namespace {

namespace fs = std::filesystem;
using kiln::rootfs::testing::run;
using kiln::rootfs::testing::write_file;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Streams a tar of `files` files of `file_size` moderately compressible bytes to path.
uint64_t write_layer(const std::string& path, int layer, int files, size_t file_size) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open_filename(a, path.c_str());
  uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(layer + 1);
  std::vector<char> buf(file_size);
  uint64_t total = 0;
  for (int d = 0; d < files / 64 + 1; ++d) {
    archive_entry* e = archive_entry_new();
    std::string dname = "layer" + std::to_string(layer) + "/d" + std::to_string(d);
    archive_entry_set_pathname(e, dname.c_str());
    archive_entry_set_filetype(e, AE_IFDIR);
    archive_entry_set_perm(e, 0755);
    archive_entry_set_mtime(e, 1700000000, 0);
    archive_write_header(a, e);
    archive_entry_free(e);
  }
  for (int i = 0; i < files; ++i) {
    // Sizes vary from 1/16 to 2x the mean, like a real image's mix of small and large files.
    size_t size = file_size / 16 + (static_cast<size_t>(i) * 7919 % 31) * file_size / 16;
    if (size > buf.size()) buf.resize(size);
    for (size_t j = 0; j < size; ++j) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[j] = static_cast<char>(0x40 | (x & 0x3f));
    }
    archive_entry* e = archive_entry_new();
    std::string name = "layer" + std::to_string(layer) + "/d" + std::to_string(i / 64) + "/f" + std::to_string(i);
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(size));
    archive_entry_set_mtime(e, 1700000000, 0);
    archive_write_header(a, e);
    archive_write_data(a, buf.data(), size);
    archive_entry_free(e);
    total += size;
  }
  archive_write_close(a);
  archive_write_free(a);
  return total;
}

kiln::rootfs::Digest file_digest(const std::string& path, uint64_t* size) {
  FILE* f = std::fopen(path.c_str(), "rb");
  kiln::rootfs::Sha256 h;
  std::vector<char> buf(1 << 20);
  size_t n;
  *size = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    h.update(buf.data(), n);
    *size += n;
  }
  std::fclose(f);
  return h.finish();
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 512;
  std::string work = argc > 2 ? argv[2] : "/var/tmp/kiln-rootfs-bench";
  fs::remove_all(work);
  fs::create_directories(work + "/layout/blobs/sha256");
  std::printf("generating a %llu MiB image (2 gzip layers) in %s ...\n", static_cast<unsigned long long>(mib),
              work.c_str());
  std::fflush(stdout);

  using nlohmann::json;
  json layers = json::array(), diff_ids = json::array();
  std::vector<std::string> blobs;
  uint64_t content = 0;
  const size_t kFileSize = 128 << 10;
  for (int l = 0; l < 2; ++l) {
    std::string tar = work + "/layer" + std::to_string(l) + ".tar";
    int files = static_cast<int>((mib << 20) / 2 / kFileSize);
    content += write_layer(tar, l, files, kFileSize);
    uint64_t tsize;
    diff_ids.push_back(file_digest(tar, &tsize).str());
    if (run({"gzip", "-1", "-f", tar}) != 0) {
      std::fprintf(stderr, "gzip failed\n");
      return 1;
    }
    uint64_t gsize;
    auto gd = file_digest(tar + ".gz", &gsize);
    std::string blob = work + "/layout/blobs/sha256/" + gd.hex;
    fs::rename(tar + ".gz", blob);
    blobs.push_back(blob);
    layers.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", gd.str()}, {"size", gsize}});
  }
  json cfg = {{"architecture", "amd64"}, {"os", "linux"}, {"config", {{"Cmd", {"/bin/sh"}}}},
              {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  std::string cfg_s = cfg.dump();
  auto cd = kiln::rootfs::sha256_of(cfg_s);
  write_file(work + "/layout/blobs/sha256/" + cd.hex, cfg_s);
  json man = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
              {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", cd.str()}, {"size", cfg_s.size()}}},
              {"layers", layers}};
  std::string man_s = man.dump();
  auto md = kiln::rootfs::sha256_of(man_s);
  write_file(work + "/layout/blobs/sha256/" + md.hex, man_s);
  write_file(work + "/layout/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  json index = {{"schemaVersion", 2}, {"manifests", {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                                      {"digest", md.str()}, {"size", man_s.size()}}}}};
  write_file(work + "/layout/index.json", index.dump());
  double gb = static_cast<double>(content) / 1e9;

  // Alternate kiln and baseline runs and keep each one's best: the machine is shared, so a
  // single run can be slowed by unrelated load.
  const int kRounds = argc > 3 ? std::atoi(argv[3]) : 2;
  double kiln_s = 1e9, base_s = 1e9;
  kiln::rootfs::BuildRequest req;
  req.reference = "oci:" + work + "/layout";
  struct stat st = {};
  for (int round = 0; round < kRounds; ++round) {
    // kiln-rootfs: verify, unpack, mkfs, normalise (fresh cache each round).
    req.cache_dir = work + "/cache";
    fs::remove_all(req.cache_dir);
    auto t0 = Clock::now();
    auto r = kiln::rootfs::build(req);
    kiln_s = std::min(kiln_s, seconds_since(t0));
    if (!r.ok()) {
      std::fprintf(stderr, "build failed: %s\n", r.error().message.c_str());
      return 1;
    }
    ::stat(r->image_path.c_str(), &st);

    // Baseline: tar -x of the same blobs, then mkfs.ext4 -d into an image of the same size.
    std::string tree = work + "/baseline-tree";
    fs::remove_all(tree);
    fs::remove(work + "/baseline.ext4");
    fs::create_directories(tree);
    t0 = Clock::now();
    for (const auto& b : blobs) {
      if (run({"tar", "-x", "-f", b, "-C", tree}) != 0) {
        std::fprintf(stderr, "tar -x failed\n");
        return 1;
      }
    }
    std::string out;
    if (run({"mkfs.ext4", "-q", "-F", "-d", tree, work + "/baseline.ext4",
             std::to_string(st.st_size / 1024) + "k"}, &out) != 0) {
      std::fprintf(stderr, "mkfs.ext4 failed: %s\n", out.c_str());
      return 1;
    }
    base_s = std::min(base_s, seconds_since(t0));
  }

  auto t0 = Clock::now();
  auto cached = kiln::rootfs::build(req);
  double cached_s = seconds_since(t0);
  req.output_path = work + "/copy.ext4";
  t0 = Clock::now();
  auto copied = kiln::rootfs::build(req);
  double copy_s = seconds_since(t0);
  if (!cached.ok() || !cached->cache_hit || !copied.ok()) {
    std::fprintf(stderr, "cached rebuild failed\n");
    return 1;
  }

  std::printf("content: %.3f GB uncompressed in 2 gzip layers, image %.3f GB, best of %d rounds\n", gb,
              st.st_size / 1e9, kRounds);
  std::printf("kiln-rootfs build:           %7.2f s  = %6.2f s/GB\n", kiln_s, kiln_s / gb);
  std::printf("baseline tar -x + mkfs -d:   %7.2f s  = %6.2f s/GB\n", base_s, base_s / gb);
  std::printf("ratio kiln/baseline:         %7.2f\n", kiln_s / base_s);
  std::printf("cached rebuild (cache path): %7.3f s\n", cached_s);
  std::printf("cached rebuild + copy to -o: %7.3f s\n", copy_s);
  fs::remove_all(work);
  return 0;
}
