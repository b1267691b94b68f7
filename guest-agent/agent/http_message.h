// HttpMessageReader: a bounded, incremental HTTP/1.1 request reader for kiln-init's Lambda
// bridge (requests from kilnd and from the function's runtime). Debian packages no static
// HTTP parser (no libllhttp-dev, no libhttp-parser .a), so this is the small subset needed:
// request line, headers, a Content-Length body. Chunked bodies are refused (411), as are
// heads over the limit (431), bodies over the limit (413) and malformed framing (400).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::agent {

struct HttpRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent
  std::string body;
  bool keep_alive = true;  // HTTP/1.1 without "Connection: close"

  // The value of the one header named `name` (case-insensitive); nullopt if absent.
  std::optional<std::string_view> header(std::string_view name) const;
};

class HttpMessageReader {
 public:
  enum class State { kNeedMore, kRequest, kError };
  struct Limits {
    std::size_t max_head = 16 * 1024;
    std::size_t max_headers = 64;
    std::size_t max_body = 6 * 1024 * 1024;
  };

  explicit HttpMessageReader(Limits limits) : limits_(limits) {}

  // Appends bytes. At most room() are taken: a caller reads no more than that from its socket
  // (bytes past it are dropped, which would desynchronise the stream), and polls when it is 0.
  void feed(std::string_view bytes);
  std::size_t room() const;
  // kRequest: take() returns it and the reader moves on to the next request (pipelined bytes
  // stay). kError: error_status()/error_text() say why; the connection must be closed after
  // answering. oversize_body(): the error is a body over max_body (its head is in head_only()).
  State poll();
  HttpRequest take();
  int error_status() const { return error_status_; }
  const std::string& error_text() const { return error_text_; }
  bool oversize_body() const { return error_status_ == 413 && head_parsed_; }
  const HttpRequest& head_only() const { return current_; }
  // After an oversize-body error: drop that body as it arrives, then read the next request
  // (so the client reads its 413 instead of a reset while it is still sending).
  void skip_oversize_body();
  std::size_t buffered() const { return buf_.size(); }

 private:
  State fail(int status, std::string text);
  bool parse_head(std::string_view head);

  Limits limits_;
  std::string buf_;
  HttpRequest current_;
  bool head_parsed_ = false;
  std::size_t body_length_ = 0;
  std::size_t discard_ = 0;  // bytes of a refused body still to drop
  int error_status_ = 0;
  std::string error_text_;
};

// "HTTP/1.1 <status> <reason>\r\n" + headers + Content-Length + "\r\n" + body.
std::string format_http_response(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                                 std::string_view body, bool close = false);

}  // namespace kiln::agent
