// The `kiln` command line: global flags, each command's flags, --help on every command,
// unknown flags, missing values and bad numbers (no kilnd needed).
#include "src/cli/kiln_options.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace kiln::kilnd::cli {
namespace {

using nlohmann::json;

Result<std::string> no_files(const std::string& path) { return Error{"cannot read " + path, 2}; }

Result<KilnCommand> parse(const std::vector<std::string>& args, const FileReader& read = no_files) {
  return parse_kiln_args(args, KilnEnvironment{}, read);
}

std::string error_of(const std::vector<std::string>& args) {
  auto r = parse(args);
  EXPECT_FALSE(r.ok());
  return r.ok() ? std::string() : r.error().message;
}

TEST(KilnOptions, GlobalFlagsAndEnvironment) {
  auto c = parse({"--endpoint", "/run/k.sock", "--token", "t", "--tenant", "acme", "--json", "ls"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->action, KilnAction::kLs);
  EXPECT_EQ(c->globals.endpoint, "/run/k.sock");
  EXPECT_EQ(c->globals.token, "t");
  EXPECT_EQ(c->globals.tenant, "acme");
  EXPECT_TRUE(c->globals.json);
  auto d = parse_kiln_args({"status"}, KilnEnvironment{"h:1", "env-token"}, no_files);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->globals.endpoint, "h:1");
  EXPECT_EQ(d->globals.token, "env-token");
  EXPECT_EQ(d->name, "");
  EXPECT_EQ(parse({"-e", "x:2", "status", "f"})->globals.endpoint, "x:2");
  EXPECT_EQ(parse({"status"})->globals.endpoint, kDefaultEndpoint);
  EXPECT_TRUE(parse({"status", "f", "--json"})->globals.json);  // --json after the command too
}

TEST(KilnOptions, DeployBody) {
  auto c = parse({"deploy", "hello", "--image", "oci:/x", "--memory", "256", "--vcpus", "2", "--timeout-ms", "900",
                  "--concurrency", "4", "--min", "1", "--max", "3", "--queue", "10", "--idle-timeout-s", "60",
                  "--env", "A=b=c", "--command", "/bin/sh", "--arg", "-c", "--arg", "echo", "--workdir", "/srv",
                  "--user", "nobody", "--username", "u", "--password", "p", "--insecure-registry", "--no-wait"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->action, KilnAction::kDeploy);
  EXPECT_EQ(c->deploy.name, "hello");
  EXPECT_FALSE(c->deploy.wait);
  const json& b = c->deploy.body;
  EXPECT_EQ(b["image"], "oci:/x");
  EXPECT_EQ(b["memory_mib"], 256);
  EXPECT_EQ(b["vcpus"], 2);
  EXPECT_EQ(b["timeout_ms"], 900);
  EXPECT_EQ(b["concurrency"], 4);
  EXPECT_EQ(b["min_instances"], 1);
  EXPECT_EQ(b["max_instances"], 3);
  EXPECT_EQ(b["max_queue"], 10);
  EXPECT_EQ(b["idle_timeout_s"], 60);
  EXPECT_EQ(b["env"]["A"], "b=c");
  EXPECT_EQ(b["command"], json::array({"/bin/sh"}));
  EXPECT_EQ(b["args"], json::array({"-c", "echo"}));
  EXPECT_EQ(b["working_dir"], "/srv");
  EXPECT_EQ(b["user"], "nobody");
  EXPECT_EQ(b["registry_credentials"]["username"], "u");
  EXPECT_EQ(b["registry_credentials"]["password"], "p");
  EXPECT_EQ(b["tls_verify"], false);
}

TEST(KilnOptions, DeployNetworkFlagsBuildTheNetworkObject) {
  auto c = parse({"deploy", "f", "--image", "x", "--network", "none", "--allow", "10.1.0.0/16", "--deny", "10.1.2.0/24",
                  "--allow", "192.168.5.7", "--dns", "10.1.0.53", "--dns", "10.1.0.54"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->deploy.body["network"], json::parse(R"({"mode": "none", "allow": ["10.1.0.0/16", "192.168.5.7"],
                                                      "deny": ["10.1.2.0/24"], "dns": ["10.1.0.53", "10.1.0.54"]})"));
  auto egress = parse({"deploy", "f", "--image", "x", "--network=egress"});
  ASSERT_TRUE(egress.ok());
  EXPECT_EQ(egress->deploy.body["network"], json::parse(R"({"mode": "egress"})"));
  auto plain = parse({"deploy", "f", "--image", "x"});
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->deploy.body.contains("network"));  // kilnd's defaults
  // A --file's network is extended by later flags.
  auto read = [](const std::string&) -> Result<std::string> {
    return std::string(R"({"image": "x", "network": {"mode": "egress", "deny": ["8.8.8.8"]}})");
  };
  auto merged = parse({"deploy", "f", "--file", "cfg.json", "--deny", "1.1.1.1"}, read);
  ASSERT_TRUE(merged.ok()) << merged.error().message;
  EXPECT_EQ(merged->deploy.body["network"], json::parse(R"({"mode": "egress", "deny": ["8.8.8.8", "1.1.1.1"]})"));
  auto odd = [](const std::string&) -> Result<std::string> { return std::string(R"({"network": "egress"})"); };
  auto bad = parse({"deploy", "f", "--file", "cfg.json", "--allow", "10.0.0.0/8"}, odd);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "deploy: --allow: the config's network is not an object");
  auto odd_list = [](const std::string&) -> Result<std::string> { return std::string(R"({"network": {"dns": "x"}})"); };
  auto bad_list = parse({"deploy", "f", "--file", "cfg.json", "--dns", "1.1.1.1"}, odd_list);
  ASSERT_FALSE(bad_list.ok());
  EXPECT_EQ(bad_list.error().message, "deploy: --dns: the config's network.dns is not a list");
  auto bad_mode = parse({"deploy", "f", "--image", "x", "--network", "open"});
  ASSERT_FALSE(bad_mode.ok());
  EXPECT_EQ(bad_mode.error().message, "deploy: --network: want none or egress, got 'open'");
}

TEST(KilnOptions, DeployFileMergesInOrder) {
  auto read = [](const std::string& path) -> Result<std::string> {
    EXPECT_EQ(path, "cfg.json");
    return std::string(R"({"memory_mib": 512, "image": "from-file"})");
  };
  auto c = parse({"deploy", "f", "--memory", "128", "--file", "cfg.json", "--image", "from-flag"}, read);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->deploy.body["memory_mib"], 512);  // the file came later
  EXPECT_EQ(c->deploy.body["image"], "from-flag");  // the flag came later
  auto not_object = [](const std::string&) -> Result<std::string> { return std::string("[1]"); };
  auto bad = parse({"deploy", "f", "--file", "x"}, not_object);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(exit_code_of(bad.error()), 2);
  auto unreadable = parse({"deploy", "f", "--file", "/nonexistent"});
  ASSERT_FALSE(unreadable.ok());
  EXPECT_EQ(unreadable.error().message, "cannot read /nonexistent");
  EXPECT_EQ(exit_code_of(unreadable.error()), 1);
}

TEST(KilnOptions, ReadWholeFileReadsFilesAndPipesAndErrorsCarryErrno) {
  char dir[] = "/tmp/kiln-options-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string file = std::string(dir) + "/body";
  { std::ofstream(file) << "payload"; }
  auto text = read_whole_file(file);
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(*text, "payload");
  // A pipe, as --data-file <(...) gives.
  const std::string fifo = std::string(dir) + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] { std::ofstream(fifo) << "from a pipe"; });
  auto piped = read_whole_file(fifo);
  writer.join();
  ASSERT_TRUE(piped.ok()) << piped.error().message;
  EXPECT_EQ(*piped, "from a pipe");
  auto missing = read_whole_file(std::string(dir) + "/missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message.rfind("cannot read " + std::string(dir) + "/missing: ", 0), 0u) << missing.error().message;
  EXPECT_EQ(exit_code_of(missing.error()), 1);
  auto directory = read_whole_file(dir);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(exit_code_of(directory.error()), 1);
  std::filesystem::remove_all(dir);
}

TEST(KilnOptions, InvokeAndLogs) {
  auto c = parse({"invoke", "f", "-d", "x", "--web", "/p?q=1", "-X", "PUT"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->invoke.name, "f");
  EXPECT_EQ(c->invoke.data.value(), "x");
  EXPECT_EQ(c->invoke.web, "/p?q=1");
  EXPECT_EQ(c->invoke.method, "PUT");
  auto l = parse({"invoke", "f", "--lambda", "--data", "a", "--data-file", "-"});
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->invoke.lambda);
  EXPECT_FALSE(l->invoke.data.has_value());  // the later --data-file wins
  EXPECT_EQ(l->invoke.data_file.value(), "-");
  auto g = parse({"logs", "f", "-f", "--since", "2026-01-02T03:04:05Z", "--request-id", "r1", "--limit", "5"});
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_TRUE(g->logs.follow);
  EXPECT_EQ(g->logs.since, "2026-01-02T03:04:05Z");
  EXPECT_EQ(g->logs.request_id, "r1");
  EXPECT_EQ(g->logs.limit.value(), 5u);
  EXPECT_EQ(parse({"rm", "f"})->action, KilnAction::kRm);
  EXPECT_EQ(parse({"rm", "f"})->name, "f");
}

TEST(KilnOptions, Doctor) {
  auto plain = parse({"doctor"});
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->action, KilnAction::kDoctor);
  EXPECT_TRUE(plain->doctor.config.empty());
  EXPECT_TRUE(plain->doctor.state_dir.empty());
  auto c = parse({"doctor", "--config", "/etc/k.json", "--state-dir=/srv/kiln", "--vmm", "/opt/kiln-vmm", "--json"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->doctor.config, "/etc/k.json");
  EXPECT_EQ(c->doctor.state_dir, "/srv/kiln");
  EXPECT_EQ(c->doctor.vmm, "/opt/kiln-vmm");
  EXPECT_TRUE(c->globals.json);
  EXPECT_EQ(error_of({"doctor", "now"}), "doctor: unexpected argument now");
  EXPECT_EQ(error_of({"doctor", "--image", "x"}), "doctor: unknown flag --image");
}

TEST(KilnOptions, HelpOnEveryCommand) {
  for (const char* command : {"deploy", "invoke", "logs", "ls", "rm", "status", "doctor"}) {
    for (const char* flag : {"--help", "-h"}) {
      auto c = parse({command, flag});
      ASSERT_TRUE(c.ok()) << command << " " << flag << ": " << c.error().message;
      EXPECT_EQ(c->action, KilnAction::kHelp);
      EXPECT_EQ(c->help.rfind(std::string("usage: kiln [global flags] ") + command, 0), 0u) << c->help;
    }
  }
  EXPECT_EQ(parse({"deploy", "name", "--image", "x", "--help"})->action, KilnAction::kHelp);
  EXPECT_NE(parse({"deploy", "--help"})->help.find("--insecure-registry"), std::string::npos);
  auto top = parse({"--help"});
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top->help, kiln_usage());
  EXPECT_EQ(kiln_usage_for({"deploy", "--bogus"}).rfind("usage: kiln [global flags] deploy", 0), 0u);
  EXPECT_EQ(kiln_usage_for({"nope"}), kiln_usage());
}

TEST(KilnOptions, UsageErrors) {
  EXPECT_EQ(error_of({}), "missing command");
  EXPECT_EQ(error_of({"frobnicate"}), "unknown command frobnicate");
  EXPECT_EQ(error_of({"--frobnicate", "ls"}), "unknown flag --frobnicate");
  EXPECT_EQ(error_of({"--endpoint"}), "--endpoint: missing value");
  EXPECT_EQ(error_of({"deploy"}), "deploy: needs a NAME");
  EXPECT_EQ(error_of({"deploy", "f", "--frobnicate"}), "deploy: unknown flag --frobnicate");
  EXPECT_EQ(error_of({"deploy", "f", "--image"}), "deploy: --image: missing value");
  EXPECT_EQ(error_of({"deploy", "f", "--memory", "lots"}), "deploy: --memory: want a number, got 'lots'");
  EXPECT_EQ(error_of({"deploy", "f", "--vcpus", "-1"}), "deploy: --vcpus: want a number, got '-1'");
  EXPECT_EQ(error_of({"deploy", "f", "--env", "NOEQUALS"}), "deploy: --env needs NAME=VALUE");
  EXPECT_EQ(error_of({"deploy", "f", "g"}), "deploy: unexpected argument g");
  EXPECT_EQ(error_of({"deploy", "f", "--endpoint", "x"}), "deploy: unknown flag --endpoint");  // a global flag
  EXPECT_EQ(error_of({"invoke"}), "invoke: needs a NAME");
  EXPECT_EQ(error_of({"invoke", "f", "--data"}), "invoke: --data: missing value");
  EXPECT_EQ(error_of({"invoke", "f", "--lambda=1"}), "invoke: --lambda: takes no value");
  EXPECT_EQ(error_of({"logs", "f", "--limit", "many"}), "logs: --limit: want a number, got 'many'");
  EXPECT_EQ(error_of({"logs", "f", "-x"}), "logs: unknown flag -x");
  EXPECT_EQ(error_of({"rm"}), "rm: needs a NAME");
  EXPECT_EQ(error_of({"status", "a", "b"}), "status: unexpected argument b");
  EXPECT_EQ(error_of({"ls", "--all"}), "ls: unknown flag --all");
}

}  // namespace
}  // namespace kiln::kilnd::cli
