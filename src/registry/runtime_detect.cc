// The runtime API detection rules (see the header).
#include "src/registry/runtime_detect.h"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace kiln::kilnd::registry {
namespace {

bool label_set(std::string_view value) {
  std::string v(value);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return v != "false" && v != "0";
}

}  // namespace

RuntimeDecision detect_runtime_api(const std::optional<RuntimeApi>& setting, const std::vector<std::string>& image_env,
                                   const std::map<std::string, std::string>& image_labels) {
  if (setting) return {*setting, "setting"};
  for (const auto& entry : image_env) {
    std::string_view name = std::string_view(entry).substr(0, entry.find('='));
    if (name == "LAMBDA_TASK_ROOT" || name.starts_with("AWS_LAMBDA_")) {
      return {RuntimeApi::kLambda, "image Env " + std::string(name)};
    }
  }
  for (const char* label : kLambdaLabels) {
    auto it = image_labels.find(label);
    if (it != image_labels.end() && label_set(it->second)) return {RuntimeApi::kLambda, "image label " + it->first};
  }
  return {RuntimeApi::kHttp9000, "default"};
}

RuntimeDecision detect_runtime_api(const FunctionRecord& record) {
  return detect_runtime_api(record.config.runtime_api, record.image.env, record.image.labels);
}

}  // namespace kiln::kilnd::registry
