// kilnd's config file: every key, flags over the file, unknown keys and wrong types named,
// repeatable keys, which missing files are errors, and the shipped example.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "src/cli/kilnd_options.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_paths.h"

namespace kiln::kilnd::cli {
namespace {

const std::string kFile = std::filesystem::read_symlink("/proc/self/exe").string();

class KilndConfigFile : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(tmp_.path().empty()); }
  std::string write(const std::string& text, const std::string& name = "kilnd.json") { return tmp_.write(name, text); }
  // Defaults as kilnd_defaults() makes them without $KILN_CONFIG, with `file` as the default file.
  KilndDefaults defaults(const std::string& file = "", bool required = false) const {
    KilndDefaults d{"/var/lib/kiln", false, false};
    d.config_file = file;
    d.config_required = required;
    return d;
  }
  std::string error_of(const std::string& text, std::vector<std::string> args = {}) {
    const std::string path = write(text);
    args.insert(args.begin(), {"--config", path});
    auto r = parse_kilnd_args(args, defaults());
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.error().message;
  }
  kiln::testing::TempDir tmp_{"kilnd-config"};
  const std::string& dir_ = tmp_.path();
};

// Every key sets what its flag sets (kilnd_options_test.cc checks what that is).
TEST_F(KilndConfigFile, EveryKeyFromTheFileOnly) {
  const std::string path = write(R"({"listen": "[::1]:0", "unix": "none", "state-dir": "/srv/kiln",
    "vmm": ")" + kFile + R"(", "kernel": ")" +
                                 kFile + R"(", "initrd": ")" + kFile + R"(",
    "boot-args": "console=ttyS0 quiet", "boot-timeout-ms": 5000, "drain-timeout-ms": 0,
    "vmm-arg": ["--no-seccomp", "--seccomp-audit"], "jail": true, "snapshots": false, "park-vmms": true,
    "log-memory-mib": 16, "tenants": "/t.json", "network": false, "network-config": "",
    "allow-second-schedules": true, "lazy-images": false, "chunk-cache-gib": 3})");
  auto from_file = parse_kilnd_args({"--config", path}, defaults());
  ASSERT_TRUE(from_file.ok()) << from_file.error().message;
  EXPECT_EQ(from_file->config_file, path);
  auto from_flags = parse_kilnd_args({"--listen",
                                      "[::1]:0",
                                      "--unix",
                                      "none",
                                      "--state-dir",
                                      "/srv/kiln",
                                      "--vmm",
                                      kFile,
                                      "--kernel",
                                      kFile,
                                      "--initrd",
                                      kFile,
                                      "--boot-args",
                                      "console=ttyS0 quiet",
                                      "--boot-timeout-ms",
                                      "5000",
                                      "--drain-timeout-ms",
                                      "0",
                                      "--vmm-arg",
                                      "--no-seccomp",
                                      "--vmm-arg",
                                      "--seccomp-audit",
                                      "--jail",
                                      "on",
                                      "--snapshots",
                                      "off",
                                      "--park-vmms",
                                      "on",
                                      "--log-memory-mib",
                                      "16",
                                      "--tenants",
                                      "/t.json",
                                      "--network",
                                      "off",
                                      "--network-config",
                                      "",
                                      "--allow-second-schedules",
                                      "--lazy-images",
                                      "off",
                                      "--chunk-cache-gib",
                                      "3"},
                                     defaults());
  ASSERT_TRUE(from_flags.ok()) << from_flags.error().message;
  from_flags->config_file = path;
  EXPECT_TRUE(*from_file == *from_flags);
  EXPECT_EQ(from_file->vmm_args, (std::vector<std::string>{"--no-seccomp", "--seccomp-audit"}));
  EXPECT_EQ(from_file->chunk_cache_gib, 3u);
  EXPECT_TRUE(from_file->allow_second_schedules);
}

TEST_F(KilndConfigFile, FlagsOverrideTheFile) {
  const std::string path = write(R"({"state-dir": "/from/file", "jail": true, "boot-timeout-ms": 5000,
                                     "vmm-arg": ["--a", "--b"], "listen": "0.0.0.0:1"})");
  auto o = parse_kilnd_args({"--config", path, "--state-dir", "/from/flag", "--vmm-arg", "--c", "--jail", "off"},
                            defaults());
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->state_dir, "/from/flag");
  EXPECT_FALSE(o->jail);
  EXPECT_EQ(o->vmm_args, std::vector<std::string>{"--c"});  // the flags replace the file's list
  EXPECT_EQ(o->boot_timeout->count(), 5000);                // not on the command line: the file's
  EXPECT_EQ(o->tcp_host, "0.0.0.0");
  // A bad value in the file is not looked at when a flag replaces it.
  const std::string bad = write(R"({"kernel": "/nonexistent/vmlinux"})", "bad.json");
  auto replaced = parse_kilnd_args({"--config", bad, "--kernel", kFile}, defaults());
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_EQ(replaced->kernel_path, kFile);
}

TEST_F(KilndConfigFile, UnknownKeysAreRefused) {
  EXPECT_EQ(error_of(R"({"state_dir": "/x"})"),
            dir_ + "/kilnd.json: key \"state_dir\": unknown key (not a kilnd flag; see kilnd --help)");
  EXPECT_EQ(error_of(R"({"config": "/other.json"})"),
            dir_ + "/kilnd.json: key \"config\": unknown key (not a kilnd flag; see kilnd --help)");
  EXPECT_EQ(error_of(R"({"help": true})"),
            dir_ + "/kilnd.json: key \"help\": unknown key (not a kilnd flag; see kilnd --help)");
}

TEST_F(KilndConfigFile, WrongTypesAndValuesNameTheKey) {
  const std::string f = dir_ + "/kilnd.json: key ";
  EXPECT_EQ(error_of(R"({"boot-timeout-ms": "5000"})"),
            f + "\"boot-timeout-ms\": invalid type: expected an unsigned integer, got string");
  EXPECT_EQ(error_of(R"({"boot-timeout-ms": 0})"), f + "\"boot-timeout-ms\": must be at least 1");
  EXPECT_EQ(error_of(R"({"boot-timeout-ms": -5})").rfind(f + "\"boot-timeout-ms\": ", 0), 0u);
  EXPECT_EQ(error_of(R"({"log-memory-mib": 65537})"), f + "\"log-memory-mib\": at most 65536, got 65537");
  EXPECT_EQ(error_of(R"({"jail": "on"})"), f + "\"jail\": invalid type: expected a boolean, got string");
  EXPECT_EQ(error_of(R"({"allow-second-schedules": 1})").rfind(f + "\"allow-second-schedules\": invalid type", 0), 0u);
  EXPECT_EQ(error_of(R"({"state-dir": 7})"), f + "\"state-dir\": invalid type: expected a string, got integer");
  EXPECT_EQ(error_of(R"({"vmm-arg": "--no-seccomp"})").rfind(f + "\"vmm-arg\": invalid type", 0), 0u);
  EXPECT_EQ(error_of(R"({"vmm-arg": ["--a", 1]})").rfind(f + "\"vmm-arg[1]\": invalid type", 0), 0u);
  EXPECT_EQ(error_of(R"({"listen": "8900"})"), f + "\"listen\": must be HOST:PORT (got 8900)");
  EXPECT_EQ(error_of(R"({"kernel": "/nonexistent/vmlinux"})"),
            f + "\"kernel\" /nonexistent/vmlinux: No such file or directory");
  EXPECT_EQ(error_of(R"({"network-config": "/x.json", "network": false})"),
            f + "\"network-config\": instance networks are off (--network on)");
}

TEST_F(KilndConfigFile, TheDocumentMustBeOneObjectWithoutRepeatedKeys) {
  EXPECT_EQ(error_of("[]"), dir_ + "/kilnd.json: expected a JSON object, got array");
  EXPECT_EQ(error_of("{").rfind(dir_ + "/kilnd.json: parse error", 0), 0u);
  EXPECT_EQ(error_of(R"({"jail": true, "jail": false})").rfind(dir_ + "/kilnd.json: ", 0), 0u);
}

TEST_F(KilndConfigFile, RepeatableKeysAndSwitches) {
  auto o = parse_kilnd_args(
      {"--config", write(R"({"vmm-arg": ["--a", "--b", "--c"], "allow-second-schedules": false})")}, defaults());
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->vmm_args, (std::vector<std::string>{"--a", "--b", "--c"}));
  EXPECT_FALSE(o->allow_second_schedules);
  auto empty = parse_kilnd_args({"--config", write(R"({"vmm-arg": []})")}, defaults());
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->vmm_args.empty());
}

TEST_F(KilndConfigFile, WhichMissingFilesAreErrors) {
  // --config names a file that must exist.
  auto given = parse_kilnd_args({"--config", dir_ + "/missing.json"}, defaults());
  ASSERT_FALSE(given.ok());
  EXPECT_EQ(given.error().message, "--config: open " + dir_ + "/missing.json: No such file or directory");
  EXPECT_FALSE(parse_kilnd_args({"--config", ""}, defaults()).ok());
  // The default file (/etc/kiln/kilnd.json) may be absent...
  auto absent_default = parse_kilnd_args({}, defaults(dir_ + "/missing.json"));
  ASSERT_TRUE(absent_default.ok()) << absent_default.error().message;
  EXPECT_TRUE(absent_default->config_file.empty());
  // ... but not the one $KILN_CONFIG names.
  EXPECT_FALSE(parse_kilnd_args({}, defaults(dir_ + "/missing.json", true)).ok());
  // A present default file is read; --config replaces it.
  const std::string def = write(R"({"state-dir": "/from/default"})", "default.json");
  const std::string other = write(R"({"state-dir": "/from/other"})", "other.json");
  EXPECT_EQ(parse_kilnd_args({}, defaults(def))->state_dir, "/from/default");
  EXPECT_EQ(parse_kilnd_args({"--config", other}, defaults(def))->state_dir, "/from/other");
  // --help does not read the file.
  EXPECT_TRUE(parse_kilnd_args({"--help"}, defaults(dir_ + "/missing.json", true))->help);
}

// packaging/kilnd.example.json holds every key, each at kilnd's default.
TEST_F(KilndConfigFile, TheExampleHoldsEveryKeyAtItsDefault) {
  std::ifstream in(kiln::testing::source_dir() + "/packaging/kilnd.example.json");
  ASSERT_TRUE(in) << "packaging/kilnd.example.json";
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json example = nlohmann::json::parse(text.str());
  std::vector<std::string> keys;
  for (const auto& [key, value] : example.items()) keys.push_back(key);
  std::vector<std::string> want = kilnd_config_keys();
  std::sort(want.begin(), want.end());
  EXPECT_EQ(keys, want);
  // The package's files do not exist here: any readable file stands in for them.
  for (const char* key : {"vmm", "kernel", "initrd"}) example[key] = kFile;
  auto o = parse_kilnd_args({"--config", write(example.dump())}, defaults());
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->tcp_host, "127.0.0.1");
  EXPECT_EQ(o->tcp_port, 8900);
  EXPECT_EQ(o->state_dir, "/var/lib/kiln");
  EXPECT_EQ(o->unix_path, "/var/lib/kiln/kilnd.sock");
  EXPECT_EQ(o->boot_timeout->count(), 60000);
  EXPECT_EQ(o->drain_timeout->count(), 30000);
  EXPECT_EQ(o->log_memory_bytes.value(), std::size_t{8} << 20);
  EXPECT_TRUE(o->jail);
  EXPECT_TRUE(o->network);
  EXPECT_TRUE(o->snapshots);
  EXPECT_TRUE(o->tenants_file.empty());
  EXPECT_TRUE(o->network_config_file.empty());
  EXPECT_TRUE(o->lazy_images);
  EXPECT_EQ(o->chunk_cache_gib, 10u);
}

}  // namespace
}  // namespace kiln::kilnd::cli
