// Timer triggers as a function setting (issue 22): the `schedule` field (validation naming the
// entry, hostile input, the state round trip, the API's 400 and the test-only seconds rule) and
// the Scheduled Event body a firing sends.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "src/functions/function_table.h"
#include "src/functions/lambda_shapes.h"
#include "tests/unit/kilnd/support/daemon_harness.h"

namespace kiln::kilnd::registry {
namespace {

using nlohmann::json;

std::string refusal(const std::string& body, std::string* field = nullptr) {
  FieldError fe;
  auto c = parse_function_config("f", body, &fe);
  EXPECT_FALSE(c.ok()) << body;
  if (field) *field = fe.field;
  return c.ok() ? "" : fe.message;
}

TEST(ScheduleSetting, ParsedTrimmedAndRoundTripped) {
  FieldError fe;
  auto c = parse_function_config("f", R"j({"image":"x","schedule":[" rate(5 minutes) ","cron(0 12 * * ? *)"]})j", &fe);
  ASSERT_TRUE(c.ok()) << fe.message;
  EXPECT_EQ(c->schedules, (std::vector<std::string>{"rate(5 minutes)", "cron(0 12 * * ? *)"}));
  FunctionRecord r;
  r.config = *c;
  auto back = record_from_state_json(record_to_state_json(r));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->config.schedules, c->schedules);
  EXPECT_EQ(record_to_api_json(r)["config"]["schedule"], json({"rate(5 minutes)", "cron(0 12 * * ? *)"}));
  // None: the field is left out (and [] means none).
  auto none = parse_function_config("f", R"j({"image":"x","schedule":[]})j", &fe);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->schedules.empty());
  r.config = *none;
  EXPECT_FALSE(record_to_api_json(r)["config"].contains("schedule"));
}

TEST(ScheduleSetting, ErrorsNameTheEntry) {
  std::string field;
  EXPECT_EQ(refusal(R"j({"image":"x","schedule":["rate(1 minute)","cron(0 12 ? * 8 *)"]})j", &field),
            "schedule[1]: cron: day-of-week: '8' is out of range 1-7");
  EXPECT_EQ(field, "schedule[1]");
  EXPECT_NE(refusal(R"j({"image":"x","schedule":"rate(1 minute)"})j", &field).find("schedule"), std::string::npos);
  EXPECT_EQ(field, "schedule");
  refusal(R"j({"image":"x","schedule":[5]})j", &field);
  EXPECT_EQ(field, "schedule[0]");
  refusal(R"j({"image":"x","schedule":null})j", &field);
  EXPECT_EQ(field, "schedule");
  refusal(R"j({"image":"x","schedule":["rate(0 minutes)"]})j", &field);
  EXPECT_EQ(field, "schedule[0]");
  refusal(R"j({"image":"x","schedule":["cron(0 12 * * ? *)\u0000"]})j", &field);
  EXPECT_EQ(field, "schedule[0]");
  refusal(json({{"image", "x"}, {"schedule", {std::string(300, 'r')}}}).dump(), &field);
  EXPECT_EQ(field, "schedule[0]");
  json many = {{"image", "x"}, {"schedule", json::array()}};
  for (int i = 0; i < 17; ++i) many["schedule"].push_back("rate(1 hour)");
  refusal(many.dump(), &field);
  EXPECT_EQ(field, "schedule");
  many["schedule"].erase(0);
  FieldError fe;
  EXPECT_TRUE(parse_function_config("f", many.dump(), &fe).ok()) << fe.message;  // 16 is the most
}

TEST(ScheduleSetting, SecondsLoadFromStateButDeployOnlyWithTheTestFlag) {
  FieldError fe;
  auto c = parse_function_config("f", R"j({"image":"x","schedule":["rate(1 hour)","rate(3 seconds)"]})j", &fe);
  ASSERT_TRUE(c.ok()) << fe.message;
  FunctionRecord r;
  r.config = *c;
  EXPECT_TRUE(record_from_state_json(record_to_state_json(r)).ok());
  auto refused = functions::schedule_refusal(*c, false);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->field, "schedule[1]");
  EXPECT_NE(refused->message.find("--allow-second-schedules"), std::string::npos);
  EXPECT_FALSE(functions::schedule_refusal(*c, true));
}

TEST(ScheduledEvent, IsEventBridgesShape) {
  json e = json::parse(functions::lambda_scheduled_event("", "tick", 1, "9d1e7c1c-0000-4000-8000-000000000001",
                                                         1796648460));
  EXPECT_EQ(e, json::parse(R"j({"version":"0","id":"9d1e7c1c-0000-4000-8000-000000000001",
    "detail-type":"Scheduled Event","source":"aws.events","account":"000000000000",
    "time":"2026-12-07T13:01:00Z","region":"local",
    "resources":["arn:aws:events:local:000000000000:rule/tick-schedule-1"],"detail":{}})j"));
  json t = json::parse(functions::lambda_scheduled_event("acme", "tick", 0, "id", 0));
  EXPECT_EQ(t["account"], functions::lambda_account("acme"));
  EXPECT_EQ(t["time"], "1970-01-01T00:00:00Z");
}

using ScheduleDaemonTest = test::StateDirTest;

TEST_F(ScheduleDaemonTest, ADeployShowsItsSchedulesAndRefusesBadOnesAndSecondsWith400) {
  test::DaemonHarness k(dir_);
  auto bad = k.call("PUT", "/v1/functions/f", R"j({"image":"oci:/img:1","schedule":["cron(61 * * * ? *)"]})j");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body)["field"], "schedule[0]");
  auto seconds = k.call("PUT", "/v1/functions/f", R"j({"image":"oci:/img:1","schedule":["rate(3 seconds)"]})j");
  EXPECT_EQ(seconds.status, 400);
  EXPECT_EQ(json::parse(seconds.body)["field"], "schedule[0]");
  k.deploy("f", R"j({"image":"oci:/img:1","schedule":["rate(1 day)"]})j");
  auto got = k.call("GET", "/v1/functions/f");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(json::parse(got.body)["config"]["schedule"], json({"rate(1 day)"}));
  EXPECT_EQ(k.call("DELETE", "/v1/functions/f").status, 204);
}

}  // namespace
}  // namespace kiln::kilnd::registry
