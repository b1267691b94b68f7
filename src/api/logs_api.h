// LogsApi: GET /v1/functions/{name}/logs: the recent lines kilnd holds (since, request_id,
// limit; text or NDJSON), or with follow=1 those and then new lines as a chunked stream until
// the client leaves, the function is deleted or kilnd stops.
#pragma once

#include "src/api/dispatcher.h"
#include "src/functions/function_table.h"
#include "src/logs/log_store.h"

namespace kiln::kilnd::api {

class LogsApi {
 public:
  LogsApi(asio::io_context& io, functions::FunctionTable& table, logs::LogStore& logs)
      : io_(io), table_(table), logs_(logs) {}

  asio::awaitable<void> get(server::Exchange& ex, const Call& call);

 private:
  asio::io_context& io_;
  functions::FunctionTable& table_;
  logs::LogStore& logs_;
};

}  // namespace kiln::kilnd::api
