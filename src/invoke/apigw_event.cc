// API Gateway HTTP API payload format 2.0 (the shape Lambda function URLs send) and the mapping
// of a function's result back to HTTP (Lambda developer guide: "Invoking Lambda function URLs").
#include "src/invoke/apigw_event.h"

#include <cctype>
#include <ctime>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/base64/base64.h"
#include "src/invoke/guest_request.h"
#include "src/server/router.h"

namespace kiln::kilnd::invoke {
namespace {

using nlohmann::json;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && beast::iequals(bsv(s.substr(0, prefix.size())), bsv(prefix));
}

bool valid_utf8(const std::string& s) {
  try {
    (void)json(s).dump();  // nlohmann's strict handler refuses invalid UTF-8
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

bool textual(std::string_view content_type) {
  std::string t = lower(content_type.substr(0, content_type.find(';')));
  t = std::string(trim(t));
  return t.starts_with("text/") || t == "application/json" || t == "application/xml" ||
         t == "application/javascript" || t == "application/x-www-form-urlencoded" || t.ends_with("+json") ||
         t.ends_with("+xml");
}

// "07/Dec/2026:15:21:26 +0000" (API Gateway's requestContext.time).
std::string clf_time(std::uint64_t ms) {
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%02d/%s/%04d:%02d:%02d:%02d +0000", tm.tm_mday, kMonths[tm.tm_mon % 12],
                tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

void join_into(json& obj, const std::string& key, std::string_view value) {
  if (obj.contains(key)) {
    obj[key] = obj[key].get<std::string>() + "," + std::string(value);
  } else {
    obj[key] = std::string(value);
  }
}

// RFC 9110 §5.1 field names are tokens; values carry no CR, LF or NUL.
bool valid_header_name(std::string_view n) {
  if (n.empty()) return false;
  for (unsigned char c : n) {
    bool ok = std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool valid_header_value(std::string_view v) { return v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

// A header value in a result: a string, or a number or boolean written as JSON writes it.
Result<std::string> header_value_text(const json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  return make_error(where + " must be a string");
}

struct HeaderBudget {
  std::size_t count = 0;
  std::size_t bytes = 0;
  Status add(std::string_view name, std::string_view value) {
    if (!valid_header_name(name)) return make_error("header name '" + std::string(name.substr(0, 64)) + "' is not valid");
    if (!valid_header_value(value)) return make_error("header " + std::string(name) + " has CR, LF or NUL in its value");
    if (++count > kMaxResultHeaders) return make_error("more than " + std::to_string(kMaxResultHeaders) + " headers");
    bytes += name.size() + value.size();
    if (bytes > kMaxResultHeaderBytes) {
      return make_error("headers larger than " + std::to_string(kMaxResultHeaderBytes) + " bytes");
    }
    return ok_status();
  }
};

Result<http::response<http::string_body>> structured_response(const json& r, unsigned version) {
  const json& code = r["statusCode"];
  if (!code.is_number_integer()) return make_error("statusCode must be an integer");
  std::int64_t status = code.get<std::int64_t>();
  if (status < 100 || status > 599) return make_error("statusCode " + std::to_string(status) + " is not 100-599");
  http::response<http::string_body> res{static_cast<http::status>(status), version};
  HeaderBudget budget;
  auto add = [&](const std::string& name, const std::string& value) -> Status {
    KILN_TRY(budget.add(name, value));
    if (!is_hop_by_hop(name)) res.insert(bsv(name), bsv(value));
    return ok_status();
  };
  if (r.contains("headers") && !r["headers"].is_null()) {
    if (!r["headers"].is_object()) return make_error("headers must be an object");
    for (const auto& h : r["headers"].items()) {
      KILN_ASSIGN_OR_RETURN(std::string v, header_value_text(h.value(), "headers." + h.key()));
      KILN_TRY(add(h.key(), v));
    }
  }
  if (r.contains("multiValueHeaders") && !r["multiValueHeaders"].is_null()) {
    if (!r["multiValueHeaders"].is_object()) return make_error("multiValueHeaders must be an object");
    for (const auto& h : r["multiValueHeaders"].items()) {
      if (!h.value().is_array()) return make_error("multiValueHeaders." + h.key() + " must be an array");
      for (const auto& one : h.value()) {
        KILN_ASSIGN_OR_RETURN(std::string v, header_value_text(one, "multiValueHeaders." + h.key()));
        KILN_TRY(add(h.key(), v));
      }
    }
  }
  if (r.contains("cookies") && !r["cookies"].is_null()) {
    if (!r["cookies"].is_array()) return make_error("cookies must be an array");
    for (const auto& c : r["cookies"]) {
      if (!c.is_string()) return make_error("cookies must be strings");
      KILN_TRY(add("Set-Cookie", c.get<std::string>()));
    }
  }
  bool base64_body = false;
  if (r.contains("isBase64Encoded") && !r["isBase64Encoded"].is_null()) {
    if (!r["isBase64Encoded"].is_boolean()) return make_error("isBase64Encoded must be a boolean");
    base64_body = r["isBase64Encoded"].get<bool>();
  }
  if (r.contains("body") && !r["body"].is_null()) {
    if (!r["body"].is_string()) return make_error("body must be a string");
    if (base64_body) {
      auto decoded = base64::decode(r["body"].get<std::string>());
      if (!decoded.ok()) return make_error("isBase64Encoded is true but body is not valid base64");
      res.body() = std::move(*decoded);
    } else {
      res.body() = r["body"].get<std::string>();
    }
  }
  res.prepare_payload();
  return res;
}

}  // namespace

std::string make_apigw_event(const http::request<http::string_body>& incoming, std::string_view path,
                             std::string_view raw_query, const WebEventContext& ctx) {
  json headers = json::object();
  json cookies = json::array();
  std::string connection_named = lower(sv(incoming[http::field::connection]));
  for (const auto& f : incoming) {
    std::string name = lower(sv(f.name_string()));
    std::string_view value = sv(f.value());
    if (name == "cookie") {
      for (std::size_t pos = 0; pos <= value.size();) {
        std::size_t semi = value.find(';', pos);
        std::string_view one = trim(value.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos));
        if (!one.empty()) cookies.push_back(std::string(one));
        if (semi == std::string_view::npos) break;
        pos = semi + 1;
      }
      continue;
    }
    if (is_hop_by_hop(name) || starts_with_ci(name, "x-scf-") || starts_with_ci(name, "x-kiln-")) continue;
    if (!connection_named.empty() && connection_named.find(name) != std::string::npos) continue;
    join_into(headers, name, value);
  }
  json query = json::object();
  for (std::size_t pos = 0; pos < raw_query.size();) {
    std::size_t amp = raw_query.find('&', pos);
    std::string_view pair = raw_query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    pos = amp == std::string_view::npos ? raw_query.size() : amp + 1;
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    // A malformed escape is passed on as sent rather than dropping the parameter.
    auto decode = [](std::string_view s) { return server::percent_decode(s, true).value_or(std::string(s)); };
    std::string key = decode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : decode(pair.substr(eq + 1));
    join_into(query, key, value);
  }
  std::string host = std::string(sv(incoming[http::field::host]));
  std::string method = std::string(sv(incoming.method_string()));
  json event = {
      {"version", "2.0"},
      {"routeKey", "$default"},
      {"rawPath", std::string(path.empty() ? std::string_view("/") : path)},
      {"rawQueryString", std::string(raw_query)},
      {"headers", headers},
  };
  if (!cookies.empty()) event["cookies"] = cookies;
  if (!query.empty()) event["queryStringParameters"] = query;
  event["requestContext"] = {
      {"accountId", ctx.account_id},
      {"apiId", ctx.api_id},
      {"domainName", host},
      {"domainPrefix", host.substr(0, host.find('.'))},
      {"http",
       {{"method", method},
        {"path", std::string(path.empty() ? std::string_view("/") : path)},
        {"protocol", incoming.version() == 10 ? "HTTP/1.0" : "HTTP/1.1"},
        {"sourceIp", ctx.source_ip},
        {"userAgent", std::string(sv(incoming[http::field::user_agent]))}}},
      {"requestId", ctx.request_id},
      {"routeKey", "$default"},
      {"stage", "$default"},
      {"time", clf_time(ctx.time_ms)},
      {"timeEpoch", ctx.time_ms},
  };
  const std::string& body = incoming.body();
  if (!body.empty()) {
    bool as_text = textual(sv(incoming[http::field::content_type])) && valid_utf8(body);
    event["body"] = as_text ? body : base64::encode(body);
    event["isBase64Encoded"] = !as_text;
  } else {
    event["isBase64Encoded"] = false;
  }
  // Header values and paths may hold bytes that are not UTF-8: replaced, never thrown.
  return event.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<http::response<http::string_body>> web_response_from_result(std::string_view result, unsigned version) {
  auto fallback = [&]() {
    http::response<http::string_body> res{http::status::ok, version};
    res.set(http::field::content_type, "application/json");
    res.body() = std::string(result);
    res.prepare_payload();
    return res;
  };
  if (trim(result).empty()) return fallback();
  json r = json::parse(result, nullptr, false);
  if (r.is_discarded()) return make_error("the function's result is not JSON");
  if (!r.is_object() || !r.contains("statusCode")) return fallback();
  auto res = structured_response(r, version);
  if (!res.ok()) return make_error("the function's result is not a valid HTTP response: " + res.error().message);
  return res;
}

}  // namespace kiln::kilnd::invoke
