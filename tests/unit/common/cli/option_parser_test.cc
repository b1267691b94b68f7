// The shared option parser: order, both value syntaxes, "--", exact names, and its errors.
#include "common/cli/option_parser.h"

#include <gtest/gtest.h>

namespace kiln::cli {
namespace {

constexpr Flag kFlags[] = {
    {"help", 'h'},
    {"output", 'o', Value::kRequired},
    {"verbose"},
    {"tls-verify", 0, Value::kOptional},
    {"env", 0, Value::kRequired},
};

std::string error_of(const std::vector<std::string>& args, Order order = Order::kInterleaved) {
  auto r = parse(kFlags, args, order);
  EXPECT_FALSE(r.ok());
  return r.ok() ? std::string() : r.error().message;
}

TEST(OptionParser, FlagsAndPositionalsInOrder) {
  auto r = parse(kFlags, {"build", "--output", "a", "REF", "-o", "b", "--env=K=V", "--verbose", "-h", "--output=-x"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& a = r->args;
  ASSERT_EQ(a.size(), 8u);
  EXPECT_EQ(a[0].flag, nullptr);
  EXPECT_EQ(a[0].value, "build");
  EXPECT_TRUE(a[1].is("output"));
  EXPECT_EQ(a[1].value, "a");
  EXPECT_EQ(a[2].value, "REF");
  EXPECT_TRUE(a[3].is("output"));
  EXPECT_EQ(a[3].value, "b");
  EXPECT_TRUE(a[4].is("env"));
  EXPECT_EQ(a[4].value, "K=V");
  EXPECT_TRUE(a[5].is("verbose"));
  EXPECT_FALSE(a[5].has_value);
  EXPECT_TRUE(a[6].is("help"));
  EXPECT_EQ(a[7].value, "-x");
  EXPECT_TRUE(r->rest.empty());
}

TEST(OptionParser, ValueMayStartWithADash) {
  auto r = parse(kFlags, {"--env", "--not-a-flag", "-o", "-"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->args[0].value, "--not-a-flag");
  EXPECT_EQ(r->args[1].value, "-");
}

TEST(OptionParser, OptionalValueOnlyWithEquals) {
  auto r = parse(kFlags, {"--tls-verify=false", "--tls-verify"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->args[0].has_value);
  EXPECT_EQ(r->args[0].value, "false");
  EXPECT_FALSE(r->args[1].has_value);
}

TEST(OptionParser, DashDashEndsTheFlags) {
  auto r = parse(kFlags, {"--verbose", "--", "--output", "x"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->args.size(), 1u);
  EXPECT_TRUE(r->saw_dash_dash);
  EXPECT_EQ(r->rest, (std::vector<std::string>{"--output", "x"}));
}

TEST(OptionParser, StopAtPositionalLeavesTheCommand) {
  auto r = parse(kFlags, {"-o", "x", "deploy", "name", "--verbose"}, Order::kStopAtPositional);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->args.size(), 1u);
  EXPECT_EQ(r->rest, (std::vector<std::string>{"deploy", "name", "--verbose"}));
  EXPECT_FALSE(r->saw_dash_dash);
}

TEST(OptionParser, Errors) {
  EXPECT_EQ(error_of({"--frobnicate"}), "unknown flag --frobnicate");
  EXPECT_EQ(error_of({"--frobnicate=1"}), "unknown flag --frobnicate");
  EXPECT_EQ(error_of({"-z"}), "unknown flag -z");
  EXPECT_EQ(error_of({"--output"}), "--output: missing value");
  EXPECT_EQ(error_of({"-o"}), "-o: missing value");
  EXPECT_EQ(error_of({"--verbose=1"}), "--verbose: takes no value");
  // getopt_long would take a unique prefix; kiln wants the whole name.
  EXPECT_EQ(error_of({"--verb"}), "unknown flag --verb");
  EXPECT_EQ(error_of({"--out", "x"}), "unknown flag --out");
  EXPECT_EQ(error_of({"--out"}), "unknown flag --out");  // not "--output: missing value"
  EXPECT_EQ(error_of({"--verb=1"}), "unknown flag --verb");  // not "--verbose: takes no value"
  EXPECT_TRUE(parse(kFlags, {"x", "--bogus"}, Order::kStopAtPositional).ok());  // after the command: not ours
}

TEST(OptionParser, RunsAgainAfterAnError) {
  EXPECT_FALSE(parse(kFlags, {"-o"}).ok());
  auto r = parse(kFlags, {"-o", "y"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->args[0].value, "y");
}

TEST(OptionParser, Numbers) {
  EXPECT_EQ(*parse_number("--n", "42"), 42u);
  EXPECT_EQ(parse_number("--n", "4x").error().message, "--n: want a number, got '4x'");
  EXPECT_FALSE(parse_number("--n", "").ok());
  EXPECT_FALSE(parse_number("--n", "-1").ok());
  EXPECT_FALSE(parse_number("--n", "+1").ok());
  EXPECT_FALSE(parse_number("--n", "99999999999999999999999").ok());
  EXPECT_EQ(parse_number("--port", "65536", 65535).error().message, "--port: at most 65535, got 65536");
  EXPECT_TRUE(*parse_on_off("--jail", "on"));
  EXPECT_FALSE(*parse_on_off("--jail", "off"));
  EXPECT_FALSE(parse_on_off("--jail", "maybe").ok());
}

}  // namespace
}  // namespace kiln::cli
