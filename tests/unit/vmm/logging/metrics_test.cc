// MetricsRegistry: counters grouped per device, JSON shape, flushing to a file.
#include "vmm/logging/metrics.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace kiln::vmm::logging {
namespace {

TEST(Metrics, CountersStartAtZeroAndAccumulate) {
  MetricsRegistry reg;
  EXPECT_EQ(reg.value("block_rootfs.read_count"), 0u);
  Counter& c = reg.counter("block_rootfs.read_count");
  c.inc();
  c.inc(41);
  EXPECT_EQ(reg.value("block_rootfs.read_count"), 42u);
  // The same name returns the same counter.
  EXPECT_EQ(&reg.counter("block_rootfs.read_count"), &c);
}

TEST(Metrics, JsonGroupsByDevice) {
  MetricsRegistry reg;
  reg.counter("block_rootfs.read_count").inc(3);
  reg.counter("block_rootfs.read_bytes").inc(4096);
  reg.counter("vsock.rx_packets").inc(7);
  reg.counter("ungrouped").inc(1);
  const auto j = reg.to_json();
  EXPECT_EQ(j["block_rootfs"]["read_count"], 3);
  EXPECT_EQ(j["block_rootfs"]["read_bytes"], 4096);
  EXPECT_EQ(j["vsock"]["rx_packets"], 7);
  EXPECT_EQ(j["vmm"]["ungrouped"], 1);
  EXPECT_TRUE(j["utc_timestamp_ms"].is_number_unsigned());
}

TEST(Metrics, ConcurrentIncrementsAreNotLost) {
  MetricsRegistry reg;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) reg.counter("dev.ops").inc();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(reg.value("dev.ops"), 40000u);
}

TEST(Metrics, FlushWithoutOutputIsAnError) {
  MetricsRegistry reg;
  auto st = reg.flush();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("metrics"), std::string::npos);
}

TEST(Metrics, FlushAppendsOneJsonLinePerCall) {
  char tmpl[] = "/tmp/kiln-metrics-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/metrics.json";
  MetricsRegistry reg;
  ASSERT_TRUE(reg.open_output(path).ok());
  reg.counter("api_server.requests").inc(2);
  ASSERT_TRUE(reg.flush().ok());
  reg.counter("api_server.requests").inc();
  ASSERT_TRUE(reg.flush().ok());
  std::ifstream in(path);
  std::vector<nlohmann::json> docs;
  for (std::string l; std::getline(in, l);) docs.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0]["api_server"]["requests"], 2);
  EXPECT_EQ(docs[1]["api_server"]["requests"], 3);
  ::unlink(path.c_str());
  ::rmdir(tmpl);
}

TEST(Metrics, NonUtf8NameDoesNotBreakFlush) {
  char tmpl[] = "/tmp/kiln-metrics-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/metrics.json";
  MetricsRegistry reg;
  ASSERT_TRUE(reg.open_output(path).ok());
  reg.counter(std::string("dev.\xff\xfe")).inc();
  EXPECT_TRUE(reg.flush().ok());
  ::unlink(path.c_str());
  ::rmdir(tmpl);
}

}  // namespace
}  // namespace kiln::vmm::logging
