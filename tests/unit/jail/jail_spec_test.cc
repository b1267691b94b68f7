// JailSpec validation: ids and paths are refused before anything is created (the per-VM
// directory never appears), with messages naming the field.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <cstring>
#include <fstream>

#include "src/jail/exec_libraries.h"
#include "src/jail/jail.h"
#include "src/jail/jail_spec.h"
#include "tests/support/test_paths.h"

namespace kiln::jail {
namespace {

class JailSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-jail-spec-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    exec_ = base_ + "/vmm";
    std::ofstream(exec_) << "#!/nonexistent\n";
    ASSERT_EQ(::chmod(exec_.c_str(), 0755), 0);
    data_ = base_ + "/data.img";
    std::ofstream(data_) << "data";
    ASSERT_EQ(::mkdir((base_ + "/chroot").c_str(), 0755), 0);
    spec_.id = "vm-1";
    spec_.exec_file = exec_;
    spec_.uid = 4242;
    spec_.gid = 4242;
    spec_.chroot_base_dir = base_ + "/chroot";
    spec_.bind_exec_libraries = false;
    spec_.files.push_back({data_, "/data.img", true});
  }
  void TearDown() override { std::filesystem::remove_all(base_); }

  // spawn() must refuse `s` with a message containing `want`, leaving the chroot base empty.
  void expect_refused(const JailSpec& s, const std::string& want) {
    auto r = spawn(s, {});
    ASSERT_FALSE(r.ok()) << "spawn accepted a bad spec";
    EXPECT_NE(r.error().message.find(want), std::string::npos) << r.error().message;
    EXPECT_TRUE(std::filesystem::is_empty(base_ + "/chroot")) << "something was created for a refused spec";
    EXPECT_FALSE(std::filesystem::exists(jail_dir(s)));
  }

  std::string base_, exec_, data_;
  JailSpec spec_;
};

TEST_F(JailSpecTest, GoodSpecValidates) {
  auto s = validate_spec(spec_);
  EXPECT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(jail_dir(spec_), base_ + "/chroot/vmm/vm-1");
  EXPECT_EQ(chroot_dir(spec_), base_ + "/chroot/vmm/vm-1/root");
  EXPECT_EQ(parent_cgroup(spec_), "vmm");
}

TEST_F(JailSpecTest, IdRule) {
  EXPECT_TRUE(validate_id("551e7604-e35c-42b3-b825-416853441234").ok());
  EXPECT_TRUE(validate_id(std::string(64, 'a')).ok());
  EXPECT_FALSE(validate_id("").ok());
  EXPECT_FALSE(validate_id(std::string(65, 'a')).ok());
  for (std::string bad : std::vector<std::string>{"a/b", "..", "a.b", "a_b", "a b", "é", std::string("a\0b", 3), "a\n"})
    EXPECT_FALSE(validate_id(bad).ok()) << bad;
}

TEST_F(JailSpecTest, BadIdsRefusedBeforeAnythingExists) {
  for (std::string bad : {std::string(""), std::string(65, 'x'), std::string(".."), std::string("../escape"),
                          std::string("a/b"), std::string("a\0b", 3)}) {
    JailSpec s = spec_;
    s.id = bad;
    expect_refused(s, "id:");
  }
}

TEST_F(JailSpecTest, PathStrings) {
  EXPECT_TRUE(validate_path_string("p", "/a/b").ok());
  EXPECT_TRUE(validate_path_string("p", "/").ok());
  for (std::string bad : std::vector<std::string>{"", "a/b", "./a", "/a/../b", "/a/..", "/a/./b", "/a//b", "/a/", std::string("/a\0b", 4)})
    EXPECT_FALSE(validate_path_string("p", bad).ok()) << bad;
}

TEST_F(JailSpecTest, BadExecFileRefused) {
  JailSpec s = spec_;
  s.exec_file = "vmm";
  expect_refused(s, "absolute");
  s.exec_file = base_ + "/../" + base_.substr(5) + "/vmm";
  expect_refused(s, "'..'");
  s.exec_file = base_ + "/missing";
  expect_refused(s, "exec file");
  s.exec_file = base_;
  expect_refused(s, "not a regular file");
  s.exec_file = data_;  // not executable
  expect_refused(s, "not executable");
}

TEST_F(JailSpecTest, RootIdsRefused) {
  JailSpec s = spec_;
  s.uid = 0;
  expect_refused(s, "uid");
  s = spec_;
  s.gid = 0;
  expect_refused(s, "gid");
}

TEST_F(JailSpecTest, BadChrootBaseAndNetnsRefused) {
  JailSpec s = spec_;
  s.chroot_base_dir = "relative/dir";
  auto r = spawn(s, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("chroot base dir"), std::string::npos);
  s.chroot_base_dir = base_ + "/missing";
  EXPECT_FALSE(spawn(s, {}).ok());
  EXPECT_FALSE(std::filesystem::exists(base_ + "/missing"));
  s = spec_;
  s.netns = base_ + "/no-such-netns";
  expect_refused(s, "netns");
  s.netns = "netns/relative";
  expect_refused(s, "netns");
}

TEST_F(JailSpecTest, BadJailFilesRefused) {
  auto with_file = [&](JailFile f) {
    JailSpec s = spec_;
    s.files.push_back(std::move(f));
    return s;
  };
  expect_refused(with_file({base_ + "/missing.img", "/x.img", true}), "missing.img");
  expect_refused(with_file({"data.img", "/x.img", true}), "absolute");
  expect_refused(with_file({base_ + "/../tmp/x", "/x.img", true}), "'..'");
  expect_refused(with_file({base_, "/x.img", true}), "not a regular file");
  expect_refused(with_file({data_, "x.img", true}), "absolute");
  expect_refused(with_file({data_, "/../x.img", true}), "'..'");
  expect_refused(with_file({data_, "/a/../../x", true}), "'..'");
  expect_refused(with_file({data_, "/", true}), "reserved");
  expect_refused(with_file({data_, "/dev/kvm", true}), "reserved");
  expect_refused(with_file({data_, "/vmm", true}), "exec file");
  expect_refused(with_file({"/dev/null", "/x.img", true}), "not a regular file, block device or socket");
  // A socket (a lazy root disk's NBD server) may be bound.
  const std::string sock = base_ + "/nbd.sock";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, sock.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_TRUE(validate_spec(with_file({sock, "/rootfs.sock", true})).ok());
  expect_refused(with_file({data_, "/data.img", true}), "twice");
  expect_refused(with_file({data_, "/data.img/inner", true}), "directory");
  expect_refused(with_file({data_, "/" + std::string(5000, 'a'), true}), "PATH_MAX");
}

TEST_F(JailSpecTest, BadLimitsAndCgroupKeysRefused) {
  JailSpec s = spec_;
  s.cgroup_settings = {{"../../escape", "1"}};
  expect_refused(s, "cgroup setting");
  s.cgroup_settings = {{"memory/max", "1"}};
  expect_refused(s, "cgroup setting");
  s.cgroup_settings = {{"cgroup.procs", "1"}};
  expect_refused(s, "managed by the jail");
  s.cgroup_settings = {{"nodot", "1"}};
  expect_refused(s, "<controller>.<file>");
  s.cgroup_settings = {{"memory.max", "1\n2"}};
  expect_refused(s, "newline");
  s.cgroup_settings = {{"memory.max", ""}};
  expect_refused(s, "value");
  s = spec_;
  s.parent_cgroup = "/abs";
  expect_refused(s, "relative");
  s.parent_cgroup = "a/../b";
  expect_refused(s, "'..'");
  s = spec_;
  s.limits.memory_bytes = 1;
  expect_refused(s, "memory");
  s = spec_;
  s.limits.cpu_millicores = 0;
  expect_refused(s, "cpu");
  s = spec_;
  s.limits.pids_max = 0;
  expect_refused(s, "pids");
  s = spec_;
  s.rlimit_nofile = 2;
  expect_refused(s, "no-file");
}

TEST_F(JailSpecTest, VmmArgumentWithNulRefused) {
  auto r = spawn(spec_, {std::string("a\0b", 3)});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(std::filesystem::is_empty(base_ + "/chroot"));
}

TEST_F(JailSpecTest, NonElfExecFileRefusedWhenLibrariesAreWanted) {
  JailSpec s = spec_;
  s.bind_exec_libraries = true;
  expect_refused(s, "not an ELF64");
}

TEST(ExecLibraries, ParsesLoaderList) {
  auto r = parse_loader_list(
      "\tlinux-vdso.so.1 (0x00007ffd)\n"
      "\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f34)\n"
      "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f35)\n"
      "\t/lib64/ld-linux-x86-64.so.2 (0x00007f36)\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<std::string>{"/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libc.so.6",
                                          "/lib64/ld-linux-x86-64.so.2"}));
  EXPECT_FALSE(parse_loader_list("\tlibmissing.so.1 => not found\n").ok());
}

TEST(ExecLibraries, StaticProbeNeedsNothingDynamicBinaryNeedsLoaderAndLibc) {
  auto none = exec_libraries(kiln::testing::build_path("tests/unit/jail/jail_probe"));
  if (none.ok()) {  // the probe is built by the spawn test's target
    EXPECT_TRUE(none->empty());
  }
  auto libs = exec_libraries("/bin/true");
  ASSERT_TRUE(libs.ok()) << libs.error().message;
  auto interp = elf_interpreter("/bin/true");
  ASSERT_TRUE(interp.ok());
  bool libc = false, loader = false;
  for (const auto& l : *libs) {
    libc = libc || l.find("libc.so") != std::string::npos;
    loader = loader || l == *interp;
  }
  EXPECT_TRUE(libc);
  EXPECT_TRUE(loader) << *interp;
}

}  // namespace
}  // namespace kiln::jail
