// Shared kiln-dialect answers.
#include "src/api/responses.h"

#include <string>

#include <nlohmann/json.hpp>

namespace kiln::kilnd::api {

server::Response function_not_found(const server::Request& req, std::string_view name) {
  return server::json_error(req, http::status::not_found, "not_found", "no function named " + std::string(name));
}

server::Response quota_exceeded(const server::Request& req, std::string_view quota, std::string_view message,
                                bool retry) {
  auto res = server::json_response(req, http::status::too_many_requests,
                                   {{"error", "quota_exceeded"}, {"quota", quota}, {"message", message}});
  if (retry) res.set(http::field::retry_after, "1");
  return res;
}

server::Response shutting_down(const server::Request& req) {
  return server::json_error(req, http::status::service_unavailable, "stopping", "kilnd is shutting down");
}

}  // namespace kiln::kilnd::api
