// The `kiln` command's error lines and notices (see kiln_output.h).
#include "src/cli/kiln_output.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "rootfs-builder/registry/error_hints.h"

namespace kiln::kilnd::cli {
namespace {

std::string first_string(const nlohmann::json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = j.find(k);
    if (it != j.end() && it->is_string() && !it->get<std::string>().empty()) return it->get<std::string>();
  }
  return {};
}

}  // namespace

std::string api_error_line(const client::HttpResult& r) {
  std::string type;
  if (auto h = r.headers.find("x-amzn-errortype"); h != r.headers.end()) {
    type = h->second.substr(0, h->second.find(':'));  // AWS may append ":<doc URL>"
  }
  std::string message = r.body;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object()) {
    if (type.empty()) type = first_string(j, {"error", "errorType", "__type", "Type"});
    if (std::string m = first_string(j, {"message", "errorMessage", "Message"}); !m.empty()) message = m;
  }
  while (!message.empty() && message.back() == '\n') message.pop_back();
  std::string line = std::to_string(r.status);
  if (!type.empty()) line += " " + type + ":";
  if (!message.empty()) line += " " + message;
  return line;
}

std::optional<std::string> logs_limit_notice(std::string_view body, std::uint64_t limit) {
  const auto lines = static_cast<std::uint64_t>(std::count(body.begin(), body.end(), '\n'));
  if (limit == 0 || lines < limit) return std::nullopt;
  return "kiln: showing the newest " + std::to_string(limit) +
         " lines; older ones with --limit N (up to 100000), or narrow with --since TIME / --request-id ID";
}

std::optional<std::string> network_summary(const nlohmann::json& config) {
  auto network = config.find("network");
  if (network == config.end() || !network->is_object()) return std::nullopt;
  auto mode = network->find("mode");
  std::string line = "network: " + (mode != network->end() && mode->is_string() ? mode->get<std::string>()
                                                                                  : std::string("kilnd's default mode"));
  for (const char* key : {"allow", "deny", "dns"}) {
    auto list = network->find(key);
    if (list == network->end() || !list->is_array() || list->empty()) continue;
    line += std::string("; ") + key;
    const char* sep = " ";
    for (const auto& entry : *list) {
      line += sep + (entry.is_string() ? entry.get<std::string>() : entry.dump());
      sep = ", ";
    }
  }
  return line;
}

std::string with_kiln_flag_hints(const std::string& reason) {
  static constexpr rootfs::FrontEndFlags kKilnFlags{"deploy with --username U --password P",
                                                    "deploy with --insecure-registry"};
  return rootfs::add_flag_hints(reason, kKilnFlags);
}

}  // namespace kiln::kilnd::cli
