// Log queries and follow streams.
#include "src/api/logs_api.h"

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "src/api/responses.h"

namespace kiln::kilnd::api {

asio::awaitable<void> LogsApi::get(server::Exchange& ex, const Call& call) {
  const server::Request& req = ex.request();
  const std::string key = call.caller.key(call.name);
  if (!table_.find(key)) co_return co_await ex.respond(function_not_found(req, call.name));
  const auto& query = call.target.query;
  auto param = [&query](const char* name) -> const std::string* {
    auto it = query.find(name);
    return it == query.end() ? nullptr : &it->second;
  };
  logs::LogQuery q;
  if (const std::string* since = param("since")) {
    auto ts = logs::parse_timestamp(*since);
    if (!ts) {
      co_return co_await ex.respond(server::json_error(
          req, http::status::bad_request, "invalid_field",
          "since: must be RFC 3339 UTC (2026-01-02T03:04:05Z) or ms since the epoch", "since"));
    }
    q.since_ns = *ts;
  }
  if (const std::string* id = param("request_id")) q.request_id = *id;
  if (const std::string* limit = param("limit")) {
    char* end = nullptr;
    unsigned long v = std::strtoul(limit->c_str(), &end, 10);
    if (limit->empty() || *end != '\0' || v == 0 || v > 100000) {
      co_return co_await ex.respond(server::json_error(req, http::status::bad_request, "invalid_field",
                                                       "limit: must be an integer from 1 to 100000", "limit"));
    }
    q.limit = v;
  }
  const std::string* format = param("format");
  const std::string* follow = param("follow");
  const bool as_json = format && *format == "json";
  const std::string content_type = as_json ? "application/x-ndjson" : "text/plain; charset=utf-8";
  auto render = [as_json](const logs::LogEntry& e) {
    return as_json ? logs::render_json_line(e) : logs::render_text(e) + "\n";
  };
  std::string first;
  for (const auto& e : logs_.query(key, q)) first += render(e);
  if (!follow || *follow == "0" || *follow == "false") {
    co_return co_await ex.respond(server::make_response(req, http::status::ok, std::move(first), content_type));
  }
  // Subscribed before the first await: no line falls between what matched so far and the new
  // ones. (Unsubscribed on the way out, not by a destructor: a frame destroyed with the loop
  // after kilnd is gone must not touch the log store.)
  auto wake = std::make_shared<asio::steady_timer>(io_);
  auto pending = std::make_shared<std::vector<logs::LogEntry>>();
  const std::uint64_t sub =
      logs_.subscribe(key, [wake, pending, request_filter = q.request_id](const logs::LogEntry& e) {
        if (!request_filter.empty() && e.request_id != request_filter) return;
        pending->push_back(e);
        wake->cancel();
      });
  bool open = co_await ex.start_stream(http::status::ok, content_type);
  if (open && !first.empty()) open = co_await ex.write_chunk(std::move(first));
  if (open) {
    while (!table_.stopping() && table_.find(key)) {
      if (pending->empty()) {
        wake->expires_after(std::chrono::seconds(1));  // also notices stop/delete promptly
        beast::error_code ec;
        co_await wake->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      std::string chunk;
      for (const auto& e : *pending) chunk += render(e);
      pending->clear();
      if (!co_await ex.write_chunk(std::move(chunk))) break;
    }
    co_await ex.end_stream();
  }
  logs_.unsubscribe(sub);
}

}  // namespace kiln::kilnd::api
