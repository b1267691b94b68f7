// Router: maps (method, raw path) to a handler id with captured path parameters. Patterns are
// '/'-separated: literal segments, "{name}" (one segment, percent-decoded, so "%2F" stays
// inside it) and a final "{*name}" (the rest, left as sent).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::kilnd::server {

struct RouteMatch {
  int route = -1;  // the id given to add()
  std::map<std::string, std::string> params;
};

enum class MatchStatus { kFound, kNotFound, kMethodNotAllowed };

class Router {
 public:
  // method "*" matches any method.
  void add(std::string method, std::string_view pattern, int route);
  MatchStatus match(std::string_view method, std::string_view path, RouteMatch* out) const;
  // Methods allowed on a path (for the Allow header of a 405).
  std::vector<std::string> allowed(std::string_view path) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    int id;
  };
  static bool match_route(const Route& r, const std::vector<std::string>& segs, RouteMatch* out);
  std::vector<Route> routes_;
};

// Splits "/a/b?x=1&y" into path and query parameters (both percent-decoded; '+' is a space
// in the query). Malformed escapes make the whole target invalid (nullopt).
struct Target {
  std::string path;
  std::string raw_path;  // undecoded, as sent
  std::string raw_query;  // undecoded, without '?'
  std::map<std::string, std::string> query;
};
std::optional<Target> parse_target(std::string_view target);
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

}  // namespace kiln::kilnd::server
