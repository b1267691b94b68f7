// AdminApi: GET /healthz (open: load balancers probe it without a token) and GET /metrics
// (Prometheus text, admins only).
#pragma once

#include "src/api/dispatcher.h"
#include "src/functions/function_table.h"
#include "src/metrics/metrics.h"

namespace kiln::kilnd::api {

class AdminApi {
 public:
  AdminApi(functions::FunctionTable& table, metrics::Metrics& metrics) : table_(table), metrics_(metrics) {}

  server::Response health(const server::Request& req, const Call& call) const;
  server::Response metrics(const server::Request& req, const Call& call);

 private:
  functions::FunctionTable& table_;
  metrics::Metrics& metrics_;
};

}  // namespace kiln::kilnd::api
