// e2e (label e2e; the nested test host here), issue 8: from inside a function's guest nothing of
// the host is reachable beyond its devices: with `"network": {"mode": "none"}` the only network
// interface is loopback (no route anywhere; network_e2e_test.cc covers the default, egress), the only disk is the function's read-only root image, whose end is the image's end
// (no host bytes behind it), and it cannot be written. And a VMM thread that breaks its seccomp
// filter (kiln-vmm's debug hook) ends the VMM with SIGSYS, which kilnd reports for the instance;
// every instance's VMM runs jailed (non-zero uid, no capabilities, no_new_privs, seccomp on
// every thread, the jail as its root, only its own fds).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/e2e/lib/kilnd_fixture.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kProbeScript =
    "#!/bin/sh\n"
    "printf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
    "echo \"net=$(ls /sys/class/net | tr '\\n' ' ')\"\n"
    "echo \"disks=$(ls /sys/block | grep -v -e '^loop' -e '^ram' | tr '\\n' ' ')\"\n"
    "sectors=$(cat /sys/block/vda/size)\n"
    "echo \"vda_bytes=$((sectors * 512))\"\n"
    "echo \"vda_ro=$(cat /sys/block/vda/ro)\"\n"
    "echo \"past_end=$(dd if=/dev/vda bs=512 skip=$sectors count=8 2>/dev/null | wc -c)\"\n"
    "if echo x | dd of=/dev/vda bs=1 count=1 seek=0 conv=notrunc 2>/dev/null; then echo write=ok; else echo write=refused; fi\n"
    // busybox 1.35's `wget -T` crashes (which would pass for "unreachable"): `timeout` bounds it.
    "if timeout 3 wget -q -O - http://10.0.2.2/ >/dev/null 2>&1 || timeout 3 wget -q -O - http://169.254.169.254/ >/dev/null 2>&1; then\n"
    "  echo outbound=reached\n"
    "else\n"
    "  echo outbound=unreachable\n"
    "fi\n";

class IsolationE2e : public kiln::e2e::KilndTest {};

TEST_F(IsolationE2e, TheGuestSeesOnlyItsDevices) {
  start();
  json config = kiln::e2e::cgi_function_config(kilnd_->paths(), {{"probe", kProbeScript}});
  config["timeout_ms"] = 120000;
  config["network"] = {{"mode", "none"}};
  auto deployed = kilnd_->deploy("probe", config);
  ASSERT_TRUE(deployed.ok()) << deployed.error().message;
  ASSERT_EQ((*deployed)["image"]["state"], "ready") << deployed->dump();
  const std::string rootfs = (*deployed)["image"].value("rootfs_path", "");

  auto r = call("GET", "/v1/functions/probe/http/cgi-bin/probe");
  ASSERT_EQ(r.status, 200) << r.body;
  std::printf("guest view:\n%s", r.body.c_str());
  auto f = kiln::e2e::key_values(r.body);
  EXPECT_EQ(f["net"], "lo ") << "network interfaces beyond loopback";
  EXPECT_EQ(f["disks"], "vda ") << "disks beyond the function's image";
  EXPECT_EQ(f["vda_ro"], "1");
  EXPECT_EQ(f["past_end"], "0") << "bytes readable past the image's end";
  EXPECT_EQ(f["write"], "refused");
  EXPECT_EQ(f["outbound"], "unreachable");
  ASSERT_FALSE(rootfs.empty()) << deployed->dump();
  EXPECT_EQ(f["vda_bytes"], std::to_string(fs::file_size(rootfs))) << "the disk is not exactly the image";
}

// The status lines (Uid, Gid, Cap*, NoNewPrivs, Seccomp) of a process, as printed.
std::map<std::string, std::string> status_lines(const std::string& path) {
  std::map<std::string, std::string> out;
  std::istringstream in(kiln::e2e::slurp(path));
  for (std::string line; std::getline(in, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    out[line.substr(0, colon)] = value;
  }
  return out;
}

TEST_F(IsolationE2e, EveryInstanceVmmIsJailedAndFiltered) {
  ASSERT_EQ(::geteuid(), 0u) << "kilnd jails VMMs when it runs as root; the e2e tier runs as root";
  start();
  json config = kiln::e2e::cgi_function_config(kilnd_->paths(), {{"probe", kProbeScript}});
  config["timeout_ms"] = 120000;
  auto deployed = kilnd_->deploy("jailed", config);
  ASSERT_TRUE(deployed.ok()) << deployed.error().message;
  auto r = call("GET", "/v1/functions/jailed/http/cgi-bin/probe");
  ASSERT_EQ(r.status, 200) << r.body;
  const pid_t pid = kilnd_->instance_vmm_pid(r.headers["x-kiln-instance-id"]);
  ASSERT_GT(pid, 0);
  const std::string proc = "/proc/" + std::to_string(pid);

  auto st = status_lines(proc + "/status");
  for (const char* k : {"Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"}) {
    std::printf("kiln-vmm %d %s:\t%s\n", pid, k, st[k].c_str());
  }
  EXPECT_NE(st["Uid"].substr(0, 2), "0\t") << "the VMM runs as root";
  EXPECT_EQ(st["CapEff"], "0000000000000000");
  EXPECT_EQ(st["CapPrm"], "0000000000000000");
  EXPECT_EQ(st["CapBnd"], "0000000000000000");
  EXPECT_EQ(st["NoNewPrivs"], "1");
  EXPECT_EQ(st["Seccomp"], "2");
  std::error_code ec;
  int threads = 0;
  for (const auto& t : fs::directory_iterator(proc + "/task", ec)) {
    ++threads;
    EXPECT_EQ(status_lines(t.path().string() + "/status")["Seccomp"], "2") << "thread " << t.path().filename();
  }
  EXPECT_GE(threads, 3);

  // Its root is the jail: the instance's files, none of the host's.
  std::string names;
  for (const auto& e : fs::directory_iterator(proc + "/root", ec)) names += e.path().filename().string() + " ";
  std::printf("kiln-vmm %d sees /: %s\n", pid, names.c_str());
  EXPECT_NE(names.find("rootfs.img"), std::string::npos) << names;
  for (const char* host_only : {"etc", "home", "root", "var", "tmp", "proc", "sys", "boot", "work"}) {
    EXPECT_FALSE(fs::exists(proc + "/root/" + host_only, ec)) << "the jail shows /" << host_only;
  }

  // Its fds: KVM, its sockets, its drive, its log; nothing of kilnd's.
  std::string fds;
  int nfds = 0;
  for (const auto& e : fs::directory_iterator(proc + "/fd", ec)) {
    std::string target = fs::read_symlink(e.path(), ec).string();
    fds += target + " ";
    ++nfds;
    EXPECT_EQ(target.find(state_ + "/functions"), std::string::npos) << target;
    EXPECT_EQ(target.find(state_ + "/logs"), std::string::npos) << target;
    EXPECT_EQ(target.find("kilnd.sock"), std::string::npos) << target;
  }
  std::printf("kiln-vmm %d fds (%d): %s\n", pid, nfds, fds.c_str());
  EXPECT_LT(nfds, 64);
}

TEST_F(IsolationE2e, ASeccompViolationEndsTheVmmAndKilndReportsIt) {
  // The hook fires in a vCPU thread once the guest has run for a while (after ready).
  start({"--snapshots=off", "--vmm-arg=--debug-seccomp-violation-after-ms=30000"});
  json config = kiln::e2e::cgi_function_config(kilnd_->paths(), {{"probe", kProbeScript}});
  config["timeout_ms"] = 120000;
  auto deployed = kilnd_->deploy("victim", config);
  ASSERT_TRUE(deployed.ok()) << deployed.error().message;
  auto r = call("GET", "/v1/functions/victim/http/cgi-bin/probe");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string instance = r.headers["x-kiln-instance-id"];
  std::string logs;
  const std::string want = "instance " + instance + " ended: kiln-vmm killed by signal 31";
  for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
       std::chrono::steady_clock::now() < end && logs.find(want) == std::string::npos;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    logs = call("GET", "/v1/functions/victim/logs").body;
  }
  ASSERT_NE(logs.find(want), std::string::npos) << logs;
  std::printf("kilnd log: %s\n", logs.substr(logs.find(want), logs.find('\n', logs.find(want)) - logs.find(want)).c_str());
}

}  // namespace
