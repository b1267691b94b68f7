// Request dispatch: target, route, caller, {name}, handler.
#include "src/api/dispatcher.h"

#include <utility>
#include <variant>

namespace kiln::kilnd::api {
namespace {

server::Response kiln_bad_name(const server::Request& req, const std::string& problem) {
  return server::json_error(req, http::status::bad_request, "invalid_field", "name: " + problem, "name");
}

}  // namespace

void Dispatcher::add(std::string method, std::string_view pattern, AsyncHandler handler, RouteOptions options) {
  router_.add(std::move(method), pattern, static_cast<int>(routes_.size()));
  routes_.push_back(Route{std::move(handler), nullptr, options});
}

void Dispatcher::add(std::string method, std::string_view pattern, SyncHandler handler, RouteOptions options) {
  router_.add(std::move(method), pattern, static_cast<int>(routes_.size()));
  routes_.push_back(Route{nullptr, std::move(handler), options});
}

asio::awaitable<void> Dispatcher::handle(server::Exchange& ex) const {
  const server::Request& req = ex.request();
  auto target = server::parse_target(sv(req.target()));
  if (!target) {
    co_return co_await ex.respond(
        server::json_error(req, http::status::bad_request, "bad_target", "malformed request target"));
  }
  server::RouteMatch m;
  const server::MatchStatus st = router_.match(sv(req.method_string()), target->raw_path, &m);
  const Route* route = st == server::MatchStatus::kFound ? &routes_.at(static_cast<std::size_t>(m.route)) : nullptr;
  Call call;
  if (!route || !route->options.open) {  // unknown routes too: a 401 before any 404
    auto resolved = resolve_caller(auth_, req, ex.from_unix_socket());
    if (auto* refusal = std::get_if<server::Response>(&resolved)) co_return co_await ex.respond(std::move(*refusal));
    call.caller = std::move(std::get<Caller>(resolved));
  }
  if (st == server::MatchStatus::kNotFound) {
    co_return co_await ex.respond(
        server::json_error(req, http::status::not_found, "not_found", "no such route: " + target->path));
  }
  if (st == server::MatchStatus::kMethodNotAllowed) {
    auto res = server::json_error(req, http::status::method_not_allowed, "method_not_allowed",
                                  std::string(req.method_string()) + " is not allowed on " + target->path);
    std::string allow;
    for (const auto& a : router_.allowed(target->raw_path)) allow += (allow.empty() ? "" : ", ") + a;
    res.set(http::field::allow, allow);
    co_return co_await ex.respond(std::move(res));
  }
  if (auto name = m.params.find("name"); name != m.params.end()) {
    if (auto problem = registry::function_name_problem(name->second)) {
      NameRefusal refuse = route->options.bad_name ? route->options.bad_name : &kiln_bad_name;
      co_return co_await ex.respond(refuse(req, *problem));
    }
    call.name = name->second;
  }
  call.target = std::move(*target);
  call.params = std::move(m.params);
  if (route->sync) co_return co_await ex.respond(route->sync(req, call));
  co_await route->async(ex, call);
}

}  // namespace kiln::kilnd::api
