// ttrpc's framing (github.com/containerd/ttrpc, channel.go), the transport between containerd
// and a runtime v2 shim: each message is a 10-byte header then its payload (a protobuf Request,
// Response or stream data), all integers big-endian:
//   offset 0  u32 payload length (at most kMaxMessage)
//   offset 4  u32 stream id (odd: opened by the client; 0 is not a stream)
//   offset 8  u8  type (1 request, 2 response, 3 data)
//   offset 9  u8  flags (0x1 remote closed, 0x2 remote open, 0x4 no data)
// Pure: bytes in, messages out. A message announcing more than the cap has its payload skipped,
// not buffered, and is reported with its header so the server can answer that stream with an
// error (as ttrpc's own server does) and keep the connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace kiln::shim::ttrpc {

inline constexpr std::size_t kHeaderSize = 10;
inline constexpr std::uint32_t kMaxMessage = 4 << 20;  // ttrpc's messageLengthMax

enum class MessageType : std::uint8_t { kRequest = 1, kResponse = 2, kData = 3 };
inline constexpr std::uint8_t kFlagRemoteClosed = 0x1;
inline constexpr std::uint8_t kFlagRemoteOpen = 0x2;
inline constexpr std::uint8_t kFlagNoData = 0x4;

struct Message {
  std::uint32_t stream_id = 0;
  std::uint8_t type = 0;  // MessageType, or whatever the peer sent (the receiver decides)
  std::uint8_t flags = 0;
  std::string payload;
  bool operator==(const Message&) const = default;
};

// Header + payload. Refuses stream id 0 and payloads over kMaxMessage.
Result<std::string> encode(const Message& m);

// One decoded message. `oversized`: the header announced `declared_length` > the cap; the
// payload was skipped and `message.payload` is empty.
struct Decoded {
  Message message;
  bool oversized = false;
  std::uint32_t declared_length = 0;
};

// Accumulates a byte stream and yields messages in order. Call next() until it returns nullopt
// after each feed(): then at most one header, kMaxMessage payload bytes and one feed's bytes are
// buffered, whatever the peer announces.
class Decoder {
 public:
  explicit Decoder(std::uint32_t max_message = kMaxMessage) : max_(max_message) {}
  void feed(std::string_view bytes);
  std::optional<Decoded> next();
  // Part of a message is still to come (a partial header or payload, or payload being skipped).
  bool mid_message() const { return !buffer_.empty() || skip_ > 0; }

 private:
  void drop_skipped();

  std::uint32_t max_;
  std::string buffer_;  // bytes fed and not yet returned
  std::size_t skip_ = 0;  // payload bytes of an oversized message still to drop
};

}  // namespace kiln::shim::ttrpc
