// Reads a function server's HTTP answer, tolerating bare-LF line endings in its status line and
// headers (hand-written servers often send "\n" where RFC 9112 §2.2 asks for CRLF; curl and
// browsers accept it, so kilnd does too). The header block is normalised to CRLF before Beast
// parses it; the body is passed through unchanged.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "src/server/net.h"

namespace kiln::kilnd::invoke {

using LocalStream = beast::basic_stream<local, asio::any_io_executor, beast::unlimited_rate_policy>;

inline constexpr std::size_t kMaxResponseHeaderBytes = 64 * 1024;

// Index just past the blank line that ends the header block ("\n\n", "\r\n\r\n" or a mix), or
// nullopt when `data` does not hold a complete header block yet.
std::optional<std::size_t> header_block_end(std::string_view data);

// The header block with every bare LF turned into CRLF (CRLF pairs are kept as they are).
std::string normalize_header_block(std::string_view header);

// What a read saw of the stream, beyond the parsed response.
struct ReadInfo {
  bool got_bytes = false;  // anything arrived at all (a kept-alive stream the server had closed: nothing)
  std::size_t unread = 0;  // bytes that arrived after the response (a stream with any is not reusable)
};

// Reads one response into `parser` (its body limit applies). Errors: beast::error::timeout
// (the stream's deadline), http::error::body_limit, http::error::header_limit (header block
// over kMaxResponseHeaderBytes), or whatever the stream or parser reports.
asio::awaitable<beast::error_code> read_response(LocalStream& stream, http::response_parser<http::string_body>& parser,
                                                 ReadInfo* info = nullptr);

}  // namespace kiln::kilnd::invoke
