// Timer trigger expressions (src/schedule/schedule.h): rate() and cron() in Lambda/EventBridge
// syntax, the next firing in UTC (expected instants computed independently, Python's datetime),
// and hostile expressions.
#include "src/schedule/schedule.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln::kilnd::schedule {
namespace {

// The next firing of `expr` strictly after `after` (anchor 0 for cron).
std::optional<std::int64_t> next(const std::string& expr, std::int64_t after, std::int64_t anchor = 0) {
  auto s = parse(expr);
  EXPECT_TRUE(s.ok()) << expr << ": " << (s.ok() ? "" : s.error().message);
  return s.ok() ? next_fire(*s, anchor, after) : std::nullopt;
}

void refused(const std::string& expr, const std::string& part, const ParseOptions& o = {}) {
  auto s = parse(expr, o);
  ASSERT_FALSE(s.ok()) << expr;
  EXPECT_NE(s.error().message.find(part), std::string::npos) << expr << ": " << s.error().message;
}

constexpr std::int64_t kMon20261207At1300 = 1796648400;

TEST(Schedule, RatesFireEveryPeriodFromTheirAnchor) {
  const std::int64_t a = 1796640000;
  EXPECT_EQ(next("rate(5 minutes)", a - 1000, a), a + 300);  // before the anchor: its first period
  EXPECT_EQ(next("rate(5 minutes)", a, a), a + 300);
  EXPECT_EQ(next("rate(5 minutes)", a + 299, a), a + 300);
  EXPECT_EQ(next("rate(5 minutes)", a + 300, a), a + 600);   // strictly after
  EXPECT_EQ(next("rate(1 hour)", a + 7199, a), a + 7200);
  EXPECT_EQ(next("rate(2 days)", a + 1, a), a + 2 * 86400);
  EXPECT_EQ(next("  rate(1 minute) ", a, a), a + 60);
  ParseOptions tests;
  tests.allow_seconds = true;
  auto s = parse("rate(3 seconds)", tests);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(next_fire(*s, a, a + 4), a + 6);
}

TEST(Schedule, CronFiresAtTheNextMatchingMinuteInUtc) {
  EXPECT_EQ(next("cron(0 12 * * ? *)", kMon20261207At1300), 1796731200);  // Tue 12:00
  EXPECT_EQ(next("cron(0/15 * * * ? *)", 1796645250), 1796645700);       // 12:07:30 -> 12:15
  EXPECT_EQ(next("cron(0 18 ? * MON-FRI *)", 1797015600), 1797271200);    // Fri 19:00 -> Mon 18:00
  EXPECT_EQ(next("cron(0 8 1 * ? *)", kMon20261207At1300), 1798790400);   // 1 Jan 2027 08:00
  EXPECT_EQ(next("cron(15 10 ? DEC 6L 2026-2027)", 1796648400), 1798193700);  // last Friday: 25 Dec
  EXPECT_EQ(next("cron(0 9 ? * 2#1 *)", kMon20261207At1300), 1799053200);  // first Monday: 4 Jan 2027
  EXPECT_EQ(next("cron(0 0 L * ? *)", 1832976000), 1835395200);           // 29 Feb 2028
  EXPECT_EQ(next("cron(0 0 15W * ? 2026)", 1785000000), 1786665600);      // Sat 15 Aug -> Fri 14
  EXPECT_EQ(next("cron(30 6 1W * ? 2026)", 1785000000), 1785738600);      // Sat 1 Aug -> Mon 3
  EXPECT_EQ(next("cron(0 0 31W 5 ? 2026)", 1777000000), 1780012800);      // Sun 31 May -> Fri 29
  EXPECT_EQ(next("cron(0 12 * jan,Feb ? *)", kMon20261207At1300), 1798804800);  // names, any case
}

TEST(Schedule, CronThatNeverFiresAgainSaysSo) {
  EXPECT_EQ(next("cron(0 0 30 2 ? *)", kMon20261207At1300), std::nullopt);   // no 30 February
  EXPECT_EQ(next("cron(0 0 * * ? 1999)", kMon20261207At1300), std::nullopt);  // its years are past
  EXPECT_EQ(next("cron(59 23 31 12 ? 2199)", 7258118400 - 1), std::nullopt);  // after its last minute
}

TEST(Schedule, RefusesHostileExpressions) {
  refused(std::string(300, 'x'), "longer than 256");
  refused("every 5 minutes", "want rate(VALUE UNIT) or cron(");
  refused("rate(5 minutes) now", "want rate(");
  refused("rate(5minutes)", "want rate(VALUE UNIT)");
  refused("rate(0 minutes)", "not a whole number");
  refused("rate(-1 minutes)", "not a whole number");
  refused("rate(99999999 days)", "not a whole number");
  refused("rate(1 minutes)", "write minute");
  refused("rate(2 hour)", "write hours");
  refused("rate(5 fortnights)", "unknown unit");
  refused("rate(5 seconds)", "seconds are not a unit");
  refused("cron(0 12 * * ?)", "want 6 fields");
  refused("cron(0 12 * * ? * *)", "want 6 fields");
  refused("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week");
  refused("cron(0 12 1 * MON *)", "exactly one of day-of-month and day-of-week");
  refused("cron(60 12 * * ? *)", "minutes: '60' is out of range 0-59");
  refused("cron(0 24 * * ? *)", "hours");
  refused("cron(0 0 32 * ? *)", "day-of-month");
  refused("cron(0 0 * 0 ? *)", "month");
  refused("cron(0 0 ? * 8 *)", "day-of-week: '8' is out of range 1-7");
  refused("cron(0 0 * * ? 2200)", "year");
  refused("cron(0/0 0 * * ? *)", "bad step");
  refused("cron(10-5 0 * * ? *)", "ends before it starts");
  refused("cron(1,,2 0 * * ? *)", "empty list item");
  refused("cron(0 0 * MON ? *)", "month: 'MON' is not a value");
  refused("cron(0 0 ? * 2#6 *)", "K 1-5");
  refused("cron(+5 0 * * ? *)", "not a value");
  refused("cron(0 0 0W * ? *)", "day-of-month");
}

}  // namespace
}  // namespace kiln::kilnd::schedule
