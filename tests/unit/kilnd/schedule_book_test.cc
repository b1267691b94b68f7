// The schedule book (src/schedule/schedule_book.h) over an injected clock: firings come when
// due, never replayed after a (re)start or an update, one per schedule per wake-up, and stop
// when a function's schedules are removed.
#include "src/schedule/schedule_book.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kiln::kilnd::schedule {
namespace {

constexpr std::int64_t kMon20261207At1300 = 1796648400;  // 2026-12-07T13:00:00Z

std::vector<Schedule> parsed(std::vector<std::string> exprs) {
  std::vector<Schedule> out;
  for (const auto& e : exprs) {
    auto s = parse(e, {.allow_seconds = true});
    EXPECT_TRUE(s.ok()) << e;
    if (s.ok()) out.push_back(*s);
  }
  return out;
}

TEST(ScheduleBook, RatesFireFromTheirAnchorAndNextWakeIsTheEarliest) {
  ScheduleBook book;
  const std::int64_t t0 = kMon20261207At1300;
  book.set("f", parsed({"rate(5 minutes)", "cron(30 13 * * ? *)"}), t0, t0);
  EXPECT_EQ(book.next_wake(), t0 + 300);
  EXPECT_TRUE(book.due(t0 + 299).empty());
  auto first = book.due(t0 + 300);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].key, "f");
  EXPECT_EQ(first[0].index, 0u);
  EXPECT_EQ(first[0].expression, "rate(5 minutes)");
  EXPECT_EQ(first[0].scheduled_s, t0 + 300);
  EXPECT_TRUE(book.due(t0 + 300).empty());  // handed out once
  EXPECT_EQ(book.next_wake(), t0 + 600);
  // A late wake-up at 13:30: the rate's pending 13:10 firing once (no burst), then the cron's.
  auto both = book.due(t0 + 1800);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0].scheduled_s, t0 + 600);
  EXPECT_EQ(both[1].index, 1u);
  EXPECT_EQ(both[1].scheduled_s, t0 + 1800);
  EXPECT_EQ(book.next_wake(), t0 + 2100);  // the rate resumes after now
}

TEST(ScheduleBook, ARestartDoesNotReplayWhatWasMissed) {
  ScheduleBook book;
  const std::int64_t anchor = kMon20261207At1300;
  // kilnd comes back 3 hours and 10 seconds after the schedule was set.
  const std::int64_t now = anchor + 3 * 3600 + 10;
  book.set("f", parsed({"rate(1 hour)", "cron(0 * * * ? *)"}), anchor, now);
  EXPECT_TRUE(book.due(now).empty());
  EXPECT_EQ(book.next_wake(), anchor + 4 * 3600);  // both next at 17:00, on the rate's anchor grid
  EXPECT_EQ(book.due(anchor + 4 * 3600).size(), 2u);
}

TEST(ScheduleBook, AnUpdateReplacesSchedulesWithANewAnchorAndRemoveStopsThem) {
  ScheduleBook book;
  const std::int64_t t0 = kMon20261207At1300;
  book.set("a", parsed({"rate(3 seconds)"}), t0, t0);
  book.set("b", parsed({"rate(1 minute)"}), t0, t0);
  EXPECT_EQ(book.size(), 2u);
  EXPECT_EQ(book.due(t0 + 3).size(), 1u);
  book.set("a", parsed({"rate(10 seconds)"}), t0 + 4, t0 + 4);  // updated at t0+4
  EXPECT_TRUE(book.due(t0 + 13).empty());
  auto next = book.due(t0 + 14);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].expression, "rate(10 seconds)");
  book.remove("a");
  EXPECT_EQ(book.next_wake(), t0 + 60);
  auto rest = book.due(t0 + 1000);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].key, "b");
  book.set("b", {}, t0, t0 + 1000);  // no schedules: gone
  EXPECT_EQ(book.size(), 0u);
  EXPECT_EQ(book.next_wake(), std::nullopt);
  EXPECT_TRUE(book.due(t0 + 100000).empty());
}

TEST(ScheduleBook, ASchedulePastItsLastYearNeverWakes) {
  ScheduleBook book;
  book.set("f", parsed({"cron(0 0 1 1 ? 2020)"}), kMon20261207At1300, kMon20261207At1300);
  EXPECT_EQ(book.next_wake(), std::nullopt);
  EXPECT_TRUE(book.due(kMon20261207At1300 + 1000000).empty());
}

}  // namespace
}  // namespace kiln::kilnd::schedule
