// Frame encode/decode: pure functions over bytes; every length is checked against the cap
// before any allocation so a hostile peer cannot make the receiver buffer more than that.
#include "common/protocol/frame.h"

namespace kiln::protocol {

namespace {

std::uint32_t load_le32(const char* p) {
  auto b = [p](int i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])); };
  return b(0) | (b(1) << 8) | (b(2) << 16) | (b(3) << 24);
}

Result<DecodeResult> decode_with_cap(std::string_view bytes, std::uint32_t cap) {
  DecodeResult r;
  // Validate the magic/version as soon as those bytes exist, so garbage fails fast.
  if (bytes.size() >= 1 && static_cast<std::uint8_t>(bytes[0]) != kMagic0) {
    return make_error("frame: bad magic");
  }
  if (bytes.size() >= 2 && static_cast<std::uint8_t>(bytes[1]) != kMagic1) {
    return make_error("frame: bad magic");
  }
  if (bytes.size() >= 3 && static_cast<std::uint8_t>(bytes[2]) != kVersion) {
    return make_error("frame: unsupported version " +
                      std::to_string(static_cast<std::uint8_t>(bytes[2])));
  }
  if (bytes.size() < kHeaderSize) return r;
  std::uint32_t len = load_le32(bytes.data() + 4);
  if (len > cap) {
    return make_error("frame: payload length " + std::to_string(len) + " exceeds cap " +
                      std::to_string(cap));
  }
  // len <= cap <= 2^31, so the sum cannot overflow size_t.
  std::size_t total = kHeaderSize + static_cast<std::size_t>(len);
  if (bytes.size() < total) return r;
  r.state = DecodeState::kFrame;
  r.frame.type = static_cast<FrameType>(static_cast<std::uint8_t>(bytes[3]));
  r.frame.payload.assign(bytes.data() + kHeaderSize, len);
  r.consumed = total;
  return r;
}

}  // namespace

bool is_known_frame_type(std::uint8_t type) {
  return (type >= 1 && type <= 6) || (type >= 16 && type <= 21);
}

const char* frame_type_name(FrameType type) {
  switch (type) {
    case FrameType::kLaunchSpec: return "launch-spec";
    case FrameType::kStatusRequest: return "status-request";
    case FrameType::kIdentity: return "identity";
    case FrameType::kShutdown: return "shutdown";
    case FrameType::kAck: return "ack";
    case FrameType::kStatus: return "status";
    case FrameType::kHello: return "hello";
    case FrameType::kReady: return "ready";
    case FrameType::kNotReady: return "not-ready";
    case FrameType::kLog: return "log";
    case FrameType::kExit: return "exit";
    case FrameType::kDropped: return "dropped";
  }
  return "unknown";
}

void append_frame_header(std::string& out, FrameType type, std::uint32_t length) {
  out.push_back(static_cast<char>(kMagic0));
  out.push_back(static_cast<char>(kMagic1));
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(type));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
}

Result<std::string> encode_frame(FrameType type, std::string_view payload) {
  if (payload.size() > kMaxPayload) {
    return make_error("frame: payload of " + std::to_string(payload.size()) +
                      " bytes exceeds cap " + std::to_string(kMaxPayload));
  }
  std::string out;
  out.reserve(kHeaderSize + payload.size());
  append_frame_header(out, type, static_cast<std::uint32_t>(payload.size()));
  out.append(payload);
  return out;
}

Result<DecodeResult> decode_frame(std::string_view bytes) {
  return decode_with_cap(bytes, kMaxPayload);
}

Status FrameDecoder::feed(std::string_view bytes) {
  if (failed_) return make_error(failure_);
  // Compact before growing so the buffer never holds more than one partial frame + input.
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 64 * 1024) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
  // Validate the header of the first pending frame right away (bad magic, oversize length).
  auto r = decode_with_cap(std::string_view(buf_).substr(pos_), max_payload_);
  if (!r.ok()) {
    fail(r.error());
    return r.error();
  }
  return ok_status();
}

bool FrameDecoder::next(Frame* out) {
  if (failed_) return false;
  auto r = decode_with_cap(std::string_view(buf_).substr(pos_), max_payload_);
  if (!r.ok()) {
    fail(r.error());
    return false;
  }
  if (r->state != DecodeState::kFrame) return false;
  pos_ += r->consumed;
  *out = std::move(r->frame);
  // The following frame's header may already be here: validate it so errors latch early.
  auto following = decode_with_cap(std::string_view(buf_).substr(pos_), max_payload_);
  if (!following.ok()) fail(following.error());
  return true;
}

}  // namespace kiln::protocol
