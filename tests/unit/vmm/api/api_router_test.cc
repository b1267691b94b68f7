// Every route of the API router with good and hostile bodies, wrong states, and the
// InstanceStart / snapshot flows, over a fake controller (no sockets).
#include "vmm/api/api_router.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <string>

#include "tests/unit/vmm/api/fake_controller.h"
#include "vmm/logging/logger.h"

namespace kiln::vmm::api {
namespace {

using nlohmann::json;

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    logging::Logger::instance().set_level(logging::LogLevel::kOff);  // keep test output readable
    char tmpl[] = "/tmp/kiln-router-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    kernel_ = dir_ + "/vmlinux";
    rootfs_ = dir_ + "/rootfs.ext4";
    std::ofstream(kernel_) << "ELF";
    std::ofstream(rootfs_) << "ext4";
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  ApiResponse call(std::string_view method, std::string_view path, std::string_view body = "") {
    return router_.handle(method, path, body);
  }
  // The fault_message of an error response ("" if the body is not one).
  static std::string fault(const ApiResponse& r) {
    auto j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("fault_message")) return "";
    return j["fault_message"].get<std::string>();
  }
  static json body_json(const ApiResponse& r) { return json::parse(r.body); }

  void expect_fault(const ApiResponse& r, std::string_view contains) {
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(fault(r).find(contains), std::string::npos) << "fault: " << fault(r) << " wanted: " << contains;
  }

  void configure_bootable() {
    ASSERT_EQ(call("PUT", "/boot-source", R"({"kernel_image_path": ")" + kernel_ + R"(", "boot_args": "console=ttyS0"})")
                  .status,
              204);
    ASSERT_EQ(call("PUT", "/drives/rootfs",
                   R"({"drive_id": "rootfs", "path_on_host": ")" + rootfs_ + R"(", "is_root_device": true, "is_read_only": true})")
                  .status,
              204);
  }
  void start() {
    configure_bootable();
    ASSERT_EQ(call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  }

  std::string dir_, kernel_, rootfs_;
  FakeController ctl_;
  logging::MetricsRegistry metrics_;
  ApiRouter router_{ctl_, RouterOptions{"test-vm", &metrics_}};
};

TEST_F(RouterTest, GetInstanceInfo) {
  auto r = call("GET", "/");
  ASSERT_EQ(r.status, 200);
  auto j = body_json(r);
  EXPECT_EQ(j["id"], "test-vm");
  EXPECT_EQ(j["state"], "Not started");
  EXPECT_EQ(j["app_name"], "kiln");
  EXPECT_EQ(j["vmm_version"], std::string(vmm_version()));
  EXPECT_FALSE(std::string(vmm_version()).empty());
  EXPECT_EQ(call("GET", "").status, 200);
  EXPECT_EQ(call("GET", "/?x=1").status, 200);
}

TEST_F(RouterTest, GenericRequestErrors) {
  expect_fault(call("GET", "/", "{}"), "GET request cannot have a body.");
  expect_fault(call("PUT", "/machine-config", ""), "Empty PUT request.");
  expect_fault(call("PATCH", "/vm", ""), "Empty PATCH request.");
  expect_fault(call("GET", "/nope"), "Invalid request method and/or path: GET /nope.");
  expect_fault(call("POST", "/actions", "{}"), "Invalid request method and/or path: POST /actions.");
  expect_fault(call("DELETE", "/drives/rootfs"), "Invalid request method");
  expect_fault(call("PUT", "/", "{}"), "Invalid request method");
  expect_fault(call("PATCH", "/boot-source", "{}"), "Invalid request method");
  expect_fault(call("PUT", "/snapshot", "{}"), "Invalid request method");
  expect_fault(call("PUT", "/snapshot/create/x", "{}"), "Invalid request method");
  expect_fault(call("GET", "/vm"), "Invalid request method");
  expect_fault(call("get", "/"), "Invalid request method");
  // An unknown route is reported as such even with a malformed body.
  expect_fault(call("PUT", "/nope", "{{{"), "Invalid request method");
}

TEST_F(RouterTest, MalformedJsonOnEveryPutRoute) {
  for (std::string_view path : {"/actions", "/boot-source", "/machine-config", "/drives/rootfs", "/vsock", "/entropy",
                                "/serial", "/logger", "/metrics", "/snapshot/create", "/snapshot/load"}) {
    expect_fault(call("PUT", path, "{\"a\": "), "An error occurred when deserializing the json body of a request");
    expect_fault(call("PUT", path, "[]"), "expected an object");
    expect_fault(call("PUT", path, "null"), "expected an object");
  }
  expect_fault(call("PATCH", "/machine-config", "{,}"), "deserializing");
  expect_fault(call("PATCH", "/vm", "\"Paused\""), "expected an object");
}

TEST_F(RouterTest, MachineConfigGetPutPatch) {
  auto def = body_json(call("GET", "/machine-config"));
  EXPECT_EQ(def["vcpu_count"], 1);
  EXPECT_EQ(def["mem_size_mib"], 128);
  EXPECT_EQ(call("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 256})").status, 204);
  EXPECT_EQ(body_json(call("GET", "/machine-config"))["vcpu_count"], 2);
  EXPECT_EQ(call("PATCH", "/machine-config", R"({"mem_size_mib": 512})").status, 204);
  auto after = body_json(call("GET", "/machine-config"));
  EXPECT_EQ(after["vcpu_count"], 2);
  EXPECT_EQ(after["mem_size_mib"], 512);

  expect_fault(call("PUT", "/machine-config", R"({"vcpu_count": 33, "mem_size_mib": 256})"),
               "vcpu_count: must be between 1 and 32");
  expect_fault(call("PUT", "/machine-config", R"({"vcpu_count": "2", "mem_size_mib": 256})"), "vcpu_count: invalid type");
  expect_fault(call("PUT", "/machine-config", R"({"mem_size_mib": 256})"), "vcpu_count: missing required field");
  expect_fault(call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 256, "x": 1})"), "x: unknown field");
  expect_fault(call("PATCH", "/machine-config", R"({"vcpu_count": 0})"), "vcpu_count");
  // A refused update changes nothing.
  EXPECT_EQ(body_json(call("GET", "/machine-config"))["mem_size_mib"], 512);
}

TEST_F(RouterTest, BootSource) {
  const std::string initrd = dir_ + "/initrd";
  std::ofstream(initrd) << "cpio";
  EXPECT_EQ(call("PUT", "/boot-source", R"({"kernel_image_path": ")" + kernel_ + R"(", "initrd_path": ")" + initrd +
                                            R"(", "boot_args": "a=b"})")
                .status,
            204);
  auto vm = body_json(call("GET", "/vm/config"));
  EXPECT_EQ(vm["boot-source"]["kernel_image_path"], kernel_);
  EXPECT_EQ(vm["boot-source"]["initrd_path"], initrd);
  expect_fault(call("PUT", "/boot-source", R"({"boot_args": "a"})"), "kernel_image_path: missing required field");
  expect_fault(call("PUT", "/boot-source", R"({"kernel_image_path": 7})"), "kernel_image_path: invalid type");
  expect_fault(call("PUT", "/boot-source", R"({"kernel_image_path": "/k", "x": 1})"), "unknown field");
}

TEST_F(RouterTest, Drives) {
  const std::string good =
      R"({"drive_id": "rootfs", "path_on_host": ")" + rootfs_ + R"(", "is_root_device": true, "is_read_only": true})";
  const std::string data = dir_ + "/data.img";
  std::ofstream(data) << "data";
  EXPECT_EQ(call("PUT", "/drives/rootfs", good).status, 204);
  EXPECT_EQ(call("PUT", "/drives/rootfs/", good).status, 204);  // trailing slash, like Firecracker
  expect_fault(call("PUT", "/drives/other", good), "The id from the path does not match the id from the body!");
  expect_fault(call("PUT", "/drives/", good), "The ID cannot be empty.");
  expect_fault(call("PUT", "/drives", good), "The ID cannot be empty.");
  expect_fault(call("PUT", "/drives/a.b", good), "alphanumeric characters and underscores");
  expect_fault(call("PUT", "/drives/%2e%2e", good), "alphanumeric characters and underscores");
  expect_fault(call("PUT", "/drives/a-b", good), "alphanumeric characters and underscores");
  expect_fault(call("PUT", "/drives/../etc", good), "Invalid request method");  // three segments
  expect_fault(call("PUT", "/drives/data",
                    R"({"drive_id": "data", "path_on_host": ")" + data + R"(", "is_root_device": true, "is_read_only": false})"),
               "A root block device already exists!");
  expect_fault(call("PUT", "/drives/data", R"({"drive_id": "data", "is_root_device": false})"),
               "path_on_host: missing required field");
  expect_fault(call("PUT", "/drives/data", R"({"drive_id": "data", "path_on_host": "/d", "is_root_device": 0})"),
               "is_root_device: invalid type");
  expect_fault(call("PUT", "/drives/data",
                    R"({"drive_id": "data", "path_on_host": "/d", "is_root_device": false, "io_engine": "Async"})"),
               "io_engine");
  EXPECT_EQ(call("PUT", "/drives/data", R"({"drive_id": "data", "path_on_host": ")" + data + R"(", "is_root_device": false})")
                .status,
            204);
  auto vm = body_json(call("GET", "/vm/config"));
  ASSERT_EQ(vm["drives"].size(), 2u);
  EXPECT_EQ(vm["drives"][0]["drive_id"], "rootfs");
  EXPECT_EQ(vm["drives"][1]["drive_id"], "data");
}

TEST_F(RouterTest, VsockEntropySerial) {
  EXPECT_EQ(call("PUT", "/vsock", R"({"guest_cid": 3, "uds_path": "/tmp/v.sock"})").status, 204);
  expect_fault(call("PUT", "/vsock", R"({"guest_cid": 2, "uds_path": "/tmp/v.sock"})"), "guest_cid");
  expect_fault(call("PUT", "/vsock", R"({"guest_cid": 3})"), "uds_path: missing required field");
  EXPECT_EQ(call("PUT", "/entropy", "{}").status, 204);
  expect_fault(call("PUT", "/entropy", R"({"rate_limiter": {"bandwidth": {"size": 1, "refill_time": 1}}})"),
               "rate_limiter");
  EXPECT_EQ(call("PUT", "/serial", R"({"serial_out_path": "/tmp/console"})").status, 204);
  auto vm = body_json(call("GET", "/vm/config"));
  EXPECT_EQ(vm["vsock"]["guest_cid"], 3);
  EXPECT_TRUE(vm["entropy"].is_object());
  EXPECT_EQ(vm["serial"]["serial_out_path"], "/tmp/console");
}

TEST_F(RouterTest, LoggerAndMetricsGoToController) {
  EXPECT_EQ(call("PUT", "/logger", R"({"level": "Info", "log_path": "/tmp/l"})").status, 204);
  EXPECT_EQ(ctl_.count("configure_logger"), 1u);
  expect_fault(call("PUT", "/logger", R"({"level": "Chatty"})"), "level");
  EXPECT_EQ(call("PUT", "/metrics", R"({"metrics_path": "/tmp/m"})").status, 204);
  EXPECT_EQ(ctl_.count("configure_metrics"), 1u);
  expect_fault(call("PUT", "/metrics", R"({"metrics_path": "/tmp/m2"})"), "Reinitialization of metrics not allowed.");
  // Neither is boot-specific: snapshot load is still allowed.
  EXPECT_FALSE(router_.boot_resources_configured());
}

TEST_F(RouterTest, ActionsBody) {
  expect_fault(call("PUT", "/actions", "{}"), "action_type: missing required field");
  expect_fault(call("PUT", "/actions", R"({"action_type": "Reboot"})"), "action_type: must be one of");
  expect_fault(call("PUT", "/actions", R"({"action_type": 1})"), "action_type: invalid type");
  expect_fault(call("PUT", "/actions", R"({"action_type": "InstanceStart", "payload": 1})"), "payload: unknown field");
  EXPECT_TRUE(ctl_.calls.empty());
}

TEST_F(RouterTest, InstanceStartNeedsKernel) {
  expect_fault(call("PUT", "/actions", R"({"action_type": "InstanceStart"})"),
               "Cannot start microvm without kernel configuration.");
  // A kernel that is gone by InstanceStart is still caught there.
  const std::string doomed = dir_ + "/missing";
  std::ofstream(doomed) << "ELF";
  ASSERT_EQ(call("PUT", "/boot-source", R"({"kernel_image_path": ")" + doomed + R"("})").status, 204);
  ASSERT_EQ(::unlink(doomed.c_str()), 0);
  expect_fault(call("PUT", "/actions", R"({"action_type": "InstanceStart"})"), "missing");
  EXPECT_EQ(ctl_.count("start"), 0u);
  EXPECT_EQ(body_json(call("GET", "/"))["state"], "Not started");
}

TEST_F(RouterTest, InstanceStartThenPreBootRequestsAreRefused) {
  start();
  ASSERT_EQ(ctl_.count("start"), 1u);
  EXPECT_EQ(ctl_.started_with.boot_source->kernel_image_path, kernel_);
  ASSERT_EQ(ctl_.started_with.drives.size(), 1u);
  EXPECT_EQ(body_json(call("GET", "/"))["state"], "Running");

  const std::string after = "The requested operation is not supported after starting the microVM.";
  expect_fault(call("PUT", "/actions", R"({"action_type": "InstanceStart"})"), after);
  expect_fault(call("PUT", "/boot-source", R"({"kernel_image_path": "/k"})"), after);
  expect_fault(call("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 256})"), after);
  expect_fault(call("PATCH", "/machine-config", R"({"vcpu_count": 2})"), after);
  expect_fault(call("PUT", "/drives/x", R"({"drive_id": "x", "path_on_host": "/x", "is_root_device": false})"), after);
  expect_fault(call("PUT", "/vsock", R"({"guest_cid": 3, "uds_path": "/v"})"), after);
  expect_fault(call("PUT", "/entropy", "{}"), after);
  expect_fault(call("PUT", "/logger", "{}"), after);
  expect_fault(call("PUT", "/snapshot/load", R"({"snapshot_path": "/s", "mem_file_path": "/m"})"), after);
  EXPECT_EQ(ctl_.count("start"), 1u);
  // Reads still work.
  EXPECT_EQ(call("GET", "/machine-config").status, 200);
  EXPECT_EQ(call("GET", "/vm/config").status, 200);
}

TEST_F(RouterTest, FailedStartStaysNotStartedAndCanRetry) {
  configure_bootable();
  ctl_.fail_start = true;
  expect_fault(call("PUT", "/actions", R"({"action_type": "InstanceStart"})"), "Failed to start microVM: injected failure");
  EXPECT_EQ(body_json(call("GET", "/"))["state"], "Not started");
  ctl_.fail_start = false;
  EXPECT_EQ(call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  EXPECT_EQ(body_json(call("GET", "/"))["state"], "Running");
}

TEST_F(RouterTest, CtrlAltDelAndFlushMetrics) {
  const std::string before = "The requested operation is not supported before starting the microVM.";
  expect_fault(call("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})"), before);
  EXPECT_EQ(call("PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  EXPECT_EQ(ctl_.count("flush_metrics"), 1u);
  ctl_.fail_flush = true;
  expect_fault(call("PUT", "/actions", R"({"action_type": "FlushMetrics"})"), "injected failure");
  start();
  EXPECT_EQ(call("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ctl_.count("ctrl_alt_del"), 1u);
}

TEST_F(RouterTest, PauseResumeAndSnapshotCreate) {
  const std::string snap = R"({"snapshot_type": "Full", "snapshot_path": "/s", "mem_file_path": "/m"})";
  expect_fault(call("PATCH", "/vm", R"({"state": "Paused"})"), "before starting the microVM");
  expect_fault(call("PUT", "/snapshot/create", snap), "before starting the microVM");
  start();
  expect_fault(call("PUT", "/snapshot/create", snap), "must be paused");
  expect_fault(call("PATCH", "/vm", R"({"state": "Stopped"})"), "state: must be");
  expect_fault(call("PATCH", "/vm", R"({"state": "Paused", "x": 1})"), "unknown field");

  ctl_.fail_pause = true;
  expect_fault(call("PATCH", "/vm", R"({"state": "Paused"})"), "injected failure");
  EXPECT_EQ(body_json(call("GET", "/"))["state"], "Running");
  ctl_.fail_pause = false;

  EXPECT_EQ(call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  EXPECT_EQ(body_json(call("GET", "/"))["state"], "Paused");
  EXPECT_EQ(call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);  // idempotent
  EXPECT_EQ(ctl_.count("pause"), 2u);  // the failed one and the real one, not the no-op

  expect_fault(call("PUT", "/snapshot/create", R"({"snapshot_path": "/s"})"), "mem_file_path: missing required field");
  EXPECT_EQ(call("PUT", "/snapshot/create", snap).status, 204);
  EXPECT_EQ(ctl_.snapshot_created.snapshot_path, "/s");
  EXPECT_EQ(ctl_.snapshot_created.mem_file_path, "/m");
  ctl_.fail_snapshot = true;
  expect_fault(call("PUT", "/snapshot/create", snap), "Create snapshot error: injected failure");

  EXPECT_EQ(call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  EXPECT_EQ(body_json(call("GET", "/"))["state"], "Running");
  EXPECT_EQ(call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  EXPECT_EQ(ctl_.count("resume"), 1u);
}

TEST_F(RouterTest, SnapshotLoadOnFreshVmm) {
  ctl_.restored.machine_config.vcpu_count = 2;
  ctl_.restored.drives.push_back(config::Drive{"rootfs", "/img", true, true, {}, config::CacheType::kUnsafe, {}});
  ASSERT_EQ(call("PUT", "/logger", R"({"level": "Info"})").status, 204);
  EXPECT_EQ(call("PUT", "/snapshot/load", R"({"snapshot_path": "/s", "mem_backend": {"backend_type": "File",
      "backend_path": "/m"}, "resume_vm": false})").status,
            204);
  EXPECT_EQ(ctl_.snapshot_loaded.snapshot_path, "/s");
  EXPECT_EQ(body_json(call("GET", "/"))["state"], "Paused");
  auto vm = body_json(call("GET", "/vm/config"));
  EXPECT_EQ(vm["machine-config"]["vcpu_count"], 2);
  EXPECT_EQ(vm["drives"][0]["drive_id"], "rootfs");
  EXPECT_TRUE(vm["logger"].is_object());  // kept from this process
  expect_fault(call("PUT", "/actions", R"({"action_type": "InstanceStart"})"), "after starting the microVM");
  EXPECT_EQ(call("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
}

TEST_F(RouterTest, SnapshotLoadWithResume) {
  EXPECT_EQ(call("PUT", "/snapshot/load", R"({"snapshot_path": "/s", "mem_file_path": "/m", "resume_vm": true})").status,
            204);
  EXPECT_EQ(body_json(call("GET", "/"))["state"], "Running");
}

TEST_F(RouterTest, SnapshotLoadRefusedAfterConfigureOrOnFailure) {
  ctl_.fail_load = true;
  expect_fault(call("PUT", "/snapshot/load", R"({"snapshot_path": "/s", "mem_file_path": "/m"})"),
               "Load snapshot error: bad magic");
  EXPECT_EQ(body_json(call("GET", "/"))["state"], "Not started");
  expect_fault(call("PUT", "/snapshot/load", R"({"snapshot_path": "/s"})"), "mem_backend");
  ASSERT_EQ(call("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})").status, 204);
  ctl_.fail_load = false;
  expect_fault(call("PUT", "/snapshot/load", R"({"snapshot_path": "/s", "mem_file_path": "/m"})"),
               "Loading a microVM snapshot not allowed after configuring boot-specific resources.");
}

TEST_F(RouterTest, MetricsAndVersion) {
  auto m = call("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(body_json(m)["block_rootfs"]["read_count"], 7);
  auto v = call("GET", "/version");
  ASSERT_EQ(v.status, 200);
  EXPECT_EQ(body_json(v)["firecracker_version"], std::string(vmm_version()));
}

TEST_F(RouterTest, CountsRequestsAndErrors) {
  call("GET", "/");
  call("GET", "/nope");
  EXPECT_EQ(metrics_.value("api_server.requests"), 2u);
  EXPECT_EQ(metrics_.value("api_server.errors"), 1u);
}

TEST_F(RouterTest, ConfigFilePath) {
  config::VmConfig vm;
  vm.boot_source = config::BootSource{kernel_, std::nullopt, std::nullopt};
  ASSERT_TRUE(router_.set_config(vm).ok());
  ASSERT_TRUE(router_.start_instance().ok());
  EXPECT_EQ(ctl_.count("start"), 1u);
  EXPECT_EQ(router_.state(), InstanceState::kRunning);
  EXPECT_EQ(router_.config().boot_source->kernel_image_path, kernel_);
  EXPECT_FALSE(router_.set_config(vm).ok());
  EXPECT_FALSE(router_.start_instance().ok());
}

TEST_F(RouterTest, GarbageNeverCrashesAndAlwaysAnswersJson) {
  std::mt19937 rng(1234);  // deterministic
  const std::vector<std::string> methods = {"GET", "PUT", "PATCH", "POST", ""};
  const std::vector<std::string> paths = {"/", "/actions", "/boot-source", "/machine-config", "/drives/rootfs",
                                          "/drives/", "/vsock", "/vm", "/vm/config", "/snapshot/create",
                                          "/snapshot/load", "/metrics", "//", "/drives/\xff", "/\0x",
                                          "/network-interfaces/eth0", "/network-interfaces/"};
  const std::vector<std::string> seeds = {
      R"({"action_type": "InstanceStart"})", R"({"vcpu_count": 2, "mem_size_mib": 256})",
      R"({"drive_id": "rootfs", "path_on_host": "/img", "is_root_device": true})", R"({"state": "Paused"})",
      R"({"snapshot_path": "/s", "mem_file_path": "/m"})",
      R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02",
          "rx_rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}}})"};
  for (int i = 0; i < 3000; ++i) {
    std::string body = seeds[rng() % seeds.size()];
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < mutations && !body.empty(); ++k) {
      const size_t at = rng() % body.size();
      switch (rng() % 3) {
        case 0: body[at] = static_cast<char>(rng() % 256); break;
        case 1: body.erase(at, 1); break;
        default: body.insert(at, 1, static_cast<char>(rng() % 256)); break;
      }
    }
    auto r = call(methods[rng() % methods.size()], paths[rng() % paths.size()], body);
    ASSERT_TRUE(r.status == 200 || r.status == 204 || r.status == 400) << r.status;
    if (r.status == 400) {
      auto j = json::parse(r.body, nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << r.body;
      ASSERT_TRUE(j.contains("fault_message"));
    }
  }
}

// ---------------------------------------------------------------- PUT-time file checks

TEST_F(RouterTest, BootSourceFilesAreCheckedAtPut) {
  const std::string missing = dir_ + "/nope";
  expect_fault(call("PUT", "/boot-source", R"({"kernel_image_path": ")" + missing + R"("})"),
               "kernel_image_path: " + missing + ": No such file or directory");
  expect_fault(call("PUT", "/boot-source", R"({"kernel_image_path": ")" + kernel_ + R"(", "initrd_path": ")" + missing +
                                               R"("})"),
               "initrd_path: " + missing + ": No such file or directory");
  expect_fault(call("PUT", "/boot-source", R"({"kernel_image_path": ")" + dir_ + R"("})"), "is a directory");
  // Nothing was stored, and nothing counts as configured (snapshot load stays possible).
  EXPECT_TRUE(body_json(call("GET", "/vm/config"))["boot-source"].is_null());
  EXPECT_FALSE(router_.boot_resources_configured());
  // Body errors still come first.
  expect_fault(call("PUT", "/boot-source", R"({"kernel_image_path": ")" + missing + R"(", "x": 1})"), "x: unknown field");
}

TEST_F(RouterTest, DriveFilesAreCheckedAtPut) {
  const std::string missing = dir_ + "/nope.img";
  expect_fault(call("PUT", "/drives/data", R"({"drive_id": "data", "path_on_host": ")" + missing +
                                               R"(", "is_root_device": false, "is_read_only": true})"),
               "drive data: path_on_host: " + missing + ": No such file or directory");
  // The id mismatch is reported before the file.
  expect_fault(call("PUT", "/drives/other", R"({"drive_id": "data", "path_on_host": ")" + missing +
                                                R"(", "is_root_device": false})"),
               "The id from the path does not match the id from the body!");
  EXPECT_TRUE(body_json(call("GET", "/vm/config"))["drives"].empty());
  if (::geteuid() != 0) {  // root may write any file
    const std::string ro = dir_ + "/ro.img";
    std::ofstream(ro) << "x";
    ASSERT_EQ(::chmod(ro.c_str(), 0444), 0);
    expect_fault(call("PUT", "/drives/data", R"({"drive_id": "data", "path_on_host": ")" + ro +
                                                 R"(", "is_root_device": false, "is_read_only": false})"),
                 "Permission denied");
    EXPECT_EQ(call("PUT", "/drives/data", R"({"drive_id": "data", "path_on_host": ")" + ro +
                                              R"(", "is_root_device": false, "is_read_only": true})")
                  .status,
              204);
  }
}

// ---------------------------------------------------------------- network interfaces

constexpr std::string_view kEth0 = R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:AC:10:00:02",
    "mtu": 1500, "rx_rate_limiter": {"bandwidth": {"size": 1000, "one_time_burst": 50, "refill_time": 100}}})";

TEST_F(RouterTest, NetworkInterfacePutAndGet) {
  EXPECT_EQ(call("PUT", "/network-interfaces/eth0", kEth0).status, 204);
  EXPECT_TRUE(router_.boot_resources_configured());
  EXPECT_EQ(call("PUT", "/network-interfaces/eth1", R"({"iface_id": "eth1", "host_dev_name": "tap1"})").status, 204);
  auto vm = body_json(call("GET", "/vm/config"));
  ASSERT_EQ(vm["network-interfaces"].size(), 2u);
  const json& eth0 = vm["network-interfaces"][0];
  EXPECT_EQ(eth0["host_dev_name"], "tap0");
  EXPECT_EQ(eth0["guest_mac"], "06:00:ac:10:00:02");
  EXPECT_EQ(eth0["mtu"], 1500);
  EXPECT_EQ(eth0["rx_rate_limiter"]["bandwidth"]["one_time_burst"], 50);
  EXPECT_TRUE(eth0["tx_rate_limiter"].is_null());
  // Re-PUT replaces.
  EXPECT_EQ(call("PUT", "/network-interfaces/eth1", R"({"iface_id": "eth1", "host_dev_name": "tap5"})").status, 204);
  EXPECT_EQ(body_json(call("GET", "/vm/config"))["network-interfaces"][1]["host_dev_name"], "tap5");
  // Started with both.
  configure_bootable();
  ASSERT_EQ(call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  ASSERT_EQ(ctl_.started_with.network_interfaces.size(), 2u);
  EXPECT_EQ(ctl_.started_with.network_interfaces[1].host_dev_name, "tap5");
  expect_fault(call("PUT", "/network-interfaces/eth2", R"({"iface_id": "eth2", "host_dev_name": "tap2"})"),
               "The requested operation is not supported after starting the microVM.");
}

TEST_F(RouterTest, NetworkInterfaceHostileRequests) {
  expect_fault(call("PUT", "/network-interfaces/eth9", kEth0), "The id from the path does not match the id from the body!");
  expect_fault(call("PUT", "/network-interfaces/", kEth0), "The ID cannot be empty.");
  expect_fault(call("PUT", "/network-interfaces", kEth0), "The ID cannot be empty.");
  expect_fault(call("PUT", "/network-interfaces/eth-0", kEth0), "alphanumeric characters and underscores");
  expect_fault(call("PUT", "/network-interfaces/eth0/x", kEth0), "Invalid request method");
  expect_fault(call("GET", "/network-interfaces/eth0"), "Invalid request method");
  expect_fault(call("PUT", "/network-interfaces/eth0", "{\"a\": "), "deserializing");
  expect_fault(call("PUT", "/network-interfaces/eth0", "[]"), "expected an object");
  auto put = [&](std::string_view body) { return call("PUT", "/network-interfaces/eth0", body); };
  expect_fault(put(R"({"iface_id": "eth0"})"), "host_dev_name: missing required field");
  expect_fault(put(R"({"iface_id": "eth0", "host_dev_name": "a-much-too-long-name"})"), "host_dev_name: longer than 15");
  expect_fault(put(R"({"iface_id": "eth0", "host_dev_name": "../tap"})"), "host_dev_name: must not contain");
  expect_fault(put(R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00"})"), "guest_mac:");
  expect_fault(put(R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "33:33:00:00:00:01"})"),
               "guest_mac: '33:33:00:00:00:01' is a multicast MAC address");
  expect_fault(put(R"({"iface_id": "eth0", "host_dev_name": "tap0", "mtu": 67})"), "mtu:");
  expect_fault(put(R"({"iface_id": "eth0", "host_dev_name": "tap0", "tx_rate_limiter": {"ops": {"size": 0,
      "refill_time": 10}}})"),
               "tx_rate_limiter.ops.size: must be at least 1");
  expect_fault(put(R"({"iface_id": "eth0", "host_dev_name": "tap0", "allow_mmds_requests": true})"),
               "allow_mmds_requests: unknown field");
  EXPECT_TRUE(body_json(call("GET", "/vm/config"))["network-interfaces"].empty());
  EXPECT_FALSE(router_.boot_resources_configured());

  ASSERT_EQ(put(kEth0).status, 204);
  expect_fault(call("PUT", "/network-interfaces/eth1", R"({"iface_id": "eth1", "host_dev_name": "tap0"})"),
               "host_dev_name: network interfaces \"eth0\" and \"eth1\" both use \"tap0\"");
  expect_fault(call("PUT", "/network-interfaces/eth1",
                    R"({"iface_id": "eth1", "host_dev_name": "tap1", "guest_mac": "06:00:ac:10:00:02"})"),
               "guest_mac: network interfaces \"eth0\" and \"eth1\" both use 06:00:ac:10:00:02");
  for (int i = 1; i < 4; ++i) {
    const std::string id = "eth" + std::to_string(i);
    ASSERT_EQ(call("PUT", "/network-interfaces/" + id,
                   R"({"iface_id": ")" + id + R"(", "host_dev_name": "tap)" + std::to_string(i) + R"("})")
                  .status,
              204);
  }
  expect_fault(call("PUT", "/network-interfaces/eth4", R"({"iface_id": "eth4", "host_dev_name": "tap4"})"),
               "at most 4 network interfaces");
  EXPECT_EQ(body_json(call("GET", "/vm/config"))["network-interfaces"].size(), 4u);
}

TEST_F(RouterTest, NetworkInterfacePatchUpdatesLimitersAfterStart) {
  const std::string patch = R"({"iface_id": "eth0", "tx_rate_limiter": {"ops": {"size": 10, "refill_time": 1000}}})";
  ASSERT_EQ(call("PUT", "/network-interfaces/eth0", kEth0).status, 204);
  expect_fault(call("PATCH", "/network-interfaces/eth0", patch),
               "The requested operation is not supported before starting the microVM.");
  start();
  expect_fault(call("PATCH", "/network-interfaces/eth1", R"({"iface_id": "eth1"})"), "iface_id: no network interface \"eth1\"");
  expect_fault(call("PATCH", "/network-interfaces/eth1", patch), "The id from the path does not match the id from the body!");
  expect_fault(call("PATCH", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "tap1"})"),
               "host_dev_name: unknown field");
  expect_fault(call("PATCH", "/network-interfaces/eth0", R"({"rx_rate_limiter": {}})"), "iface_id: missing required field");
  expect_fault(call("PATCH", "/network-interfaces/eth0",
                    R"({"iface_id": "eth0", "rx_rate_limiter": {"ops": {"size": 5, "refill_time": 0}}})"),
               "rx_rate_limiter.ops.refill_time");
  EXPECT_EQ(ctl_.count("update_network_interface"), 0u);

  // TX gets an ops bucket; RX is left alone (nullopt to the controller).
  ASSERT_EQ(call("PATCH", "/network-interfaces/eth0", patch).status, 204);
  EXPECT_EQ(ctl_.updated_iface, "eth0");
  EXPECT_FALSE(ctl_.updated_rx.has_value());
  ASSERT_TRUE(ctl_.updated_tx.has_value());
  EXPECT_EQ(ctl_.updated_tx->ops, (config::TokenBucketConfig{10, 0, 1000}));
  EXPECT_FALSE(ctl_.updated_tx->bandwidth.has_value());
  auto eth0 = body_json(call("GET", "/vm/config"))["network-interfaces"][0];
  EXPECT_EQ(eth0["tx_rate_limiter"]["ops"]["size"], 10);
  EXPECT_EQ(eth0["rx_rate_limiter"]["bandwidth"]["size"], 1000);

  // RX: a new ops bucket merges with the existing bandwidth one (Firecracker's merge).
  ASSERT_EQ(call("PATCH", "/network-interfaces/eth0",
                 R"({"iface_id": "eth0", "rx_rate_limiter": {"ops": {"size": 7, "refill_time": 70}}})")
                .status,
            204);
  ASSERT_TRUE(ctl_.updated_rx.has_value());
  EXPECT_EQ(ctl_.updated_rx->bandwidth, (config::TokenBucketConfig{1000, 50, 100}));
  EXPECT_EQ(ctl_.updated_rx->ops, (config::TokenBucketConfig{7, 0, 70}));
  EXPECT_FALSE(ctl_.updated_tx.has_value());

  // A failing device update changes nothing.
  ctl_.fail_update = true;
  expect_fault(call("PATCH", "/network-interfaces/eth0",
                    R"({"iface_id": "eth0", "tx_rate_limiter": {"ops": {"size": 0, "refill_time": 0}}})"),
               "injected failure");
  EXPECT_EQ(body_json(call("GET", "/vm/config"))["network-interfaces"][0]["tx_rate_limiter"]["ops"]["size"], 10);
  ctl_.fail_update = false;

  // Size 0 removes a bucket; with none left the direction is unlimited (an empty limiter to
  // the controller, null in the config). Allowed while paused too.
  ASSERT_EQ(call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  ASSERT_EQ(call("PATCH", "/network-interfaces/eth0",
                 R"({"iface_id": "eth0", "tx_rate_limiter": {"ops": {"size": 0, "refill_time": 0}}})")
                .status,
            204);
  ASSERT_TRUE(ctl_.updated_tx.has_value());
  EXPECT_EQ(*ctl_.updated_tx, config::RateLimiterConfig{});
  EXPECT_TRUE(body_json(call("GET", "/vm/config"))["network-interfaces"][0]["tx_rate_limiter"].is_null());
  EXPECT_EQ(ctl_.count("update_network_interface"), 4u);
}

TEST_F(RouterTest, SnapshotLoadPassesNetworkOverrides) {
  ctl_.restored.network_interfaces.push_back(config::NetworkInterface{"eth0", "tap7", {}, {}, {}, {}});
  ASSERT_EQ(call("PUT", "/snapshot/load", R"({"snapshot_path": "/s", "mem_file_path": "/m",
      "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap7"}]})")
                .status,
            204);
  ASSERT_EQ(ctl_.snapshot_loaded.network_overrides.size(), 1u);
  EXPECT_EQ(ctl_.snapshot_loaded.network_overrides[0].host_dev_name, "tap7");
  EXPECT_EQ(body_json(call("GET", "/vm/config"))["network-interfaces"][0]["host_dev_name"], "tap7");
  // Restored paused: limiter updates are allowed.
  EXPECT_EQ(call("PATCH", "/network-interfaces/eth0", R"({"iface_id": "eth0"})").status, 204);
}

}  // namespace
}  // namespace kiln::vmm::api
