// What the `kiln` command prints besides the API's answers: one-line API errors, the notice
// that logs were cut at the limit, a function's network setting, and image failure reasons
// with kiln's own flags as hints.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "src/client/http_client.h"

namespace kiln::kilnd::cli {

// "404 ResourceNotFoundException: Function not found: x". The type comes from the
// X-Amzn-ErrorType header (Lambda), else the body's error / errorType / __type / Type; with
// no type the line is "STATUS MESSAGE", never "STATUS : MESSAGE".
std::string api_error_line(const client::HttpResult& r);

// The last stderr line when a logs answer holds `limit` lines: there may be older ones.
std::optional<std::string> logs_limit_notice(std::string_view body, std::uint64_t limit);

// "network: none; allow 10.1.0.0/16; deny 10.1.2.0/24; dns 10.1.0.53" for a function config
// (the API's "config") with a `network` setting; nullopt without one (kilnd's defaults).
std::optional<std::string> network_summary(const nlohmann::json& config);

// An image failure reason with the registry hints naming kiln's flags (--username/--password,
// --insecure-registry).
std::string with_kiln_flag_hints(const std::string& reason);

}  // namespace kiln::kilnd::cli
