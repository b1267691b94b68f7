// Blocking Beast client over TCP or a Unix socket, with an optional overall deadline and a
// streaming body callback (chunked follow streams).
#include "src/client/http_client.h"

#include "src/server/net.h"

namespace kiln::kilnd::client {
namespace {

using LocalStream = beast::basic_stream<local, asio::any_io_executor, beast::unlimited_rate_policy>;

template <typename Stream>
Result<HttpResult> exchange(asio::io_context& io, Stream& stream, const std::string& host, const std::string& method,
                            const std::string& target, const std::string& body, const RequestOptions& o) {
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, host);
  req.set(http::field::user_agent, "kiln-cli");
  for (const auto& [k, v] : o.headers) req.set(k, v);
  req.body() = body;
  req.keep_alive(false);
  req.prepare_payload();
  if (o.timeout.count() > 0) stream.expires_after(o.timeout);
  beast::error_code ec;
  HttpResult out;
  http::async_write(stream, req, [&ec](beast::error_code e, std::size_t) { ec = e; });
  io.run();
  io.restart();
  if (ec) return make_error("sending the request: " + ec.message());
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  // The parser keeps a reference to the callback (no copy): it must outlive the read.
  bool stop = false;
  auto on_chunk = [&](std::uint64_t, beast::string_view data, beast::error_code&) -> std::size_t {
    if (!stop && !o.on_body(std::string_view(data.data(), data.size()))) stop = true;
    return data.size();
  };
  if (o.on_body) parser.on_chunk_body(on_chunk);
  http::async_read(stream, buf, parser, [&ec](beast::error_code e, std::size_t) { ec = e; });
  io.run();
  // end_of_stream ends a body that runs to the close, never an answer without its header.
  if (ec && (ec != http::error::end_of_stream || !parser.is_header_done())) {
    if (ec == beast::error::timeout) return make_error("timed out waiting for kilnd");
    if (ec == http::error::end_of_stream) return make_error("kilnd closed the connection without an answer");
    return make_error("reading the answer: " + ec.message());
  }
  auto& res = parser.get();
  out.status = res.result_int();
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(f.value());
  }
  if (o.on_body && !res.chunked() && !res.body().empty()) o.on_body(res.body());
  else if (!o.on_body) out.body = std::move(res.body());
  return out;
}

}  // namespace

Result<Endpoint> Endpoint::parse(const std::string& text) {
  Endpoint ep;
  if (text.rfind("unix:", 0) == 0) {
    ep.unix_path = text.substr(5);
  } else if (text.find('/') != std::string::npos && text.rfind("http://", 0) != 0) {
    ep.unix_path = text;
  } else {
    std::string t = text;
    if (t.rfind("http://", 0) == 0) t = t.substr(7);
    while (!t.empty() && t.back() == '/') t.pop_back();
    auto colon = t.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == t.size()) {
      return make_error("endpoint must be host:port, unix:/path or /path (got '" + text + "')");
    }
    ep.host = t.substr(0, colon);
    ep.port = t.substr(colon + 1);
  }
  if (ep.unix_path.empty() && ep.host.empty()) return make_error("empty endpoint");
  return ep;
}

Result<HttpResult> request(const Endpoint& ep, const std::string& method, const std::string& target,
                           const std::string& body, const RequestOptions& options) {
  asio::io_context io;
  beast::error_code ec;
  if (!ep.unix_path.empty()) {
    LocalStream stream(io);
    stream.socket().connect(local::endpoint(ep.unix_path), ec);
    if (ec) return make_error("cannot connect to kilnd at " + ep.unix_path + ": " + ec.message());
    return exchange(io, stream, "localhost", method, target, body, options);
  }
  tcp::resolver resolver(io);
  auto results = resolver.resolve(ep.host, ep.port, ec);
  if (ec) return make_error("cannot resolve " + ep.host + ": " + ec.message());
  beast::tcp_stream stream(io);
  stream.connect(results, ec);
  if (ec) return make_error("cannot connect to kilnd at " + ep.host + ":" + ep.port + ": " + ec.message());
  return exchange(io, stream, ep.host + ":" + ep.port, method, target, body, options);
}

}  // namespace kiln::kilnd::client
