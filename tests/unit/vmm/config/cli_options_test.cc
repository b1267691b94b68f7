// kiln-vmm's command line: defaults, both value syntaxes, and errors as values.
#include "vmm/config/cli_options.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include "vmm/logging/logger.h"
#include "vmm/logging/metrics.h"

namespace kiln::vmm::config {
namespace {

Result<CliOptions> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "kiln-vmm");
  return parse_cli_options(args);
}

TEST(CliOptions, Defaults) {
  auto o = parse({});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->api_sock, kDefaultApiSock);
  EXPECT_EQ(o->id, kDefaultInstanceId);
  EXPECT_FALSE(o->config_file.has_value());
  EXPECT_FALSE(o->no_api);
  EXPECT_EQ(o->http_api_max_payload_size, kDefaultMaxPayloadBytes);
}

TEST(CliOptions, AllFlags) {
  auto o = parse({"--api-sock", "/tmp/a.sock", "--config-file=/etc/vm.json", "--no-api", "--id", "fn-1",
                  "--log-path", "/tmp/log", "--level", "Debug", "--metrics-path=/tmp/m", "--boot-timer",
                  "--show-level", "--show-log-origin", "--http-api-max-payload-size", "1000", "--self-test"});
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->api_sock, "/tmp/a.sock");
  EXPECT_EQ(o->config_file.value(), "/etc/vm.json");
  EXPECT_TRUE(o->no_api);
  EXPECT_EQ(o->id, "fn-1");
  EXPECT_EQ(o->log_path.value(), "/tmp/log");
  EXPECT_EQ(o->level.value(), "Debug");
  EXPECT_EQ(o->metrics_path.value(), "/tmp/m");
  EXPECT_TRUE(o->boot_timer);
  EXPECT_TRUE(o->show_level);
  EXPECT_TRUE(o->show_log_origin);
  EXPECT_EQ(o->http_api_max_payload_size, 1000u);
  EXPECT_TRUE(o->self_test);
}

TEST(CliOptions, HelpAndVersion) {
  EXPECT_TRUE(parse({"--help"})->help);
  EXPECT_TRUE(parse({"--version"})->version);
  EXPECT_TRUE(parse({"--no-api", "--help"}).ok());  // help wins over the --no-api rule
  EXPECT_NE(cli_usage().find("--api-sock"), std::string::npos);
}

TEST(CliOptions, Errors) {
  auto msg = [](std::vector<std::string> args) {
    auto r = parse(std::move(args));
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_NE(msg({"--bogus"}).find("--bogus"), std::string::npos);
  EXPECT_NE(msg({"positional"}).find("positional"), std::string::npos);
  EXPECT_EQ(msg({"--api-sock"}), "--api-sock: missing value");
  EXPECT_EQ(msg({"--api-sock", ""}), "--api-sock: must not be empty");
  EXPECT_NE(msg({"--level", "loud"}).find("--level"), std::string::npos);
  EXPECT_NE(msg({"--id", "has space"}).find("--id"), std::string::npos);
  EXPECT_NE(msg({"--id", std::string(65, 'a')}).find("--id"), std::string::npos);
  EXPECT_NE(msg({"--no-api"}).find("--config-file"), std::string::npos);
  EXPECT_EQ(msg({"--no-api=1", "--config-file", "x"}), "--no-api: takes no value");
  EXPECT_NE(msg({"--id", "a", "--id", "b"}).find("more than once"), std::string::npos);
  EXPECT_FALSE(parse({"--http-api-max-payload-size", "0"}).ok());
  EXPECT_FALSE(parse({"--http-api-max-payload-size", "12x"}).ok());
  EXPECT_FALSE(parse({"--http-api-max-payload-size", "-5"}).ok());
  EXPECT_FALSE(parse({"--http-api-max-payload-size", "99999999999999999999999"}).ok());
}

TEST(CliOptions, SeccompFlags) {
  auto o = parse({"--no-seccomp", "--api-sock", "/tmp/a", "--seccomp-audit", "--debug-seccomp-violation-after-ms=250",
                  "--no-seccomp"});  // kilnd's --vmm-arg may repeat them
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_TRUE(o->no_seccomp);
  EXPECT_TRUE(o->seccomp_audit);
  EXPECT_EQ(o->debug_seccomp_violation_after_ms.value(), 250u);
  EXPECT_FALSE(parse({})->debug_seccomp_violation_after_ms.has_value());
  auto bad = parse({"--debug-seccomp-violation-after-ms", "soon"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("milliseconds"), std::string::npos);
  EXPECT_NE(cli_usage().find("--no-seccomp"), std::string::npos);
}

TEST(CliOptions, NoAbbreviations) {
  auto r = parse({"--api", "/tmp/a.sock"});  // getopt_long alone would take it for --api-sock
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("--api"), std::string::npos);
}

TEST(CliOptions, ArgvOverload) {
  const char* argv[] = {"kiln-vmm", "--config-file", "/vm.json", "--no-api"};
  auto o = parse_cli_options(4, argv);
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->no_api);
}

TEST(CliOptions, ApplyLoggingOptions) {
  char tmpl[] = "/tmp/kiln-cli-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto o = parse({"--id", "fn-9", "--level", "Info", "--log-path", dir + "/vmm.log", "--metrics-path", dir + "/m.json"});
  ASSERT_TRUE(o.ok());
  ASSERT_TRUE(apply_logging_options(*o).ok());
  auto& logger = logging::Logger::instance();
  EXPECT_EQ(logger.level(), logging::LogLevel::kInfo);
  logger.log(logging::LogLevel::kInfo, "hello from the test");
  EXPECT_TRUE(logging::MetricsRegistry::global().has_output());
  EXPECT_TRUE(logging::MetricsRegistry::global().flush().ok());
  logger.reset_output();
  logger.set_level(logging::LogLevel::kWarning);
  std::ifstream in(dir + "/vmm.log");
  std::string line;
  std::getline(in, line);
  EXPECT_NE(line.find("[fn-9] INFO hello from the test"), std::string::npos) << line;
  std::ifstream m(dir + "/m.json");
  std::getline(m, line);
  EXPECT_NE(line.find("utc_timestamp_ms"), std::string::npos);

  auto bad = parse({"--log-path", dir + "/no/such/dir/x.log"});
  ASSERT_TRUE(bad.ok());
  auto st = apply_logging_options(*bad);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message.rfind("--log-path", 0), 0u);
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
}  // namespace kiln::vmm::config
