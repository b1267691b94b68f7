// The --config-file shape (Firecracker's), GET /vm/config round trip, file loading limits
// and the filesystem checks made at InstanceStart.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "vmm/config/vm_config.h"

namespace kiln::vmm::config {
namespace {

using nlohmann::json;

// Firecracker's getting-started example, as GET /vm/config would print it (nulls included).
constexpr std::string_view kFirecrackerExample = R"({
  "boot-source": {
    "kernel_image_path": "vmlinux.bin",
    "boot_args": "console=ttyS0 reboot=k panic=1 pci=off",
    "initrd_path": null
  },
  "drives": [
    {
      "drive_id": "rootfs",
      "partuuid": null,
      "is_root_device": true,
      "cache_type": "Unsafe",
      "is_read_only": false,
      "path_on_host": "bionic.rootfs.ext4",
      "io_engine": "Sync",
      "rate_limiter": null,
      "socket": null
    }
  ],
  "machine-config": {
    "vcpu_count": 2,
    "mem_size_mib": 1024,
    "smt": false,
    "track_dirty_pages": false,
    "huge_pages": "None"
  },
  "cpu-config": null,
  "balloon": null,
  "network-interfaces": [],
  "vsock": null,
  "logger": null,
  "metrics": null,
  "mmds-config": null,
  "entropy": null
})";

TEST(ConfigFile, ParsesFirecrackerExample) {
  auto vm = parse_vm_config_text(kFirecrackerExample);
  ASSERT_TRUE(vm.ok()) << vm.error().message;
  ASSERT_TRUE(vm->boot_source.has_value());
  EXPECT_EQ(vm->boot_source->kernel_image_path, "vmlinux.bin");
  EXPECT_EQ(vm->boot_source->boot_args.value(), "console=ttyS0 reboot=k panic=1 pci=off");
  EXPECT_EQ(vm->machine_config.vcpu_count, 2u);
  EXPECT_EQ(vm->machine_config.mem_size_mib, 1024u);
  ASSERT_EQ(vm->drives.size(), 1u);
  EXPECT_EQ(vm->drives[0].drive_id, "rootfs");
  EXPECT_FALSE(vm->vsock.has_value());
}

TEST(ConfigFile, KilnConfigWithVsockEntropyAndTwoDrives) {
  auto vm = parse_vm_config_text(R"({
    "boot-source": {"kernel_image_path": "/k", "initrd_path": "/initrd.cpio"},
    "drives": [
      {"drive_id": "data", "path_on_host": "/data.img", "is_root_device": false, "is_read_only": false},
      {"drive_id": "image", "path_on_host": "/image.ext4", "is_root_device": true, "is_read_only": true}
    ],
    "vsock": {"guest_cid": 3, "uds_path": "/run/v.sock"},
    "entropy": {},
    "serial": {"serial_out_path": "/tmp/console.log"},
    "logger": {"level": "Info", "log_path": "/tmp/vmm.log"},
    "metrics": {"metrics_path": "/tmp/metrics.json"}
  })");
  ASSERT_TRUE(vm.ok()) << vm.error().message;
  ASSERT_EQ(vm->drives.size(), 2u);
  EXPECT_EQ(vm->drives[0].drive_id, "image");  // root first
  EXPECT_EQ(vm->machine_config, MachineConfig{});  // defaults when omitted
  EXPECT_EQ(vm->vsock->guest_cid, 3u);
  EXPECT_TRUE(vm->entropy.has_value());
  EXPECT_EQ(vm->serial->serial_out_path.value(), "/tmp/console.log");
  EXPECT_EQ(vm->logger->level.value(), "Info");
  EXPECT_EQ(vm->metrics->metrics_path, "/tmp/metrics.json");

  // GET /vm/config output parses back to the same configuration.
  const json out = to_json(*vm);
  EXPECT_TRUE(out.contains("boot-source"));
  EXPECT_TRUE(out.contains("machine-config"));
  EXPECT_TRUE(out["network-interfaces"].is_array());
  auto again = parse_vm_config(out);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again.value(), vm.value());
}

TEST(ConfigFile, ErrorsNameTheField) {
  auto e = [](std::string_view text) {
    auto r = parse_vm_config_text(text);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_EQ(e(R"({"drives": []})"), "boot-source: missing required field");
  EXPECT_EQ(e(R"({"boot-source": {"kernel_image_path": "/k"}, "machine-config": {"vcpu_count": 64, "mem_size_mib": 1}})"),
            "machine-config.vcpu_count: must be between 1 and 32");
  EXPECT_EQ(e(R"({"boot-source": {"kernel_image_path": "/k"},
                  "drives": [{"drive_id": "a", "path_on_host": "/a", "is_root_device": false},
                             {"drive_id": "b", "is_root_device": false}]})"),
            "drives[1].path_on_host: missing required field");
  EXPECT_EQ(e(R"({"boot-source": {"kernel_image_path": "/k"}, "drives": {}})"),
            "drives: invalid type: expected an array, got object");
  EXPECT_NE(e(R"({"boot-source": {"kernel_image_path": "/k"},
                  "drives": [{"drive_id": "a", "path_on_host": "/a", "is_root_device": true},
                             {"drive_id": "b", "path_on_host": "/b", "is_root_device": true}]})")
                .find("A root block device already exists!"),
            std::string::npos);
  EXPECT_NE(e(R"({"boot-source": {"kernel_image_path": "/k"},
                  "drives": [{"drive_id": "a", "path_on_host": "/a", "is_root_device": false},
                             {"drive_id": "a", "path_on_host": "/b", "is_root_device": false}]})")
                .find("duplicate"),
            std::string::npos);
  EXPECT_EQ(e(R"({"boot-source": {"kernel_image_path": "/k"}, "vsock": {"guest_cid": 1, "uds_path": "/v"}})")
                .rfind("vsock.guest_cid", 0),
            0u);
  EXPECT_EQ(e(R"({"boot-source": {"kernel_image_path": "/k"}, "bootsource": {}})").rfind("bootsource: unknown field", 0),
            0u);
  EXPECT_NE(e(R"({"boot-source": {"kernel_image_path": "/k"},
                  "network-interfaces": [{"iface_id": "eth0"}]})")
                .find("network-interfaces"),
            std::string::npos);
  EXPECT_NE(e(R"({"boot-source": {"kernel_image_path": "/k"}, "balloon": {"amount_mib": 1, "deflate_on_oom": true}})")
                .find("balloon"),
            std::string::npos);
  EXPECT_NE(e("[]").find("expected an object"), std::string::npos);
  EXPECT_NE(e("{").find("deserializing"), std::string::npos);
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-config-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string write(const std::string& name, std::string_view content, mode_t mode = 0644) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p) << content;
    ::chmod(p.c_str(), mode);
    return p;
  }
  std::string dir_;
};

using LoadFile = TempDir;

TEST_F(LoadFile, ReadsAndParses) {
  auto vm = load_vm_config_file(write("vm.json", kFirecrackerExample));
  ASSERT_TRUE(vm.ok()) << vm.error().message;
  EXPECT_EQ(vm->machine_config.vcpu_count, 2u);
}

TEST_F(LoadFile, ErrorsNameTheFile) {
  auto missing = load_vm_config_file(dir_ + "/nope.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("nope.json"), std::string::npos);
  EXPECT_EQ(missing.error().sys_errno, ENOENT);

  auto bad = load_vm_config_file(write("bad.json", R"({"boot-source": {}})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("bad.json: boot-source.kernel_image_path: missing required field"),
            std::string::npos)
      << bad.error().message;

  EXPECT_FALSE(load_vm_config_file(dir_).ok());  // a directory
  EXPECT_FALSE(load_vm_config_file(write("big.json", std::string(kMaxConfigFileBytes + 1, ' '))).ok());
}

using StartChecks = TempDir;

TEST_F(StartChecks, NeedsBootSourceAndReadableFiles) {
  VmConfig vm;
  EXPECT_EQ(validate_for_start(vm).error().message, "Cannot start microvm without kernel configuration.");
  vm.boot_source = BootSource{dir_ + "/vmlinux", std::nullopt, std::nullopt};
  auto missing = validate_for_start(vm);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("kernel_image_path"), std::string::npos);
  EXPECT_EQ(missing.error().sys_errno, ENOENT);

  write("vmlinux", "ELF");
  EXPECT_TRUE(validate_for_start(vm).ok());

  vm.boot_source->initrd_path = dir_ + "/initrd";
  EXPECT_FALSE(validate_for_start(vm).ok());
  write("initrd", "cpio");
  EXPECT_TRUE(validate_for_start(vm).ok());

  vm.boot_source->kernel_image_path = dir_;  // a directory is not a kernel
  EXPECT_FALSE(validate_for_start(vm).ok());
  vm.boot_source->kernel_image_path = dir_ + "/vmlinux";

  vm.drives.push_back(Drive{"rootfs", dir_ + "/rootfs.ext4", true, true, {}, CacheType::kUnsafe, {}});
  auto no_drive = validate_for_start(vm);
  ASSERT_FALSE(no_drive.ok());
  EXPECT_NE(no_drive.error().message.find("rootfs"), std::string::npos);
  write("rootfs.ext4", "img");
  EXPECT_TRUE(validate_for_start(vm).ok());

  // Two roots (possible only by editing the struct directly) are refused.
  vm.drives.push_back(Drive{"other", dir_ + "/rootfs.ext4", true, true, {}, CacheType::kUnsafe, {}});
  EXPECT_EQ(validate_for_start(vm).error().message, "A root block device already exists!");
}

// A drive attached writable must be writable by the VMM. Root writes any file whatever its
// mode, so as root the checks run in a child that has become nobody (uid/gid 65534).
TEST_F(StartChecks, WritableDriveMustBeWritable) {
  VmConfig vm;
  vm.boot_source = BootSource{write("vmlinux", "ELF"), std::nullopt, std::nullopt};
  vm.drives.push_back(Drive{"data", write("data.img", "x", 0444), false, false, {}, CacheType::kUnsafe, {}});
  auto checks = [&vm] {
    bool writable_refused = !validate_for_start(vm).ok();
    vm.drives[0].is_read_only = true;
    bool read_only_accepted = validate_for_start(vm).ok();
    return writable_refused && read_only_accepted;
  };
  if (::geteuid() != 0) {
    EXPECT_TRUE(checks());
    return;
  }
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) {
      ::_exit(2);
    }
    ::_exit(checks() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: a check failed as nobody; 2: could not become nobody";
}

}  // namespace
}  // namespace kiln::vmm::config
