// Health and metrics.
#include "src/api/admin_api.h"

#include <nlohmann/json.hpp>

namespace kiln::kilnd::api {

server::Response AdminApi::health(const server::Request& req, const Call&) const {
  return server::json_response(req, http::status::ok, {{"status", table_.stopping() ? "stopping" : "ok"}});
}

server::Response AdminApi::metrics(const server::Request& req, const Call& call) {
  if (!call.caller.principal.admin) {
    return server::json_error(req, http::status::forbidden, "forbidden", "only an admin may read /metrics");
  }
  table_.publish_gauges();
  return server::make_response(req, http::status::ok, metrics_.render(), "text/plain; version=0.0.4");
}

}  // namespace kiln::kilnd::api
