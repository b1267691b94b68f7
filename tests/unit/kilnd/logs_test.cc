// Log formatting (Lambda's START/END/REPORT lines, timestamps) and the log store (queries by
// since/request id, bounded retention, subscribers, reload after restart), the per-instance
// budget of guest lines. Metrics text too.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "src/logs/log_budget.h"
#include "src/logs/log_entry.h"
#include "src/logs/log_store.h"
#include "src/logs/request_windows.h"
#include "src/metrics/metrics.h"

namespace kiln::kilnd::logs {
namespace {

namespace fs = std::filesystem;

TEST(LogFormat, StartEndReport) {
  EXPECT_EQ(format_start("req-1", "$LATEST"), "START RequestId: req-1 Version: $LATEST");
  EXPECT_EQ(format_end("req-1"), "END RequestId: req-1");
  ReportInfo r;
  r.request_id = "req-1";
  r.duration_ms = 12.345;
  r.memory_mib = 128;
  r.max_memory_used_mib = 20;
  EXPECT_EQ(format_report(r),
            "REPORT RequestId: req-1\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 20 MB");
  r.init_duration_ms = 150.5;
  r.status = "timeout";
  EXPECT_EQ(format_report(r),
            "REPORT RequestId: req-1\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 20 MB\tInit Duration: 150.50 ms\tStatus: timeout");
  EXPECT_EQ(billed_duration_ms(0.2), 1u);
  EXPECT_EQ(billed_duration_ms(3.0), 3u);
  EXPECT_EQ(billed_duration_ms(3.01), 4u);
}

TEST(LogFormat, Timestamps) {
  std::uint64_t ts = 1795705200123456000ull;  // 2026-11-26T...Z
  std::string text = format_timestamp(ts);
  EXPECT_EQ(text.size(), 27u);
  EXPECT_EQ(text.back(), 'Z');
  auto back = parse_timestamp(text);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, ts);
  EXPECT_EQ(parse_timestamp("1970-01-01T00:00:01Z"), 1000000000ull);
  EXPECT_EQ(parse_timestamp("1500"), 1500000000ull);
  EXPECT_FALSE(parse_timestamp("").has_value());
  EXPECT_FALSE(parse_timestamp("yesterday").has_value());
  EXPECT_FALSE(parse_timestamp("2026-13-01T00:00:00Z").has_value());
  EXPECT_FALSE(parse_timestamp("2026-01-01T00:00:00").has_value());
  EXPECT_FALSE(parse_timestamp("99999999999999999999").has_value());
}

TEST(LogFormat, TextAndJson) {
  LogEntry e;
  e.ts_ns = 1000000000ull;
  e.instance_id = "fn-1-ab";
  e.request_id = "req-9";
  e.source = LogSource::kStderr;
  e.text = "boom";
  EXPECT_EQ(render_text(e), "1970-01-01T00:00:01.000000Z fn-1-ab req-9 stderr boom");
  auto j = render_json(e);
  auto back = entry_from_json(j);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->text, "boom");
  EXPECT_EQ(back->source, LogSource::kStderr);
  EXPECT_FALSE(entry_from_json(nlohmann::json::array()).has_value());
  EXPECT_FALSE(entry_from_json({{"stream", "nope"}, {"ts_ns", 1}}).has_value());
  // Wrong types drop the line; they never throw into the store.
  EXPECT_FALSE(entry_from_json({{"stream", 5}, {"ts_ns", 1u}}).has_value());
  EXPECT_FALSE(entry_from_json({{"stream", "stdout"}, {"ts_ns", -1}}).has_value());
  EXPECT_FALSE(entry_from_json({{"stream", "stdout"}, {"ts_ns", 1u}, {"message", 7}}).has_value());
  auto minimal = entry_from_json({{"stream", "stdout"}, {"ts_ns", 1u}});
  ASSERT_TRUE(minimal.has_value());
  EXPECT_EQ(minimal->text, "");
  EXPECT_EQ(minimal->seq, 0u);
}

// The hand-written JSON line is what nlohmann's dump of render_json() gives, byte for byte:
// plain text, escapes, control bytes, non-ASCII and invalid UTF-8 (replaced).
TEST(LogFormat, JsonLineIsTheJsonObjectDumped) {
  for (const std::string& text : {std::string("plain text"), std::string("quote \" and \\ back"),
                                 std::string("tab\tnew\nline\x01\x7f"), std::string("caf\xc3\xa9 \xe2\x82\xac"),
                                 std::string("bad \xff\xfe utf-8"), std::string()}) {
    LogEntry e;
    e.seq = 42;
    e.ts_ns = 1764213456123456789ull;
    e.instance_id = "fn-1-ab";
    e.request_id = text.empty() ? "" : "req-\x80";
    e.source = LogSource::kPlatform;
    e.text = text;
    EXPECT_EQ(render_json_line(e), render_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n")
        << text;
  }
}

class LogStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kilnd-logs-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  LogEntry line(std::uint64_t ts, const std::string& req, const std::string& text) {
    LogEntry e;
    e.ts_ns = ts;
    e.request_id = req;
    e.text = text;
    return e;
  }
  std::string dir_;
};

TEST_F(LogStoreTest, QueryBySinceAndRequestId) {
  LogStore store({dir_, 100, 1 << 20, 1024});
  store.append("f", line(10, "a", "one"));
  store.append("f", line(20, "b", "two"));
  store.append("f", line(30, "a", "three"));
  store.append("g", line(40, "a", "other function"));
  LogQuery q;
  EXPECT_EQ(store.query("f", q).size(), 3u);
  q.request_id = "a";
  auto a = store.query("f", q);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].text, "one");
  EXPECT_EQ(a[1].text, "three");
  q.request_id.clear();
  q.since_ns = 20;
  EXPECT_EQ(store.query("f", q).size(), 2u);
  q.since_ns = 0;
  q.after_seq = 2;
  ASSERT_EQ(store.query("f", q).size(), 1u);
  q.after_seq = 0;
  q.limit = 1;
  EXPECT_EQ(store.query("f", q)[0].text, "three");  // the newest
  EXPECT_TRUE(store.query("missing", LogQuery{}).empty());
}

// A stderr line the guest stamped before END, read by kilnd after END and REPORT were appended,
// is shown before END; other requests' lines and lines of no request keep their places, and
// equal stamps keep their arrival order.
TEST_F(LogStoreTest, LinesOfARequestComeInStampOrder) {
  LogStore store({dir_, 100, 1 << 20, 1024});
  store.append("f", line(10, "a", "START a"));
  store.append("f", line(12, "a", "stdout a"));
  store.append("f", line(15, "", "instance line"));
  store.append("f", line(14, "b", "START b"));
  store.append("f", line(20, "a", "END a"));
  store.append("f", line(20, "a", "REPORT a"));  // same stamp as END: stays after it
  store.append("f", line(16, "b", "stdout b"));
  store.append("f", line(18, "a", "late stderr a"));  // stamped before END a
  auto texts = [](const std::vector<LogEntry>& entries) {
    std::vector<std::string> t;
    for (const auto& e : entries) t.push_back(e.text);
    return t;
  };
  EXPECT_EQ(texts(store.query("f", LogQuery{})),
            (std::vector<std::string>{"START a", "stdout a", "instance line", "START b", "late stderr a", "END a",
                                      "stdout b", "REPORT a"}));
  LogQuery one;
  one.request_id = "a";
  EXPECT_EQ(texts(store.query("f", one)),
            (std::vector<std::string>{"START a", "stdout a", "late stderr a", "END a", "REPORT a"}));
}

TEST_F(LogStoreTest, BoundedMemoryAndFilesAndReload) {
  {
    LogStore store({dir_, 5, 400, 1024});
    for (int i = 0; i < 20; ++i) store.append("f", line(static_cast<std::uint64_t>(i + 1), "", "line " + std::to_string(i)));
    auto all = store.query("f", LogQuery{});
    ASSERT_EQ(all.size(), 5u);
    EXPECT_EQ(all.back().text, "line 19");
  }
  // Retention on disk: the current file and one rotated file, each under the cap.
  EXPECT_LE(fs::file_size(dir_ + "/f.log"), 400u);
  EXPECT_LE(fs::file_size(dir_ + "/f.log.1"), 400u);
  LogStore again({dir_, 5, 400, 1024});
  again.load("f");
  auto all = again.query("f", LogQuery{});
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back().text, "line 19");
  again.remove("f");
  EXPECT_FALSE(fs::exists(dir_ + "/f.log"));
}

// One byte budget for all functions: a chatty function's oldest lines go first, a quiet one's
// stay, the newest line always stays, and removing a function gives its bytes back.
TEST_F(LogStoreTest, MemoryBudgetIsSharedAndTheChattyFunctionPaysForIt) {
  LogStoreOptions o;
  o.dir = dir_;
  o.max_memory_bytes = 64 * 1024;
  LogStore store(o);
  const std::string text(200, 'x');
  for (int i = 0; i < 5; ++i) store.append("quiet", line(static_cast<std::uint64_t>(i + 1), "q", text));
  for (int i = 0; i < 2000; ++i) {
    store.append("chatty", line(static_cast<std::uint64_t>(i + 1), "c", text + std::to_string(i)));
    ASSERT_LE(store.memory_bytes(), o.max_memory_bytes) << "after line " << i;
  }
  EXPECT_EQ(store.query("quiet", LogQuery{}).size(), 5u);
  LogQuery all;
  all.limit = 100000;
  auto chatty = store.query("chatty", all);
  ASSERT_FALSE(chatty.empty());
  EXPECT_LT(chatty.size(), 2000u);
  EXPECT_GT(chatty.size(), 100u);  // the budget holds ~64 KiB / ~300 B, not a handful
  EXPECT_EQ(chatty.back().text, text + "1999");
  EXPECT_EQ(chatty.front().seq + chatty.size() - 1, chatty.back().seq);  // oldest dropped, no gaps
  // The files keep everything (under their own cap): memory eviction loses nothing on disk.
  EXPECT_GT(fs::file_size(dir_ + "/chatty.log"), 2000u * 200u);

  std::size_t before = store.memory_bytes();
  store.remove("chatty");
  EXPECT_LT(store.memory_bytes(), before / 10);
  // A line bigger than the whole budget is still kept (the newest always stays).
  o.max_memory_bytes = 1024;
  LogStore tiny(o);
  tiny.append("f", line(1, "", std::string(4000, 'y')));
  EXPECT_EQ(tiny.query("f", LogQuery{}).size(), 1u);
  tiny.append("f", line(2, "", "small"));
  auto f = tiny.query("f", LogQuery{});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].text, "small");
  // A giant newest line of one function makes room from the others.
  tiny.append("g", line(3, "", "g-small"));
  tiny.append("f", line(4, "", std::string(4000, 'z')));
  EXPECT_TRUE(tiny.query("g", LogQuery{}).empty());
  EXPECT_EQ(tiny.query("f", LogQuery{}).size(), 1u);
}

// With a flush scheduler the file gets a turn's lines in one go, when the scheduler calls
// flush(); queries see them at once; the size cap still rotates between lines; the destructor
// writes what is left.
TEST_F(LogStoreTest, BatchedFileWritesWaitForTheScheduledFlush) {
  int scheduled = 0;
  {
    LogStore store({dir_, 100, 1 << 20, 1024});
    store.set_flush_scheduler([&scheduled] { ++scheduled; });
    store.append("f", line(1, "r1", "START"));
    store.append("f", line(2, "r1", "END"));
    EXPECT_EQ(scheduled, 1);  // one flush asked for the whole turn
    EXPECT_EQ(store.query("f", LogQuery{}).size(), 2u);
    EXPECT_EQ(fs::file_size(dir_ + "/f.log"), 0u);
    store.flush();
    const auto after_flush = fs::file_size(dir_ + "/f.log");
    EXPECT_GT(after_flush, 0u);
    store.append("f", line(3, "r2", "left for the destructor"));
    EXPECT_EQ(scheduled, 2);
    EXPECT_EQ(fs::file_size(dir_ + "/f.log"), after_flush);
  }
  LogStore again({dir_, 100, 1 << 20, 1024});
  again.load("f");
  auto all = again.query("f", LogQuery{});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all.back().text, "left for the destructor");

  fs::create_directories(dir_ + "/capped");
  LogStore small({dir_ + "/capped", 100, 400, 1024});
  small.set_flush_scheduler([] {});
  for (int i = 0; i < 20; ++i) small.append("g", line(static_cast<std::uint64_t>(i + 1), "", "line " + std::to_string(i)));
  small.flush();
  EXPECT_LE(fs::file_size(dir_ + "/capped/g.log"), 400u);
  EXPECT_LE(fs::file_size(dir_ + "/capped/g.log.1"), 400u);
}

TEST_F(LogStoreTest, SubscribersSeeNewLinesUntilUnsubscribed) {
  LogStore store({"", 100, 1 << 20, 8});
  std::vector<std::string> seen;
  std::uint64_t id = 0;
  id = store.subscribe("f", [&](const LogEntry& e) {
    seen.push_back(e.text);
    if (seen.size() == 2) store.unsubscribe(id);
  });
  store.append("g", line(1, "", "elsewhere"));
  store.append("f", line(1, "", "a"));
  store.append("f", line(1, "", "a very long line indeed"));
  store.append("f", line(1, "", "c"));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1], "a very l...[truncated]");
}

// A guest clock 50 ms behind the host's (as seen in the demo): its stamps are brought onto the
// host's clock by the smallest arrival-minus-stamp seen, so each line still lands in (or just
// after) its own request's window, not in the one before; a clock ahead works the same way.
constexpr std::uint64_t kSec = 1'000'000'000;

TEST(LogBudget, AnInstanceGetsItsBurstThenItsRateAndTheRestIsCounted) {
  LogBudget b({.lines_per_s = 10, .bytes_per_s = 1000, .burst_lines = 20, .burst_bytes = 100000,
               .report_interval_ns = kSec});
  const std::uint64_t t0 = 100 * kSec;
  int kept = 0;
  for (int i = 0; i < 50; ++i) kept += b.admit("a", 10, t0) ? 1 : 0;
  EXPECT_EQ(kept, 20);  // the burst, then nothing at the same instant
  EXPECT_TRUE(b.admit("other", 10, t0)) << "one instance's flood spends only its own budget";
  kept = 0;
  for (int i = 0; i < 50; ++i) kept += b.admit("a", 10, t0 + kSec / 2) ? 1 : 0;
  EXPECT_EQ(kept, 5);  // half a second at 10 lines/s
  auto d = b.drops(t0 + kSec);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].instance, "a");
  EXPECT_EQ(d[0].lines, 30u + 45u);
  EXPECT_TRUE(b.drops(t0 + 2 * kSec).empty()) << "each drop is reported once";
}

TEST(LogBudget, BytesBoundTooAndReportsComeAtMostOncePerInterval) {
  LogBudget b({.lines_per_s = 1000, .bytes_per_s = 100, .burst_lines = 1000, .burst_bytes = 250,
               .report_interval_ns = kSec});
  const std::uint64_t t0 = 5 * kSec;
  EXPECT_TRUE(b.admit("a", 200, t0));
  EXPECT_FALSE(b.admit("a", 200, t0));  // 50 bytes left
  EXPECT_TRUE(b.admit("a", 50, t0));
  EXPECT_TRUE(b.drops(t0 + kSec / 2).empty()) << "within the interval of the first line";
  auto d = b.drops(t0 + kSec);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].lines, 1u);
  EXPECT_FALSE(b.admit("a", 200, t0 + kSec + kSec / 2));  // 1.5 s refill: 150 bytes
  EXPECT_TRUE(b.drops(t0 + kSec + kSec / 2).empty()) << "the last report is half an interval old";
  EXPECT_EQ(b.drops(t0 + 2 * kSec).at(0).lines, 1u);
  EXPECT_TRUE(b.admit("a", 200, t0 + 3 * kSec));  // refilled up to the burst, not past it
  EXPECT_FALSE(b.admit("a", 100, t0 + 3 * kSec));
}

TEST(LogBudget, InstancesWhoseBucketsRefilledAreForgotten) {
  LogBudget b({.lines_per_s = 10, .bytes_per_s = 1000, .burst_lines = 20, .burst_bytes = 1000,
               .report_interval_ns = kSec});
  const std::uint64_t t0 = 7 * kSec;
  for (int i = 0; i < 25; ++i) b.admit("a", 1, t0);
  b.admit("b", 1, t0 + kSec);
  EXPECT_EQ(b.drops(t0 + kSec).size(), 1u);
  EXPECT_EQ(b.tracked(), 2u);
  EXPECT_TRUE(b.drops(t0 + kSec + kSec / 2).empty());
  EXPECT_EQ(b.tracked(), 2u) << "a's bucket needs 2 s after its last line to fill up";
  b.drops(t0 + 2 * kSec + kSec / 2);
  EXPECT_EQ(b.tracked(), 1u) << "a forgotten, b (a line at t0+1s) not yet";
  b.drops(t0 + 3 * kSec + kSec / 2);
  EXPECT_EQ(b.tracked(), 0u);
  int kept = 0;
  for (int i = 0; i < 25; ++i) kept += b.admit("a", 1, t0 + 4 * kSec) ? 1 : 0;
  EXPECT_EQ(kept, 20) << "a forgotten instance starts again with a full bucket";
}

TEST(RequestWindows, GuestStampsAreShiftedOntoTheHostClock) {
  constexpr std::uint64_t ms = 1000000;
  RequestWindows w;
  w.begin("i", "a", 1000 * ms);
  // a's line: written at host 1008 ms (guest 958), delivered at 1009.
  std::uint64_t t = w.host_time("i", 958 * ms, 1009 * ms);
  EXPECT_EQ(t, 1009 * ms);
  w.end("i", "a", 1010 * ms);
  w.begin("i", "b", 1020 * ms);
  // b's line: written at 1028 (guest 978), delivered late at 1040, after b's release at 1030.
  w.end("i", "b", 1030 * ms);
  t = w.host_time("i", 978 * ms, 1040 * ms);
  EXPECT_EQ(t, 1029 * ms);  // the offset learnt from a's line: 51 ms
  EXPECT_EQ(w.attribute("i", t), "b");
  w.begin("i", "c", 1050 * ms);
  EXPECT_EQ(w.attribute("i", w.host_time("i", 1003 * ms, 1054 * ms)), "c");  // written at 1053
  EXPECT_EQ(w.attribute("i", 1003 * ms), "a");  // the raw stamp would give it to a
  // A guest ahead of the host: negative offsets work the same.
  EXPECT_EQ(w.host_time("j", 2100 * ms, 2001 * ms), 2001 * ms);
  EXPECT_EQ(w.host_time("j", 2200 * ms, 2110 * ms), 2101 * ms);
}

// served(): only the recent requests of that very instance (what a guest's own tag is checked
// against).
TEST(RequestWindows, ServedKnowsTheInstancesRecentRequestsOnly) {
  RequestWindows w;
  w.begin("i", "a", 100);
  w.end("i", "a", 200);
  w.begin("j", "b", 150);
  EXPECT_TRUE(w.served("i", "a"));
  EXPECT_FALSE(w.served("i", "b"));  // another instance's request
  EXPECT_FALSE(w.served("i", ""));
  EXPECT_FALSE(w.served("k", "a"));
  for (int k = 0; k < 16; ++k) w.begin("i", "r" + std::to_string(k), 300 + static_cast<std::uint64_t>(k));
  EXPECT_FALSE(w.served("i", "a"));  // gone with its window
  EXPECT_TRUE(w.served("i", "r15"));
}

// Guest output goes to the request whose window holds its stamp, even when it arrives after the
// next request was leased; trailing output to the last request begun before it; concurrent
// windows on one instance leave it unattributed.
TEST(RequestWindows, AttributesGuestLinesByTheirStamps) {
  RequestWindows w;
  EXPECT_EQ(w.attribute("i", 5), "");  // nothing known
  w.begin("i", "a", 100);
  EXPECT_EQ(w.attribute("i", 150), "a");
  w.end("i", "a", 200);
  w.begin("i", "b", 250);
  EXPECT_EQ(w.attribute("i", 180), "a");  // written during a, arriving while b runs
  EXPECT_EQ(w.attribute("i", 220), "a");  // after a's answer, before b: a's trailing output
  EXPECT_EQ(w.attribute("i", 260), "b");
  EXPECT_EQ(w.attribute("i", 50), "b");   // stamped before every window: the one in flight
  w.end("i", "b", 300);
  EXPECT_EQ(w.attribute("i", 400), "b");  // nothing in flight: the last one
  EXPECT_EQ(w.attribute("other", 260), "");
  // Two requests at once on one instance (concurrency > 1): the stamp cannot decide.
  w.begin("i", "c", 500);
  w.begin("i", "d", 510);
  EXPECT_EQ(w.attribute("i", 520), "");
  w.end("i", "c", 530);
  EXPECT_EQ(w.attribute("i", 540), "d");
  EXPECT_EQ(w.attribute("i", 505), "c");
  // Bounded: old windows go.
  for (int k = 0; k < 100; ++k) w.begin("j", "r" + std::to_string(k), 1000 + static_cast<std::uint64_t>(k));
  EXPECT_EQ(w.attribute("j", 1000), "");  // r0's window is gone; 16 requests in flight: ambiguous
  w.forget("j");
  EXPECT_EQ(w.attribute("j", 1099), "");
}

TEST(Metrics, PrometheusText) {
  metrics::Metrics m;
  metrics::declare_kilnd_metrics(m);
  m.inc(metrics::kInvocations, {{"function", "f"}, {"kind", "event"}});
  m.inc(metrics::kInvocations, {{"function", "f"}, {"kind", "event"}});
  m.inc(metrics::kErrors, {{"function", "f\"x"}, {"kind", "timeout"}});
  m.observe(metrics::kDuration, {{"function", "f"}}, 0.003);
  m.set(metrics::kQueueDepth, {{"function", "f"}}, 4);
  std::string text = m.render();
  EXPECT_NE(text.find("# TYPE kiln_invocations_total counter"), std::string::npos);
  EXPECT_NE(text.find("kiln_invocations_total{function=\"f\",kind=\"event\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("kiln_invocation_errors_total{function=\"f\\\"x\",kind=\"timeout\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("kiln_invocation_duration_seconds_bucket{function=\"f\",le=\"0.0025\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("kiln_invocation_duration_seconds_bucket{function=\"f\",le=\"0.005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("kiln_invocation_duration_seconds_bucket{function=\"f\",le=\"+Inf\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("kiln_invocation_duration_seconds_count{function=\"f\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("kiln_queue_depth{function=\"f\"} 4\n"), std::string::npos);
  EXPECT_EQ(m.value(metrics::kInvocations, {{"function", "f"}, {"kind", "event"}}), 2);
}

}  // namespace
}  // namespace kiln::kilnd::logs
