// Frame format shared by kiln-init and the host on vsock ports 10000 (control) and 10001
// (events), and on the config drive: an 8-byte header then a length-capped payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace kiln::protocol {

// Header layout (all integers little-endian):
//   offset 0  u8  magic0 = 'K' (0x4B)
//   offset 1  u8  magic1 = 'F' (0x46)
//   offset 2  u8  version = 1
//   offset 3  u8  type (FrameType)
//   offset 4  u32 payload length in bytes (<= kMaxPayload)
//   offset 8  payload
inline constexpr std::size_t kHeaderSize = 8;
inline constexpr std::uint8_t kMagic0 = 0x4B;
inline constexpr std::uint8_t kMagic1 = 0x46;
inline constexpr std::uint8_t kVersion = 1;
// Hard cap on a payload: a frame announcing more is a protocol error (the stream cannot be
// resynchronised, so the receiver drops the connection).
inline constexpr std::uint32_t kMaxPayload = 256 * 1024;

enum class FrameType : std::uint8_t {
  // host -> agent, port 10000 (requests; each gets exactly one reply frame)
  kLaunchSpec = 1,  // payload: LaunchSpec record; reply kAck
  kStatusRequest = 2,  // empty payload; reply kStatus
  kIdentity = 3,  // after snapshot restore: hostname, instance id, wall clock; reply kAck
  kShutdown = 4,  // graceful stop (optional grace_ms); reply kAck, then the VM reboots
  // agent -> host, port 10000 (replies)
  kAck = 5,
  kStatus = 6,
  // agent -> host, port 10001 (events, each with a sequence number "seq")
  kHello = 16,  // sent first on every (re)connection
  kReady = 17,  // 127.0.0.1:port accepted a connection
  kNotReady = 18,  // the port did not accept within the ready timeout
  kLog = 19,  // one (possibly split) stdout/stderr line with a timestamp
  kExit = 20,  // the command exited (code or signal)
  kDropped = 21,  // log lines were dropped because the buffer was full
};

// True for every type listed above; decoders reject nothing by type (callers decide), but
// this lets a receiver answer "unknown frame type" instead of guessing.
bool is_known_frame_type(std::uint8_t type);
const char* frame_type_name(FrameType type);

struct Frame {
  FrameType type = FrameType::kAck;
  std::string payload;
};

// Encodes header + payload. Fails if the payload exceeds kMaxPayload.
Result<std::string> encode_frame(FrameType type, std::string_view payload);
void append_frame_header(std::string& out, FrameType type, std::uint32_t length);

enum class DecodeState { kFrame, kNeedMore };

// Pure, single-frame decode from the start of `bytes`. On kFrame, *consumed is the frame's
// total size. Errors: bad magic, unsupported version, length over the cap. Unknown types are
// returned as-is (the type byte is preserved) so the receiver can reply with an error.
struct DecodeResult {
  DecodeState state = DecodeState::kNeedMore;
  Frame frame;
  std::size_t consumed = 0;
};
Result<DecodeResult> decode_frame(std::string_view bytes);

// Accumulates a byte stream and yields complete frames. After an error it stays failed.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::uint32_t max_payload = kMaxPayload) : max_payload_(max_payload) {}
  // Appends bytes; fails (and latches the error) if the buffered data can no longer be a frame.
  Status feed(std::string_view bytes);
  // Next complete frame, if any. Errors are reported by feed().
  bool next(Frame* out);
  std::size_t buffered() const { return buf_.size() - pos_; }
  // Latched once the stream is known to be corrupt (bad magic/version, oversized length).
  bool failed() const { return failed_; }
  const std::string& failure() const { return failure_; }

 private:
  void fail(const Error& e) {
    failed_ = true;
    failure_ = e.message;
  }
  std::uint32_t max_payload_;
  std::string buf_;
  std::size_t pos_ = 0;
  bool failed_ = false;
  std::string failure_;
};

}  // namespace kiln::protocol
