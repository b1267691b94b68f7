// LaunchSpec parsing: round trip, defaults, validation of hostile specs, config drive bytes.
#include "common/protocol/launch_spec.h"

#include <gtest/gtest.h>

#include "common/protocol/frame.h"
#include "common/protocol/record.h"

namespace kiln::protocol {
namespace {

LaunchSpec sample() {
  LaunchSpec s;
  s.argv = {"/usr/bin/hello", "--port", "9000"};
  s.env = {"PATH=/usr/bin:/bin", "EMPTY=", "EQ=a=b"};
  s.working_dir = "/srv";
  s.user = "app:app";
  s.hostname = "fn-1";
  s.instance_id = "i-42";
  s.port = 8080;
  s.ready_timeout_ms = 1234;
  s.stop_grace_ms = 99;
  s.overlay_mib = 64;
  s.wall_clock_ns = 1700000000000000000ull;
  return s;
}

TEST(LaunchSpec, RoundTrip) {
  auto p = encode_launch_spec(sample());
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto d = decode_launch_spec(*p);
  ASSERT_TRUE(d.ok()) << d.error().message;
  LaunchSpec want = sample();
  EXPECT_EQ(d->argv, want.argv);
  EXPECT_EQ(d->env, want.env);
  EXPECT_EQ(d->working_dir, "/srv");
  EXPECT_EQ(d->user, "app:app");
  EXPECT_EQ(d->hostname, "fn-1");
  EXPECT_EQ(d->instance_id, "i-42");
  EXPECT_EQ(d->port, 8080);
  EXPECT_EQ(d->ready_timeout_ms, 1234u);
  EXPECT_EQ(d->stop_grace_ms, 99u);
  EXPECT_EQ(d->overlay_mib, 64u);
  EXPECT_EQ(d->wall_clock_ns, 1700000000000000000ull);
}

TEST(LaunchSpec, DefaultsForMissingFields) {
  auto d = decode_launch_spec(*Record().add("arg", "/bin/sh").encode());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->working_dir, "/");
  EXPECT_EQ(d->user, "");
  EXPECT_EQ(d->hostname, "kiln");
  EXPECT_EQ(d->port, 9000);
  EXPECT_EQ(d->ready_timeout_ms, 10000u);
}

TEST(LaunchSpec, RejectsHostileSpecs) {
  auto bad = [](Record r) { return !decode_launch_spec(*r.encode()).ok(); };
  EXPECT_TRUE(bad(Record()));                                          // no command
  EXPECT_TRUE(bad(Record().add("arg", "")));                           // empty command
  EXPECT_TRUE(bad(Record().add("arg", std::string("a\0b", 3))));       // NUL in argv
  EXPECT_TRUE(bad(Record().add("arg", "x").add("env", "NOEQUALS")));
  EXPECT_TRUE(bad(Record().add("arg", "x").add("env", "=v")));
  EXPECT_TRUE(bad(Record().add("arg", "x").add("env", std::string("A=\0", 3))));
  EXPECT_TRUE(bad(Record().add("arg", "x").add("cwd", "relative")));
  EXPECT_TRUE(bad(Record().add("arg", "x").add("port", "0")));
  EXPECT_TRUE(bad(Record().add("arg", "x").add("port", "65536")));
  EXPECT_TRUE(bad(Record().add("arg", "x").add("port", "abc")));
  EXPECT_TRUE(bad(Record().add("arg", "x").add("hostname", "bad host")));
  EXPECT_TRUE(bad(Record().add("arg", "x").add("ready_timeout_ms", "99999999999")));
  EXPECT_TRUE(bad(Record().add("arg", "x").add("overlay_mib", "0")));
  Record many;
  for (std::size_t i = 0; i <= kMaxArgs; ++i) many.add("arg", "a");
  EXPECT_TRUE(bad(many));
  EXPECT_FALSE(decode_launch_spec("\x03" "arg").ok());  // truncated record
}

TEST(LaunchSpec, UnknownKeysAreIgnored) {
  auto d = decode_launch_spec(*Record().add("arg", "x").add("future_field", "1").encode());
  EXPECT_TRUE(d.ok());
}

TEST(LaunchSpec, EncodeValidates) {
  LaunchSpec s;
  EXPECT_FALSE(encode_launch_spec(s).ok());
}

TEST(ConfigDrive, FrameWithSectorPadding) {
  auto bytes = encode_config_drive(sample());
  ASSERT_TRUE(bytes.ok());
  std::string drive = *bytes;
  drive.resize((drive.size() + 511) / 512 * 512, '\0');
  auto d = decode_config_drive(drive);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->argv, sample().argv);
}

TEST(ConfigDrive, RejectsGarbageAndWrongType) {
  EXPECT_FALSE(decode_config_drive(std::string(512, '\0')).ok());
  EXPECT_FALSE(decode_config_drive(*encode_frame(FrameType::kAck, "")).ok());
  auto full = *encode_config_drive(sample());
  EXPECT_FALSE(decode_config_drive(full.substr(0, full.size() - 1)).ok());
}

}  // namespace
}  // namespace kiln::protocol
