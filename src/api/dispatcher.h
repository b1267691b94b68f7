// Dispatcher: kilnd's routes and their handlers (Envoy's admin-handler shape: the daemon adds
// each route with the resource object that answers it; the dispatcher holds no resource).
// Per request: parse the target, match a route, resolve the caller (authentication + tenant)
// unless the route is open, check the {name} parameter, then call the route's handler.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "src/api/caller.h"
#include "src/server/http_server.h"
#include "src/server/router.h"
#include "src/tenants/authenticator.h"

namespace kiln::kilnd::api {

// One routed request.
struct Call {
  Caller caller;  // empty on open routes
  server::Target target;
  std::map<std::string, std::string> params;  // path parameters
  std::string name;  // {name}: the user's function name, already checked
};

// A handler that answers (or streams) itself, and one whose answer is computed at once.
using AsyncHandler = std::function<asio::awaitable<void>(server::Exchange& ex, const Call& call)>;
using SyncHandler = std::function<server::Response(const server::Request& req, const Call& call)>;
// How a route refuses a malformed {name}: the answer for `problem` ("must not contain '/'").
using NameRefusal = server::Response (*)(const server::Request& req, const std::string& problem);

struct RouteOptions {
  bool open = false;  // answered without authentication (/healthz)
  NameRefusal bad_name = nullptr;  // nullptr: kiln's 400 invalid_field "name"
};

class Dispatcher {
 public:
  // `auth` is read on every request (kilnd replaces its tenants in place on SIGHUP).
  explicit Dispatcher(const tenants::Authenticator& auth) : auth_(auth) {}

  // `method` "*" matches any method; patterns as server::Router's.
  void add(std::string method, std::string_view pattern, AsyncHandler handler, RouteOptions options = {});
  void add(std::string method, std::string_view pattern, SyncHandler handler, RouteOptions options = {});

  asio::awaitable<void> handle(server::Exchange& ex) const;

 private:
  struct Route {
    AsyncHandler async;
    SyncHandler sync;
    RouteOptions options;
  };
  const tenants::Authenticator& auth_;
  server::Router router_;
  std::vector<Route> routes_;  // by router id
};

}  // namespace kiln::kilnd::api
