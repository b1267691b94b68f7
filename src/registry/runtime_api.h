// RuntimeApi: how kiln-init reaches a function (issue 18): SCF's HTTP server on port 9000, or
// the Lambda Runtime API kiln-init serves to the image's runtime client.
#pragma once

#include <optional>
#include <string_view>

namespace kiln::kilnd::registry {

enum class RuntimeApi { kHttp9000, kLambda };

// "http9000" / "lambda": the function setting `runtime_api` and the API's spelling.
const char* runtime_api_name(RuntimeApi api);
std::optional<RuntimeApi> parse_runtime_api(std::string_view text);

}  // namespace kiln::kilnd::registry
