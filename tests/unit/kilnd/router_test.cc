// Router: literal and parameter segments, the trailing wildcard, 404 vs 405, percent-decoding
// of parameters (an encoded '/' stays inside its segment) and request-target parsing.
#include <gtest/gtest.h>

#include "src/server/router.h"

namespace kiln::kilnd::server {
namespace {

Router make() {
  Router r;
  r.add("GET", "/v1/functions", 1);
  r.add("PUT", "/v1/functions/{name}", 2);
  r.add("GET", "/v1/functions/{name}", 3);
  r.add("*", "/v1/functions/{name}/http/{*path}", 4);
  return r;
}

TEST(Router, MatchesWithParams) {
  Router r = make();
  RouteMatch m;
  ASSERT_EQ(r.match("GET", "/v1/functions", &m), MatchStatus::kFound);
  EXPECT_EQ(m.route, 1);
  ASSERT_EQ(r.match("PUT", "/v1/functions/hello", &m), MatchStatus::kFound);
  EXPECT_EQ(m.route, 2);
  EXPECT_EQ(m.params["name"], "hello");
  ASSERT_EQ(r.match("DELETE", "/v1/functions/hello/http/a/b%20c", &m), MatchStatus::kFound);
  EXPECT_EQ(m.route, 4);
  EXPECT_EQ(m.params["path"], "a/b%20c");  // the rest stays as sent
  ASSERT_EQ(r.match("GET", "/v1/functions/hello/http", &m), MatchStatus::kFound);
  EXPECT_EQ(m.params["path"], "");
  ASSERT_EQ(r.match("GET", "/v1/functions/a%2Fb", &m), MatchStatus::kFound);
  EXPECT_EQ(m.params["name"], "a/b");  // decoded inside its segment; the handler validates it
}

TEST(Router, NotFoundAndMethodNotAllowed) {
  Router r = make();
  RouteMatch m;
  EXPECT_EQ(r.match("GET", "/v1/functions/", &m), MatchStatus::kNotFound);  // empty name
  EXPECT_EQ(r.match("GET", "/v1/nope", &m), MatchStatus::kNotFound);
  EXPECT_EQ(r.match("GET", "/v1/functions/x/y", &m), MatchStatus::kNotFound);
  EXPECT_EQ(r.match("POST", "/v1/functions/x", &m), MatchStatus::kMethodNotAllowed);
  EXPECT_EQ(r.allowed("/v1/functions/x"), (std::vector<std::string>{"PUT", "GET"}));
  EXPECT_EQ(r.match("GET", "/v1/functions/%zz", &m), MatchStatus::kNotFound);  // bad escape
}

TEST(Router, ParseTarget) {
  auto t = parse_target("/a%20b/c?x=1&y=a+b&z=%2F&flag");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->path, "/a b/c");
  EXPECT_EQ(t->raw_path, "/a%20b/c");
  EXPECT_EQ(t->raw_query, "x=1&y=a+b&z=%2F&flag");
  EXPECT_EQ(t->query["x"], "1");
  EXPECT_EQ(t->query["y"], "a b");
  EXPECT_EQ(t->query["z"], "/");
  EXPECT_EQ(t->query.count("flag"), 1u);
  EXPECT_FALSE(parse_target("no-slash").has_value());
  EXPECT_FALSE(parse_target("/%4").has_value());
  EXPECT_FALSE(parse_target("/?a=%G0").has_value());
  EXPECT_FALSE(percent_decode("%", false).has_value());
  EXPECT_EQ(*percent_decode("%41%42", false), "AB");
}

}  // namespace
}  // namespace kiln::kilnd::server
