// Config drive reading: a padded launch-spec frame, absent device, corrupt or truncated drive.
#include "guest-agent/agent/boot.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "common/protocol/frame.h"

namespace kiln::agent {
namespace {

class ConfigDriveFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-drive-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& bytes) {
    std::string p = dir_ + "/drive.img";
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  std::string dir_;
};

TEST_F(ConfigDriveFile, ReadsPaddedSpec) {
  protocol::LaunchSpec s;
  s.argv = {"/usr/bin/hello"};
  s.env = {"A=1"};
  std::string bytes = *protocol::encode_config_drive(s);
  bytes.resize(4096, '\0');
  auto r = read_config_drive(write(bytes));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->argv, s.argv);
  EXPECT_EQ((*r)->env, s.env);
}

TEST_F(ConfigDriveFile, AbsentDeviceIsNotAnError) {
  auto r = read_config_drive(dir_ + "/nope");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST_F(ConfigDriveFile, CorruptOrTruncated) {
  EXPECT_FALSE(read_config_drive(write(std::string(512, '\0'))).ok());
  EXPECT_FALSE(read_config_drive(write("KF")).ok());
  protocol::LaunchSpec s;
  s.argv = {"/x"};
  std::string bytes = *protocol::encode_config_drive(s);
  EXPECT_FALSE(read_config_drive(write(bytes.substr(0, bytes.size() - 1))).ok());
  std::string huge;
  protocol::append_frame_header(huge, protocol::FrameType::kLaunchSpec, 0xfffffff0u);
  EXPECT_FALSE(read_config_drive(write(huge + std::string(64, 'x'))).ok());
}

}  // namespace
}  // namespace kiln::agent
