// Building guest requests (event and web) and cleaning guest answers.
#include "src/invoke/guest_request.h"

#include <random>

namespace kiln::kilnd::invoke {

bool is_hop_by_hop(std::string_view n) {
  // RFC 9110 §7.6.1 (Connection and the fields it names) plus the classic list.
  for (std::string_view h : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
                             "upgrade", "proxy-authenticate", "proxy-authorization", "content-length", "expect"}) {
    if (beast::iequals(bsv(n), bsv(h))) return true;
  }
  return false;
}

void add_meta_headers(GuestRequest& req, const RequestMeta& meta) {
  req.set("X-Scf-Request-Id", meta.request_id);
  req.set("X-Scf-Name", meta.function);
  req.set("X-Scf-Version", std::to_string(meta.version));
  req.set("X-Scf-Memory", std::to_string(meta.memory_mib));
  req.set("X-Scf-Timeout", std::to_string(meta.timeout_ms));
  req.set("X-Kiln-Request-Id", meta.request_id);
  req.set("X-Kiln-Function", meta.function);
  req.set("X-Kiln-Memory-Mib", std::to_string(meta.memory_mib));
  req.set("X-Kiln-Timeout-Ms", std::to_string(meta.timeout_ms));
  if (meta.deadline_ms) req.set("X-Kiln-Deadline-Ms", std::to_string(meta.deadline_ms));
}

GuestRequest make_event_request(const RequestMeta& meta, std::string event, std::string_view content_type) {
  GuestRequest req{http::verb::post, "/event-invoke", 11};
  req.set(http::field::host, "127.0.0.1:9000");
  req.set(http::field::content_type, bsv(content_type.empty() ? std::string_view("application/json") : content_type));
  add_meta_headers(req, meta);
  req.body() = std::move(event);
  return req;
}

GuestRequest make_web_request(const RequestMeta& meta, const http::request<http::string_body>& incoming,
                              std::string_view path, std::string_view raw_query) {
  std::string target(path.empty() ? std::string_view("/") : path);
  if (!raw_query.empty()) target += "?" + std::string(raw_query);
  GuestRequest req{incoming.method(), target, 11};
  if (incoming.method() == http::verb::unknown) req.method_string(incoming.method_string());
  // Fields named by Connection are hop-by-hop too.
  std::string connection_named = std::string(incoming[http::field::connection]);
  for (const auto& f : incoming) {
    std::string_view name = sv(f.name_string());
    if (is_hop_by_hop(name) || beast::iequals(bsv(name), "host")) continue;
    if (!connection_named.empty() && connection_named.find(std::string(name)) != std::string::npos) continue;
    if (name.size() > 6 && (beast::iequals(bsv(name.substr(0, 6)), "x-scf-") ||
                            (name.size() > 7 && beast::iequals(bsv(name.substr(0, 7)), "x-kiln-")))) {
      continue;  // the client cannot forge request metadata
    }
    req.insert(bsv(name), f.value());
  }
  req.set(http::field::host, std::string(incoming[http::field::host]).empty() ? "127.0.0.1:9000"
                                                                               : std::string(incoming[http::field::host]));
  add_meta_headers(req, meta);
  req.body() = incoming.body();
  return req;
}

http::response<http::string_body> forward_response(const GuestResponse& guest, unsigned version) {
  http::response<http::string_body> res{guest.result(), version};
  for (const auto& f : guest) {
    if (is_hop_by_hop(sv(f.name_string()))) continue;
    res.insert(f.name_string(), f.value());
  }
  res.body() = guest.body();
  return res;
}

std::string new_request_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffull) | 0x0000000000004000ull;  // version 4
  b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull;  // variant 10
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xffffffffffffull));
  return buf;
}

}  // namespace kiln::kilnd::invoke
