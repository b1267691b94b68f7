// kiln-init's command line outside PID 1: both modes, --help, and usage errors.
#include "guest-agent/cli/init_options.h"

#include <gtest/gtest.h>

namespace kiln::agent {
namespace {

std::string error_of(const std::vector<std::string>& args) {
  auto r = parse_init_args(args);
  EXPECT_FALSE(r.ok());
  return r.ok() ? std::string() : r.error().message;
}

TEST(InitOptions, NoBootEndpointsAndSpecFile) {
  auto o = parse_init_args({"--no-boot", "--control", "unix:/tmp/c", "--proxy=unix:/tmp/p", "--events",
                            "vsock:2:10001", "--spec-file", "/tmp/spec"});
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->mode, InitMode::kNoBoot);
  ASSERT_TRUE(o->control.has_value());
  EXPECT_EQ(o->control->path, "/tmp/c");
  EXPECT_EQ(o->proxy->path, "/tmp/p");
  EXPECT_EQ(o->events->kind, Endpoint::Kind::kVsock);
  EXPECT_EQ(o->events->port, 10001u);
  EXPECT_EQ(o->spec_file, "/tmp/spec");
  auto bare = parse_init_args({"--no-boot"});
  ASSERT_TRUE(bare.ok());
  EXPECT_FALSE(bare->control.has_value());  // the agent's defaults apply
  EXPECT_EQ(parse_init_args({"--no-boot", "--config-drive", "/dev/vdb"})->spec_file, "/dev/vdb");
}

TEST(InitOptions, WriteSpecBuildsTheLaunchSpec) {
  auto o = parse_init_args({"--write-spec", "/tmp/drive", "--env", "A=1", "--env", "B=2", "--cwd", "/srv", "--user",
                            "nobody", "--hostname", "h", "--instance-id", "i-1", "--port", "8080",
                            "--ready-timeout-ms", "500", "--stop-grace-ms", "7", "--overlay-mib", "64",
                            "--wall-clock-ns", "123", "--", "/bin/server", "--flag", "x"});
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->mode, InitMode::kWriteSpec);
  EXPECT_EQ(o->out_file, "/tmp/drive");
  const auto& s = o->spec;
  EXPECT_EQ(s.env, (std::vector<std::string>{"A=1", "B=2"}));
  EXPECT_EQ(s.working_dir, "/srv");
  EXPECT_EQ(s.user, "nobody");
  EXPECT_EQ(s.hostname, "h");
  EXPECT_EQ(s.instance_id, "i-1");
  EXPECT_EQ(s.port, 8080);
  EXPECT_EQ(s.ready_timeout_ms, 500u);
  EXPECT_EQ(s.stop_grace_ms, 7u);
  EXPECT_EQ(s.overlay_mib, 64u);
  EXPECT_EQ(s.wall_clock_ns, 123u);
  EXPECT_EQ(s.argv, (std::vector<std::string>{"/bin/server", "--flag", "x"}));
}

TEST(InitOptions, WriteSpecNetworkKeys) {
  auto o = parse_init_args({"--write-spec", "/tmp/drive", "--net-mac", "02:fc:00:00:00:01", "--net-address",
                            "10.0.0.2/30", "--net-gateway", "10.0.0.1", "--net-address6", "fd00::2/64",
                            "--net-gateway6", "fe80::1", "--net-mtu", "1500", "--net-dns", "10.0.0.1", "--net-dns",
                            "fd00::1", "--net-search", "svc.internal", "--net-hosts", "10.0.0.9 db", "--", "/bin/server"});
  ASSERT_TRUE(o.ok()) << o.error().message;
  const auto& n = o->spec.net;
  EXPECT_EQ(n.mac, "02:fc:00:00:00:01");
  EXPECT_EQ(n.address, "10.0.0.2/30");
  EXPECT_EQ(n.gateway, "10.0.0.1");
  EXPECT_EQ(n.address6, "fd00::2/64");
  EXPECT_EQ(n.gateway6, "fe80::1");
  EXPECT_EQ(n.mtu, 1500u);
  EXPECT_EQ(n.dns, (std::vector<std::string>{"10.0.0.1", "fd00::1"}));
  EXPECT_EQ(n.search, (std::vector<std::string>{"svc.internal"}));
  EXPECT_EQ(n.hosts, (std::vector<std::string>{"10.0.0.9 db"}));
  EXPECT_TRUE(protocol::validate_launch_spec(o->spec).ok());
  EXPECT_NE(error_of({"--write-spec", "/x", "--net-mtu", "70000", "--", "/bin/server"}).find("--net-mtu"),
            std::string::npos);
}

TEST(InitOptions, HelpInEveryMode) {
  EXPECT_EQ(parse_init_args({"--help"})->mode, InitMode::kHelp);
  EXPECT_EQ(parse_init_args({"-h"})->mode, InitMode::kHelp);
  EXPECT_EQ(parse_init_args({"--no-boot", "--help"})->mode, InitMode::kHelp);
  EXPECT_EQ(parse_init_args({"--write-spec", "/x", "--help"})->mode, InitMode::kHelp);
  EXPECT_NE(init_usage().find("kiln-init --no-boot"), std::string::npos);
}

TEST(InitOptions, UsageErrors) {
  EXPECT_NE(error_of({}).find("pass --no-boot"), std::string::npos);
  EXPECT_NE(error_of({"--control", "unix:/x"}).find("pass --no-boot"), std::string::npos);
  EXPECT_EQ(error_of({"--no-boot", "--frobnicate"}), "unknown flag --frobnicate");
  EXPECT_EQ(error_of({"--no-boot", "--env", "A=1"}), "unknown flag --env");  // a --write-spec flag
  EXPECT_EQ(error_of({"--no-boot", "--control"}), "--control: missing value");
  EXPECT_NE(error_of({"--no-boot", "--control", "tcp:1"}).find("--control"), std::string::npos);
  EXPECT_EQ(error_of({"--write-spec"}), "--write-spec: missing value");
  EXPECT_EQ(error_of({"--write-spec", "/x", "--port", "http"}), "--port: want a number, got 'http'");
  EXPECT_EQ(error_of({"--write-spec", "/x", "--port", "65536"}), "--port: at most 65535, got 65536");
  EXPECT_EQ(error_of({"--write-spec", "/x", "--overlay-mib", "-1"}), "--overlay-mib: want a number, got '-1'");
  EXPECT_NE(error_of({"--write-spec", "/x", "/bin/sh"}).find("after --"), std::string::npos);
}

}  // namespace
}  // namespace kiln::agent
