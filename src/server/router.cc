// Path routing with parameters, and request-target parsing (path, query).
#include "src/server/router.h"

namespace kiln::kilnd::server {
namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  if (!path.empty() && path[0] == '/') pos = 1;
  while (pos <= path.size()) {
    auto next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    out.emplace_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  return out;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex(s[i + 1]);
      int lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<Target> parse_target(std::string_view target) {
  if (target.empty() || target[0] != '/') return std::nullopt;
  Target t;
  auto q = target.find('?');
  t.raw_path = std::string(target.substr(0, q));
  auto path = percent_decode(t.raw_path, false);
  if (!path) return std::nullopt;
  t.path = *path;
  if (q != std::string_view::npos) {
    t.raw_query = std::string(target.substr(q + 1));
    std::string_view rest = t.raw_query;
    while (!rest.empty()) {
      auto amp = rest.find('&');
      std::string_view kv = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      if (kv.empty()) continue;
      auto eq = kv.find('=');
      auto k = percent_decode(kv.substr(0, eq), true);
      auto v = percent_decode(eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1), true);
      if (!k || !v) return std::nullopt;
      t.query[*k] = *v;
    }
  }
  return t;
}

void Router::add(std::string method, std::string_view pattern, int route) {
  routes_.push_back(Route{std::move(method), split_path(pattern), route});
}

bool Router::match_route(const Route& r, const std::vector<std::string>& segs, RouteMatch* out) {
  RouteMatch m;
  m.route = r.id;
  for (std::size_t i = 0; i < r.segments.size(); ++i) {
    const std::string& p = r.segments[i];
    if (p.size() > 3 && p.compare(0, 2, "{*") == 0 && p.back() == '}') {
      if (i + 1 != r.segments.size()) return false;
      std::string rest;
      for (std::size_t j = i; j < segs.size(); ++j) {
        if (j > i) rest += '/';
        rest += segs[j];
      }
      m.params[p.substr(2, p.size() - 3)] = rest;
      *out = std::move(m);
      return true;
    }
    if (i >= segs.size()) return false;
    if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      auto decoded = percent_decode(segs[i], false);
      if (segs[i].empty() || !decoded) return false;
      m.params[p.substr(1, p.size() - 2)] = *decoded;
    } else if (p != segs[i]) {
      return false;
    }
  }
  if (segs.size() != r.segments.size()) return false;
  *out = std::move(m);
  return true;
}

MatchStatus Router::match(std::string_view method, std::string_view path, RouteMatch* out) const {
  auto segs = split_path(path);
  bool path_matched = false;
  for (const auto& r : routes_) {
    RouteMatch m;
    if (!match_route(r, segs, &m)) continue;
    path_matched = true;
    if (r.method == "*" || r.method == method) {
      *out = std::move(m);
      return MatchStatus::kFound;
    }
  }
  return path_matched ? MatchStatus::kMethodNotAllowed : MatchStatus::kNotFound;
}

std::vector<std::string> Router::allowed(std::string_view path) const {
  auto segs = split_path(path);
  std::vector<std::string> out;
  for (const auto& r : routes_) {
    RouteMatch m;
    if (match_route(r, segs, &m)) out.push_back(r.method);
  }
  return out;
}

}  // namespace kiln::kilnd::server
