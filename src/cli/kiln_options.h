// The `kiln` command line: global flags, then a command (deploy, invoke, logs, ls, rm, status,
// doctor)
// with its own flags; every command answers --help. Errors are values; each is a usage error
// (exit 2) except an unreadable file (exit 1, see exit_code_of).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kiln::kilnd::cli {

enum class KilnAction { kHelp, kDeploy, kInvoke, kLogs, kLs, kRm, kStatus, kDoctor };

struct KilnGlobals {
  std::string endpoint;  // host:port or a Unix socket path
  std::string token;  // Authorization: Bearer
  std::string tenant;  // X-Kiln-Tenant
  bool json = false;
};

struct DeployArgs {
  std::string name;
  nlohmann::json body = nlohmann::json::object();  // the PUT body, flags and --file merged in order
  bool wait = true;
};

struct InvokeArgs {
  std::string name;
  std::optional<std::string> data;  // --data TEXT
  std::optional<std::string> data_file;  // --data-file FILE ("-": stdin); the later flag wins
  std::string web;  // --web PATH
  std::string method = "GET";
  bool lambda = false;
};

struct LogsArgs {
  std::string name;
  bool follow = false;
  std::string since, request_id;
  std::optional<std::uint64_t> limit;
};

// kiln doctor: checks this host, not a kilnd.
struct DoctorArgs {
  std::string config;  // --config FILE: kilnd's config file to check and take state-dir and vmm from
  std::string state_dir;  // --state-dir DIR (empty: kilnd's, from its config file or defaults)
  std::string vmm;  // --vmm PATH: the kiln-vmm whose self-test runs (empty: kilnd's, else found)
};

struct KilnCommand {
  KilnGlobals globals;
  KilnAction action = KilnAction::kHelp;
  std::string help;  // kHelp: the text to print (the command's usage, or kiln's)
  std::string name;  // rm NAME, status [NAME]
  DeployArgs deploy;
  InvokeArgs invoke;
  LogsArgs logs;
  DoctorArgs doctor;
};

struct KilnEnvironment {
  std::string endpoint;  // $KILN_ENDPOINT
  std::string token;  // $KILN_TOKEN
};
KilnEnvironment kiln_environment();

// Reads a whole file; its errors carry errno (exit 1).
using FileReader = std::function<Result<std::string>(const std::string& path)>;
Result<std::string> read_whole_file(const std::string& path);

// `args` without argv[0]. `read_file` reads `deploy --file` (at its place among the flags).
Result<KilnCommand> parse_kiln_args(const std::vector<std::string>& args, const KilnEnvironment& env,
                                    const FileReader& read_file = read_whole_file);
// 1 for an error that carries errno (a file that could not be read), else 2 (usage).
int exit_code_of(const Error& e);
std::string kiln_usage();
// The usage of the command `args` names (for a usage error), else kiln_usage().
std::string kiln_usage_for(const std::vector<std::string>& args);

// The default endpoint without $KILN_ENDPOINT.
inline constexpr const char* kDefaultEndpoint = "127.0.0.1:8900";
// kilnd answers at most this many log lines by default (logs --limit).
inline constexpr std::uint64_t kDefaultLogLimit = 1000;

}  // namespace kiln::kilnd::cli
