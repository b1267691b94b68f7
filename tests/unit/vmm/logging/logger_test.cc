// Logger: levels, output file, line format, and rate limiting of guest-caused lines.
#include "vmm/logging/logger.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace kiln::vmm::logging {
namespace {

using namespace std::chrono_literals;

class LoggerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-logger-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/log.txt";
    ASSERT_TRUE(logger_.open_output(path_).ok());
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  std::vector<std::string> lines() {
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }

  Logger logger_;
  std::string dir_;
  std::string path_;
};

TEST(LogLevel, ParsesFirecrackerNamesCaseInsensitively) {
  EXPECT_EQ(parse_log_level("Error").value(), LogLevel::kError);
  EXPECT_EQ(parse_log_level("WARNING").value(), LogLevel::kWarning);
  EXPECT_EQ(parse_log_level("warn").value(), LogLevel::kWarning);
  EXPECT_EQ(parse_log_level("info").value(), LogLevel::kInfo);
  EXPECT_EQ(parse_log_level("Debug").value(), LogLevel::kDebug);
  EXPECT_EQ(parse_log_level("Trace").value(), LogLevel::kDebug);
  EXPECT_EQ(parse_log_level("off").value(), LogLevel::kOff);
  EXPECT_FALSE(parse_log_level("").ok());
  EXPECT_FALSE(parse_log_level("verbose").ok());
  EXPECT_NE(parse_log_level("verbose").error().message.find("verbose"), std::string::npos);
}

TEST_F(LoggerTest, FiltersByLevel) {
  logger_.set_level(LogLevel::kWarning);
  logger_.log(LogLevel::kError, "e");
  logger_.log(LogLevel::kWarning, "w");
  logger_.log(LogLevel::kInfo, "i");
  logger_.log(LogLevel::kDebug, "d");
  auto l = lines();
  ASSERT_EQ(l.size(), 2u);
  EXPECT_NE(l[0].find("ERROR e"), std::string::npos);
  EXPECT_NE(l[1].find("WARN w"), std::string::npos);
}

TEST_F(LoggerTest, OffPrintsNothing) {
  logger_.set_level(LogLevel::kOff);
  logger_.log(LogLevel::kError, "e");
  logger_.log(LogLevel::kOff, "o");
  EXPECT_TRUE(lines().empty());
}

TEST_F(LoggerTest, LineHasTimestampInstanceIdAndOrigin) {
  logger_.set_level(LogLevel::kInfo);
  logger_.set_instance_id("vm-7");
  logger_.set_show_origin(true);
  logger_.logf(LogLevel::kInfo, "/src/vmm/x.cc", 42, "hello %d %s", 5, "five");
  auto l = lines();
  ASSERT_EQ(l.size(), 1u);
  // 2026-11-26T14:45:01.123456789 [vm-7] INFO x.cc:42 hello 5 five
  ASSERT_GE(l[0].size(), 30u);
  EXPECT_EQ(l[0][4], '-');
  EXPECT_EQ(l[0][10], 'T');
  EXPECT_NE(l[0].find(" [vm-7] INFO x.cc:42 hello 5 five"), std::string::npos) << l[0];
}

TEST_F(LoggerTest, LongMessagesAreNotTruncated) {
  logger_.set_level(LogLevel::kInfo);
  std::string big(5000, 'x');
  logger_.logf(LogLevel::kInfo, __FILE__, __LINE__, "%s", big.c_str());
  auto l = lines();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_NE(l[0].find(big), std::string::npos);
}

TEST_F(LoggerTest, RateLimitedLinesAreDroppedAndCounted) {
  logger_.set_level(LogLevel::kInfo);
  RateLimiter::Clock::time_point now{};
  RateLimiter limiter(2, 10s, [&] { return now; });
  for (int i = 0; i < 100; ++i) {
    logger_.logf_limited(limiter, LogLevel::kWarning, __FILE__, __LINE__, "guest did bad thing %d", i);
  }
  EXPECT_EQ(lines().size(), 2u);
  EXPECT_EQ(logger_.missed_count(), 98u);
  now += 5s;  // one token back
  logger_.log_limited(limiter, LogLevel::kWarning, "again");
  auto l = lines();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_NE(l[2].find("again (98 similar messages suppressed)"), std::string::npos) << l[2];
}

TEST_F(LoggerTest, DisabledLevelDoesNotConsumeTokens) {
  logger_.set_level(LogLevel::kError);
  RateLimiter::Clock::time_point now{};
  RateLimiter limiter(1, 10s, [&] { return now; });
  logger_.log_limited(limiter, LogLevel::kDebug, "not shown");
  logger_.log_limited(limiter, LogLevel::kError, "shown");
  auto l = lines();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_NE(l[0].find("shown"), std::string::npos);
}

TEST(Logger, OpenOutputFailsWithErrnoForBadPath) {
  Logger logger;
  auto st = logger.open_output("/nonexistent-dir-kiln/x.log");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().sys_errno, 0);
  EXPECT_NE(st.error().message.find("/nonexistent-dir-kiln/x.log"), std::string::npos);
}

TEST(Logger, GuestMacroIsRateLimitedPerCallSite) {
  char tmpl[] = "/tmp/kiln-logger-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/log.txt";
  auto& logger = Logger::instance();
  ASSERT_TRUE(logger.open_output(path).ok());
  logger.set_level(LogLevel::kWarning);
  const uint64_t missed_before = logger.missed_count();
  for (int i = 0; i < 1000; ++i) KILN_LOG_GUEST(LogLevel::kWarning, "flood %d", i);
  logger.reset_output();
  std::ifstream in(path);
  int n = 0;
  for (std::string l; std::getline(in, l);) ++n;
  EXPECT_EQ(n, static_cast<int>(kGuestLogBurst));  // the loop is far faster than one refill
  EXPECT_EQ(logger.missed_count() - missed_before, 1000u - kGuestLogBurst);
  EXPECT_EQ(MetricsRegistry::global().value("logger.missed_log_count"), logger.missed_count());
  ::unlink(path.c_str());
  ::rmdir(tmpl);
}

}  // namespace
}  // namespace kiln::vmm::logging
