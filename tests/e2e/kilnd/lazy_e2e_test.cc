// e2e (label e2e): lazy root disks (issue 19) through real microVMs. The test builds a registry
// (Debian's docker-registry) in a network namespace of its own, behind a veth link shaped with
// tc netem (delay and rate, both ways); it pushes the hello image there, converts it and pushes
// its chunked-rootfs artifact (kiln-rootfs convert --push, as a library). kilnd --lazy-images on
// then deploys the image without pulling it: its instances boot from chunks fetched on demand
// through kilnd's NBD server, the answer is right, and only a part of the image is fetched. A
// chunk altered in the registry fails the read (its digest is checked before any byte reaches
// the guest): the instance fails, the error is counted, kilnd stays healthy.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "tests/e2e/lib/kilnd_fixture.h"
#include "tests/e2e/lib/shaped_registry.h"

namespace {

using kiln::e2e::metric_sum;
using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kNs = "kelazy";
constexpr const char* kImage = "192.0.2.2:5000/fn/hello:latest";

class LazyE2e : public kiln::e2e::KilndTest {
 protected:
  static void SetUpTestSuite() {
    auto dir = kiln::e2e::make_temp_dir("lazy-registry");
    ASSERT_TRUE(dir.ok());
    dir_ = *dir;
    auto registry = kiln::e2e::ShapedRegistry::start(kNs, dir_, {.delay = "10ms", .rate = "100mbit"});
    ASSERT_TRUE(registry.ok()) << registry.error().message;
    registry_ = registry->release();
    kiln::Status pushed = registry_->push(kiln::e2e::KilndPaths::defaults().hello_oci, "latest", "fn/hello");
    ASSERT_TRUE(pushed.ok()) << pushed.error().message;
    auto converted = registry_->convert(kImage);
    ASSERT_TRUE(converted.ok()) << converted.error().message;
    image_ = *converted;
    std::printf("lazy-e2e: %s converted: %llu-byte ext4, %llu stored chunks, artifact %s\n", kImage,
                static_cast<unsigned long long>(image_.image_size),
                static_cast<unsigned long long>(image_.stored_chunks), image_.artifact.c_str());
  }

  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  json lazy_config() const {
    return {{"image", kImage}, {"tls_verify", false}, {"timeout_ms", 120000}, {"max_instances", 1}};
  }

  static inline std::string dir_;
  static inline kiln::e2e::ShapedRegistry* registry_ = nullptr;
  static inline kiln::e2e::Converted image_;
};

TEST_F(LazyE2e, BootsFromChunksFetchedOnDemandAndFetchesAPartOfTheImage) {
  start({"--lazy-images", "on"});
  auto deployed = kilnd_->deploy("lazy", lazy_config());
  ASSERT_TRUE(deployed.ok()) << deployed.error().message;
  const json& image = (*deployed)["image"];
  ASSERT_EQ(image["state"], "ready") << deployed->dump();
  ASSERT_TRUE(image.contains("lazy")) << deployed->dump();
  EXPECT_EQ(image["rootfs_path"], "");
  EXPECT_EQ(image["lazy"]["image_size"], image_.image_size);
  // No image was pulled: kilnd's image cache holds no ext4.
  for (const auto& e : fs::recursive_directory_iterator(state_ + "/images")) {
    EXPECT_NE(e.path().extension(), ".ext4") << e.path();
  }

  auto ev = call("POST", "/v1/functions/lazy/invoke", R"({"name":"lazy"})");
  ASSERT_EQ(ev.status, 200) << ev.body;
  EXPECT_EQ(json::parse(ev.body)["message"], "hello, lazy");

  const std::string metrics = call("GET", "/metrics").body;
  const double fetched = metric_sum(metrics, "kiln_lazy_fetched_bytes_total");
  const double read = metric_sum(metrics, "kiln_lazy_read_bytes_total");
  const double chunks = metric_sum(metrics, "kiln_lazy_chunk_fetches_total");
  const double wait = metric_sum(metrics, "kiln_lazy_wait_seconds_total");
  std::printf(
      "lazy-e2e: fetched %.0f bytes in %.0f chunks of a %llu-byte image (%.1f%%; %.0f bytes read by the "
      "guest, %.2f s waiting for chunks)\n",
      fetched, chunks, static_cast<unsigned long long>(image_.image_size), 100.0 * fetched / image_.image_size, read,
      wait);
  EXPECT_GT(fetched, 0);
  EXPECT_LT(fetched, static_cast<double>(image_.image_size));
  EXPECT_LT(chunks, static_cast<double>(image_.stored_chunks));
  EXPECT_EQ(metric_sum(metrics, "kiln_lazy_fetch_errors_total"), 0);
}

TEST_F(LazyE2e, ARestoreOnAFreshCacheFetchesTheSnapshotsChunksAhead) {
  start({"--lazy-images", "on"});
  auto deployed = kilnd_->deploy("warm", lazy_config());
  ASSERT_TRUE(deployed.ok()) << deployed.error().message;
  auto first = call("POST", "/v1/functions/warm/invoke", R"({"name":"first"})");
  ASSERT_EQ(first.status, 200) << first.body;  // its instance was snapshotted before it was ready
  const int status = kilnd_->stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // Another host's cache, as far as the chunks go: empty.
  std::error_code ec;
  fs::remove_all(state_ + "/lazy/chunks", ec);
  start({"--lazy-images", "on"});
  auto again = call("POST", "/v1/functions/warm/invoke", R"({"name":"again"})");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(json::parse(again.body)["message"], "hello, again");
  const std::string metrics = call("GET", "/metrics").body;
  const double prefetched = metric_sum(metrics, "kiln_lazy_chunk_fetches_total\\{[^}]*kind=\"prefetch\"[^}]*\\}");
  std::printf("lazy-e2e: restore on an empty chunk cache: %.0f chunks prefetched, %.0f fetched on demand\n", prefetched,
              metric_sum(metrics, "kiln_lazy_chunk_fetches_total\\{[^}]*kind=\"demand\"[^}]*\\}"));
  EXPECT_GT(prefetched, 0) << metrics;
}

TEST_F(LazyE2e, AChunkAlteredInTheRegistryFailsTheInstanceCleanly) {
  // Every 4 KiB of the chunk data blob altered: whatever the guest reads first fails its digest.
  const std::string saved = kiln::testing::slurp(image_.data_blob);
  ASSERT_FALSE(saved.empty());
  {
    std::string bad = saved;
    for (size_t i = 100; i < bad.size(); i += 4096) bad[i] ^= 0x5a;
    std::ofstream(image_.data_blob, std::ios::binary | std::ios::trunc) << bad;
  }
  start({"--lazy-images", "on"});
  auto deployed = kilnd_->deploy("broken", lazy_config());
  ASSERT_TRUE(deployed.ok()) << deployed.error().message;
  ASSERT_EQ((*deployed)["image"]["state"], "ready") << deployed->dump();  // the index is intact
  auto ev = call("POST", "/v1/functions/broken/invoke", R"({"name":"x"})");
  EXPECT_NE(ev.status, 200) << ev.body;
  std::printf("lazy-e2e: altered chunks: invoke answered %d: %s\n", ev.status, ev.body.substr(0, 300).c_str());
  const std::string metrics = call("GET", "/metrics").body;
  EXPECT_GT(metric_sum(metrics, "kiln_lazy_fetch_errors_total"), 0) << metrics;
  // The function's log says why: the chunk, where it came from, and what its check found (a frame
  // that no longer decompresses, or bytes that do not match the chunk's digest).
  const std::string log = call("GET", "/v1/functions/broken/logs?limit=100000").body;
  auto at = log.find("lazy root disk: read of");
  ASSERT_NE(at, std::string::npos) << log;
  const std::string line = log.substr(at, log.find('\n', at) - at);
  std::printf("lazy-e2e: %s\n", line.c_str());
  EXPECT_TRUE(std::regex_search(line, std::regex("chunk [0-9]+ \\(sha256:[0-9a-f]{64}\\) from ")) &&
              (line.find("zstd") != std::string::npos || line.find("does not match the index") != std::string::npos))
      << line;
  // kilnd is healthy: it lists its functions.
  EXPECT_EQ(call("GET", "/v1/functions").status, 200);
  std::ofstream(image_.data_blob, std::ios::binary | std::ios::trunc) << saved;
}

}  // namespace
