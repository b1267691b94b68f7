// kvm tier: the real Vmm (boot path, port-I/O and MMIO dispatch, 8250, virtio-mmio transport,
// i8042 reset) running a tiny hand-written guest on whatever /dev/kvm this machine has; a root
// drive served by nbdkit over a Unix socket (the kiln-vmm binary with its seccomp filters, and a
// snapshot that reconnects to the same NBD URI on restore).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "common/unique_fd.h"
#include "tests/support/nbdkit_server.h"
#include "tests/support/process.h"
#include "vmm/core/vmm.h"
#include "tests/support/test_paths.h"

namespace kiln::vmm {
namespace {

std::string read_all(int fd) {
  std::string out;
  ::lseek(fd, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

class TinyGuest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/kvm on this machine";
    kernel_ = kiln::testing::build_path("tests/kvm/vmm/tiny_guest.elf");
    char disk[] = "/tmp/kiln-tiny-disk-XXXXXX";
    int fd = ::mkstemp(disk);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);
    ASSERT_EQ(::pwrite(fd, "KILNDISK", 8, 0), 8);  // what the guest's block read checks
    ::close(fd);
    disk_ = disk;
  }
  void TearDown() override {
    if (!disk_.empty()) ::unlink(disk_.c_str());
  }
  config::VmConfig make_config(uint32_t vcpus, const std::string& args = "console=ttyS0") {
    config::VmConfig c;
    c.boot_source = config::BootSource{kernel_, std::nullopt, args};
    c.machine_config.vcpu_count = vcpus;
    c.machine_config.mem_size_mib = 64;
    config::Drive d;
    d.drive_id = "rootfs";
    d.path_on_host = disk_;
    d.is_root_device = true;
    d.is_read_only = true;
    c.drives.push_back(d);
    return c;
  }
  std::string kernel_, disk_;
};

TEST_F(TinyGuest, SerialVirtioHandshakeAndResetThroughTheVmm) {
  UniqueFd out(::memfd_create("serial", MFD_CLOEXEC));
  auto vmm = Vmm::build_for_boot(make_config(1), Vmm::Options{out.get()});
  ASSERT_TRUE(vmm.ok()) << vmm.error().message;
  EXPECT_NE((*vmm)->kernel_cmdline().find("virtio_mmio.device=4K@0xd0000000:5"), std::string::npos)
      << (*vmm)->kernel_cmdline();
  ASSERT_TRUE((*vmm)->start().ok());
  int code = (*vmm)->wait();
  std::string serial = read_all(out.get());
  EXPECT_NE(serial.find("kiln-tiny-guest: serial ok"), std::string::npos) << serial;
  EXPECT_NE(serial.find("kiln-tiny-guest: zero page ok"), std::string::npos) << serial;
  EXPECT_NE(serial.find("kiln-tiny-guest: virtio-mmio handshake ok"), std::string::npos) << serial;
  EXPECT_NE(serial.find("kiln-tiny-guest: block read ok"), std::string::npos) << serial;
  EXPECT_NE(serial.find("kiln-tiny-guest: done"), std::string::npos) << serial;
  EXPECT_EQ(serial.find("FAIL"), std::string::npos) << serial;
  EXPECT_EQ(code, static_cast<int>(VmExit::kGuestShutdown));
  // The non-power-of-two QueueNum was refused by the transport and counted.
  EXPECT_GE((*vmm)->metrics()["block_rootfs"]["refused_register_writes"].get<uint64_t>(), 1u)
      << (*vmm)->metrics().dump();
}

TEST_F(TinyGuest, HostStopEndsARunningVm) {
  UniqueFd out(::memfd_create("serial", MFD_CLOEXEC));
  auto vmm = Vmm::build_for_boot(make_config(2, "spin"), Vmm::Options{out.get()});
  ASSERT_TRUE(vmm.ok()) << vmm.error().message;
  ASSERT_TRUE((*vmm)->start().ok());
  // Wait until the guest is idling (it printed its first line), then stop it from the host.
  for (int i = 0; i < 2000 && read_all(out.get()).find("serial ok") == std::string::npos; ++i) ::usleep(1000);
  EXPECT_TRUE((*vmm)->running());
  (*vmm)->stop(VmExit::kVmmError);
  EXPECT_EQ((*vmm)->wait(), static_cast<int>(VmExit::kVmmError));
}

class TinyGuestOnNbd : public TinyGuest {
 protected:
  void SetUp() override {
    TinyGuest::SetUp();
    if (IsSkipped()) return;
    if (!kiln::testing::nbdkit_available()) GTEST_SKIP() << "nbdkit is not installed (Debian package nbdkit)";
    char tmpl[] = "/tmp/kiln-tiny-nbd-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = kiln::testing::NbdkitServer::start(dir_, {"file", disk_});
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(*s);
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) kiln::testing::run({"/bin/rm", "-rf", dir_}, "/dev/null");
    TinyGuest::TearDown();
  }
  std::string dir_;
  std::unique_ptr<kiln::testing::NbdkitServer> server_;
};

TEST_F(TinyGuestOnNbd, KilnVmmBinaryUnderSeccompDrivesAnNbdRootDrive) {
  // The binary, so the per-thread filters are on: the drive connects on the thread that builds
  // the VM (kApi) and is served by the event loop (kVmm).
  std::ofstream(dir_ + "/vm.json") << R"({"boot-source": {"kernel_image_path": ")" + kernel_ +
                                          R"(", "boot_args": "console=ttyS0"},
    "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
    "drives": [{"drive_id": "rootfs", "path_on_host": ")" + server_->uri() +
                                          R"(", "is_root_device": true, "is_read_only": true}]})";
  int code = kiln::testing::run({kiln::testing::build_path("vmm/kiln-vmm"), "--no-api", "--config-file", dir_ + "/vm.json"},
                                dir_ + "/out", 120000);
  std::string out = kiln::testing::slurp(dir_ + "/out");
  EXPECT_NE(out.find("kiln-tiny-guest: block read ok"), std::string::npos) << out;
  EXPECT_NE(out.find("kiln-tiny-guest: virtio-mmio handshake ok"), std::string::npos) << out;
  EXPECT_EQ(code, 0) << out;
}

TEST_F(TinyGuestOnNbd, SnapshotKeepsTheUriAndRestoreReconnects) {
  UniqueFd out(::memfd_create("serial", MFD_CLOEXEC));
  config::VmConfig c = make_config(1, "spin");
  c.drives[0].path_on_host = server_->uri();
  auto vmm = Vmm::build_for_boot(c, Vmm::Options{out.get()});
  ASSERT_TRUE(vmm.ok()) << vmm.error().message;
  EXPECT_EQ((*vmm)->metrics()["block_rootfs"]["nbd_disconnected"].get<uint64_t>(), 0u);
  ASSERT_TRUE((*vmm)->start().ok());
  for (int i = 0; i < 2000 && read_all(out.get()).find("serial ok") == std::string::npos; ++i) ::usleep(1000);
  ASSERT_TRUE((*vmm)->pause().ok());
  config::SnapshotCreate sc{config::SnapshotType::kFull, dir_ + "/state", dir_ + "/mem"};
  ASSERT_TRUE((*vmm)->create_snapshot(sc).ok());
  (*vmm)->stop(VmExit::kGuestShutdown);
  (*vmm)->wait();
  vmm->reset();

  config::SnapshotLoad load;
  load.snapshot_path = dir_ + "/state";
  load.mem_backend.backend_path = dir_ + "/mem";
  auto restored = Vmm::build_from_snapshot(load, Vmm::Options{out.get()});
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ((*restored)->config().drives[0].path_on_host, server_->uri());
  EXPECT_EQ((*restored)->metrics()["block_rootfs"]["nbd_disconnected"].get<uint64_t>(), 0u);
  restored->reset();

  server_->kill();  // nothing listens there any more: the restore fails and says why
  auto failed = Vmm::build_from_snapshot(load, Vmm::Options{out.get()});
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("drive rootfs"), std::string::npos) << failed.error().message;
}

TEST_F(TinyGuestOnNbd, SnapshotThatCannotDrainFailsAndTheVmRunsOn) {
  server_.reset();
  auto slow = kiln::testing::NbdkitServer::start(dir_, {"--filter=delay", "file", disk_, "rdelay=60"});
  ASSERT_TRUE(slow.ok()) << slow.error().message;
  server_ = std::move(*slow);
  UniqueFd out(::memfd_create("serial", MFD_CLOEXEC));
  config::VmConfig c = make_config(1);
  c.drives[0].path_on_host = server_->uri();
  auto vmm = Vmm::build_for_boot(c, Vmm::Options{out.get()});
  ASSERT_TRUE(vmm.ok()) << vmm.error().message;
  ASSERT_TRUE((*vmm)->start().ok());
  // The guest's read of sector 0 waits at the server.
  auto in_flight = [&] { return (*vmm)->metrics()["block_rootfs"]["in_flight"].get<uint64_t>(); };
  for (int i = 0; i < 20000 && in_flight() == 0; ++i) ::usleep(1000);
  ASSERT_EQ(in_flight(), 1u) << read_all(out.get());
  ASSERT_TRUE((*vmm)->pause().ok());
  config::SnapshotCreate sc{config::SnapshotType::kFull, dir_ + "/state", dir_ + "/mem"};
  auto st = (*vmm)->create_snapshot(sc);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("drive rootfs did not drain"), std::string::npos) << st.error().message;
  EXPECT_FALSE((*vmm)->paused());
  EXPECT_TRUE((*vmm)->running());
  EXPECT_NE(::access((dir_ + "/state").c_str(), F_OK), 0);
  server_->kill();  // the read fails (IOERR): the guest reports FAIL and resets
  EXPECT_EQ((*vmm)->wait(), static_cast<int>(VmExit::kGuestShutdown));
  EXPECT_NE(read_all(out.get()).find("kiln-tiny-guest: FAIL"), std::string::npos);
}

TEST(VmmBuild, BadConfigsAreErrors) {
  config::VmConfig c;
  EXPECT_FALSE(Vmm::build_for_boot(c, {}).ok());  // no boot source
  c.boot_source = config::BootSource{"/nonexistent/vmlinux", std::nullopt, std::nullopt};
  auto r = Vmm::build_for_boot(c, {});
  ASSERT_FALSE(r.ok());
}

}  // namespace
}  // namespace kiln::vmm
