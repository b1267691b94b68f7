// Header block with bare LFs -> CRLF, then Beast parses the rest from the stream.
#include "src/invoke/response_reader.h"

namespace kiln::kilnd::invoke {

std::optional<std::size_t> header_block_end(std::string_view data) {
  // The block ends at a LF followed by an empty line: "\n\n" or "\n\r\n".
  for (std::size_t i = data.find('\n'); i != std::string_view::npos; i = data.find('\n', i + 1)) {
    if (i + 1 < data.size() && data[i + 1] == '\n') return i + 2;
    if (i + 2 < data.size() && data[i + 1] == '\r' && data[i + 2] == '\n') return i + 3;
  }
  return std::nullopt;
}

std::string normalize_header_block(std::string_view header) {
  std::string out;
  out.reserve(header.size() + header.size() / 16 + 2);
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (header[i] == '\n' && (i == 0 || header[i - 1] != '\r')) out.push_back('\r');
    out.push_back(header[i]);
  }
  return out;
}

asio::awaitable<beast::error_code> read_response(LocalStream& stream, http::response_parser<http::string_body>& parser,
                                                 ReadInfo* info) {
  ReadInfo ignored;
  if (info == nullptr) info = &ignored;
  // 1. Raw bytes up to the end of the header block (bounded).
  std::string raw;
  beast::error_code ec;
  std::optional<std::size_t> end;
  char chunk[4096];
  while (!(end = header_block_end(raw))) {
    if (raw.size() > kMaxResponseHeaderBytes) co_return http::error::header_limit;
    std::size_t n = co_await stream.async_read_some(asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return ec;
    info->got_bytes = info->got_bytes || n > 0;
    raw.append(chunk, n);
  }
  if (*end > kMaxResponseHeaderBytes) co_return http::error::header_limit;

  // 2. Normalised header + whatever body bytes came with it, then the parser reads on.
  std::string head = normalize_header_block(std::string_view(raw).substr(0, *end));
  beast::flat_buffer buf;
  auto put = [&buf](std::string_view s) {
    auto dst = buf.prepare(s.size());
    asio::buffer_copy(dst, asio::buffer(s.data(), s.size()));
    buf.commit(s.size());
  };
  put(head);
  put(std::string_view(raw).substr(*end));
  parser.header_limit(static_cast<std::uint32_t>(head.size() + 1));
  co_await http::async_read(stream, buf, parser, asio::redirect_error(asio::use_awaitable, ec));
  info->unread = buf.size();
  co_return ec;
}

}  // namespace kiln::kilnd::invoke
