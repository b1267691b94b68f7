// ttrpc framing (framing.h): header encode/decode, bounded buffering.
#include "shim/ttrpc/framing.h"

#include <algorithm>

namespace kiln::shim::ttrpc {
namespace {

void put_be32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::uint32_t be32(std::string_view b, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<std::uint8_t>(b[at + i]);
  return v;
}

}  // namespace

Result<std::string> encode(const Message& m) {
  if (m.stream_id == 0) return make_error("ttrpc: stream id 0 is not a stream");
  if (m.payload.size() > kMaxMessage) {
    return make_error("ttrpc: message of " + std::to_string(m.payload.size()) + " bytes is over the " +
                      std::to_string(kMaxMessage) + "-byte limit");
  }
  std::string out;
  out.reserve(kHeaderSize + m.payload.size());
  put_be32(out, static_cast<std::uint32_t>(m.payload.size()));
  put_be32(out, m.stream_id);
  out.push_back(static_cast<char>(m.type));
  out.push_back(static_cast<char>(m.flags));
  out.append(m.payload);
  return out;
}

void Decoder::feed(std::string_view bytes) {
  if (buffer_.empty() && skip_ > 0) {
    const std::size_t n = std::min(skip_, bytes.size());
    skip_ -= n;
    bytes.remove_prefix(n);
  }
  buffer_.append(bytes);
}

void Decoder::drop_skipped() {
  const std::size_t n = std::min(skip_, buffer_.size());
  buffer_.erase(0, n);
  skip_ -= n;
}

std::optional<Decoded> Decoder::next() {
  drop_skipped();
  if (skip_ > 0 || buffer_.size() < kHeaderSize) return std::nullopt;
  Decoded d;
  const std::uint32_t length = be32(buffer_, 0);
  d.message.stream_id = be32(buffer_, 4);
  d.message.type = static_cast<std::uint8_t>(buffer_[8]);
  d.message.flags = static_cast<std::uint8_t>(buffer_[9]);
  if (length > max_) {
    d.oversized = true;
    d.declared_length = length;
    buffer_.erase(0, kHeaderSize);
    skip_ = length;
    drop_skipped();
    return d;
  }
  if (buffer_.size() - kHeaderSize < length) return std::nullopt;
  d.declared_length = length;
  d.message.payload = buffer_.substr(kHeaderSize, length);
  buffer_.erase(0, kHeaderSize + length);
  return d;
}

}  // namespace kiln::shim::ttrpc
