// Which runtime API a function's instances use (issue 18): the function's `runtime_api`
// setting when it has one, else what its image's config says. Pure.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "src/registry/function_config.h"
#include "src/registry/runtime_api.h"

namespace kiln::kilnd::registry {

// The labels that mark a Lambda image: a label with one of these names whose value is anything
// but "false" or "0" (any case; an empty value counts as set).
inline constexpr const char* kLambdaLabels[] = {"lambda", "com.amazonaws.lambda"};

struct RuntimeDecision {
  RuntimeApi api = RuntimeApi::kHttp9000;
  std::string reason;  // why, for logs and status: "setting", "image Env LAMBDA_TASK_ROOT", ...
};

// The rules, first match wins:
//   1. the function's setting;
//   2. lambda: the image's Env names LAMBDA_TASK_ROOT or any AWS_LAMBDA_* variable;
//   3. lambda: a label of kLambdaLabels set (above);
//   4. http9000.
// Only the image's own config counts: the function's `env` is what the user set, not what the
// image was built for.
RuntimeDecision detect_runtime_api(const std::optional<RuntimeApi>& setting, const std::vector<std::string>& image_env,
                                   const std::map<std::string, std::string>& image_labels);
RuntimeDecision detect_runtime_api(const FunctionRecord& record);

}  // namespace kiln::kilnd::registry
