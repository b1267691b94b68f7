// The names of the two runtime APIs.
#include "src/registry/runtime_api.h"

namespace kiln::kilnd::registry {

const char* runtime_api_name(RuntimeApi api) {
  switch (api) {
    case RuntimeApi::kHttp9000: return "http9000";
    case RuntimeApi::kLambda: return "lambda";
  }
  return "unknown";
}

std::optional<RuntimeApi> parse_runtime_api(std::string_view text) {
  for (auto api : {RuntimeApi::kHttp9000, RuntimeApi::kLambda}) {
    if (text == runtime_api_name(api)) return api;
  }
  return std::nullopt;
}

}  // namespace kiln::kilnd::registry
