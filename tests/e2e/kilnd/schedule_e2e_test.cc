// e2e (label e2e): timer triggers (issue 22) through a real microVM. kilnd with the test-only
// --allow-second-schedules runs the hello function on `rate(3 seconds)`: each firing is logged
// on the function with its invocation, arrives on time (3 s apart, logged within a second of its
// scheduled time) and the guest receives EventBridge's Scheduled Event (hello logs the body's
// size, which only that body has); after DELETE no more firings happen, while another
// function's schedule (whose image fails: each firing refused and counted) keeps its pace.
// A restarted kilnd takes its schedules back from the state files and replays none it missed.
#include <signal.h>
#include <time.h>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/lib/kilnd_fixture.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// "NAME{function="F"} VALUE" in a /metrics text (0 when absent).
double metric(const std::string& text, const std::string& name, const std::string& function) {
  const std::string head = name + "{function=\"" + function + "\"} ";
  auto at = text.find(head);
  return at == std::string::npos ? 0 : std::stod(text.substr(at + head.size()));
}

// "2026-12-07T13:01:00Z" or "...:00.123456Z" as Unix seconds (fraction kept).
double unix_time(const std::string& ts) {
  struct tm tm {};
  if (::strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return 0;
  double s = static_cast<double>(::timegm(&tm));
  auto dot = ts.find('.');
  if (dot != std::string::npos) s += std::stod("0" + ts.substr(dot, ts.size() - dot - 1));
  return s;
}

struct Fired {
  std::string scheduled;  // the event's time
  std::string request_id;
  double logged_s = 0;  // when kilnd logged the firing
};

class ScheduleE2e : public kiln::e2e::KilndTest {
 protected:
  // The firings logged on `fn`, and hello's own lines ("hello: POST ..."), from its JSON log.
  std::vector<Fired> firings(const std::string& fn, std::vector<std::string>* guest_lines) {
    std::vector<Fired> out;
    static const std::regex fired(R"(^schedule rate\(3 seconds\) fired for (\S+): invocation (\S+)$)");
    std::istringstream in(call("GET", "/v1/functions/" + fn + "/logs?format=json&limit=100000").body);
    for (std::string line; std::getline(in, line);) {
      json e = json::parse(line, nullptr, false);
      if (!e.is_object()) continue;
      const std::string msg = e.value("message", "");
      std::smatch m;
      if (std::regex_match(msg, m, fired)) out.push_back({m[1], m[2], unix_time(e.value("ts", ""))});
      if (guest_lines && msg.rfind("hello: POST", 0) == 0) guest_lines->push_back(msg);
    }
    return out;
  }
};

TEST_F(ScheduleE2e, FiresOnTimeWithTheScheduledEventAndStopsOnDelete) {
  start({"--allow-second-schedules"});
  const std::string oci = kilnd_->paths().build_root + "/examples/hello/oci";
  // One instance, started at deploy: firings queue for it while it boots instead of each
  // cold-booting another microVM (ten at once overload a one-vCPU test host).
  auto deployed = kilnd_->deploy("tick", {{"image", "oci:" + oci}, {"timeout_ms", 120000},
                                          {"schedule", {"rate(3 seconds)"}}, {"min_instances", 1},
                                          {"max_instances", 1}});
  ASSERT_TRUE(deployed.ok()) << deployed.error().message;
  ASSERT_EQ((*deployed)["config"]["schedule"], json({"rate(3 seconds)"})) << deployed->dump();

  // What the guest must receive: EventBridge's Scheduled Event, its keys in nlohmann's order,
  // for the admin namespace's "tick", schedule 0 (only the UUID differs between firings).
  const std::string expected_body =
      R"({"account":"000000000000","detail":{},"detail-type":"Scheduled Event",)"
      R"("id":"00000000-0000-4000-8000-000000000000","region":"local",)"
      R"("resources":["arn:aws:events:local:000000000000:rule/tick-schedule-0"],"source":"aws.events",)"
      R"("time":"2026-12-07T13:01:00Z","version":"0"})";
  const std::string bytes = " bytes=" + std::to_string(expected_body.size());

  // Two firings whose invocations hello answered, each with that body.
  std::vector<Fired> served;
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while (served.size() < 2 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::vector<std::string> guest;
    served.clear();
    for (const Fired& f : firings("tick", &guest)) {
      for (const std::string& g : guest) {
        if (g == "hello: POST /event-invoke 200 request_id=" + f.request_id + bytes) served.push_back(f);
      }
    }
  }
  ASSERT_GE(served.size(), 2u) << "firings served with the scheduled event body: " << served.size();
  const Fired& a = served[served.size() - 2];
  const Fired& b = served.back();
  EXPECT_EQ(unix_time(b.scheduled) - unix_time(a.scheduled), 3) << a.scheduled << " then " << b.scheduled;
  for (const Fired* f : {&a, &b}) {
    const double late = f->logged_s - unix_time(f->scheduled);
    EXPECT_GE(late, 0) << f->scheduled;
    EXPECT_LT(late, 1.0) << f->scheduled << " fired " << late << " s late";
  }
  auto m = call("GET", "/metrics").body;
  EXPECT_GE(metric(m, "kiln_schedule_fires_total", "tick"), 2) << m;
  EXPECT_NE(m.find("kiln_invocations_total{function=\"tick\",kind=\"schedule\"}"), std::string::npos) << m;

  // A second function keeps time: its image fails, so each firing is refused, logged, counted.
  auto tock = call("PUT", "/v1/functions/tock",
                   json({{"image", "oci:/nonexistent/oci"}, {"schedule", {"rate(3 seconds)"}}}).dump());
  ASSERT_TRUE(tock.status == 200 || tock.status == 201) << tock.body;

  ASSERT_EQ(call("DELETE", "/v1/functions/tick").status, 204);
  const double fires_at_delete = metric(call("GET", "/metrics").body, "kiln_schedule_fires_total", "tick");
  // Three of tock's periods (9 s) pass on kilnd's own clock: tick fired in none of them.
  double refused = 0, refused_at_start = -1;
  deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    m = call("GET", "/metrics").body;
    refused = metric(m, "kiln_schedule_refused_total", "tock");
    if (refused_at_start < 0) refused_at_start = refused;
    if (refused >= refused_at_start + 3) break;
  }
  ASSERT_GE(refused, refused_at_start + 3) << m;
  EXPECT_EQ(metric(m, "kiln_schedule_fires_total", "tick"), fires_at_delete) << m;
  auto tock_logs = call("GET", "/v1/functions/tock/logs").body;
  EXPECT_NE(tock_logs.find("not invoked: image failed"), std::string::npos) << tock_logs;
}

// The scheduled times of `fn`'s firings that were refused, from its log (oldest first).
std::vector<double> refused_times(kiln::e2e::KilndProcess& k, const std::string& fn) {
  static const std::regex refused(R"(^schedule rate\(3 seconds\) fired for (\S+): not invoked: image failed.*)");
  std::vector<double> out;
  auto r = k.call("GET", "/v1/functions/" + fn + "/logs?format=json&limit=100000");
  if (!r.ok()) return out;
  std::istringstream in(r->body);
  for (std::string line; std::getline(in, line);) {
    json e = json::parse(line, nullptr, false);
    std::smatch m;
    const std::string msg = e.is_object() ? e.value("message", "") : "";
    if (std::regex_match(msg, m, refused)) out.push_back(unix_time(m[1]));
  }
  return out;
}

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TEST_F(ScheduleE2e, ARestartTakesSchedulesBackAndReplaysNoMissedFiring) {
  // No VM needed: the image fails, so every firing is refused and logged (with its time).
  start({"--allow-second-schedules"});
  auto put = call("PUT", "/v1/functions/tock",
                  json({{"image", "oci:/nonexistent/oci"}, {"schedule", {"rate(3 seconds)"}}}).dump());
  ASSERT_EQ(put.status, 201) << put.body;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (refused_times(*kilnd_, "tock").empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_FALSE(refused_times(*kilnd_, "tock").empty());
  ASSERT_EQ(kilnd_->stop(SIGTERM), 0);
  const double down_at = wall_now();
  std::this_thread::sleep_for(std::chrono::seconds(7));  // kilnd is down across two firings
  const double up_at = wall_now();
  start({"--allow-second-schedules"});
  std::vector<double> times;
  deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    times = refused_times(*kilnd_, "tock");
    if (!times.empty() && times.back() > up_at) break;
  }
  ASSERT_FALSE(times.empty());
  ASSERT_GT(times.back(), up_at) << "no firing after the restart";
  for (double t : times) {
    EXPECT_TRUE(t <= down_at || t > up_at) << "a firing missed while kilnd was down was replayed: " << t;
    EXPECT_EQ(static_cast<long long>(t - times.front()) % 3, 0) << "off the rate's grid: " << t;
  }
}

}  // namespace
