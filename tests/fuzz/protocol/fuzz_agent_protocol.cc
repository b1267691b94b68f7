// Fuzz target: the guest agent's wire formats (common/protocol): frame decoding (one-shot and
// streaming), every typed message payload, the launch spec and the config drive. Decoded
// values must re-encode, and re-encoding must be stable (encode(decode(encode(x))) ==
// encode(x)). Input: a chunk-size byte for the streaming decoder, then the bytes.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/protocol/frame.h"
#include "common/protocol/hybrid_vsock.h"
#include "common/protocol/launch_spec.h"
#include "common/protocol/messages.h"
#include "tests/fuzz/support/fuzz_input.h"

namespace kiln::fuzz {
namespace {

namespace proto = protocol;

// Payload of a frame this module encoded itself.
std::string payload_of(const std::string& frame) {
  auto d = proto::decode_frame(frame);
  KILN_FUZZ_CHECK(d.ok() && d->state == proto::DecodeState::kFrame && d->consumed == frame.size());
  return d->frame.payload;
}

template <typename Decode>
void round_trip(std::string_view payload, Decode decode) {
  auto v = decode(payload);
  if (!v.ok()) return;
  auto enc = proto::encode(*v);
  if (!enc.ok()) return;  // e.g. a decoded value the encoder refuses: not a crash
  auto v2 = decode(payload_of(*enc));
  KILN_FUZZ_CHECK(v2.ok());
  auto enc2 = proto::encode(*v2);
  KILN_FUZZ_CHECK(enc2.ok() && *enc2 == *enc);
}

void launch_spec(std::string_view payload) {
  auto spec = proto::decode_launch_spec(payload);
  if (!spec.ok()) return;
  if (!proto::validate_launch_spec(*spec).ok()) return;
  auto enc = proto::encode_launch_spec(*spec);
  KILN_FUZZ_CHECK(enc.ok());
  auto spec2 = proto::decode_launch_spec(*enc);
  KILN_FUZZ_CHECK(spec2.ok());
  auto enc2 = proto::encode_launch_spec(*spec2);
  KILN_FUZZ_CHECK(enc2.ok() && *enc2 == *enc);
  KILN_FUZZ_CHECK(spec2->argv == spec->argv && spec2->env == spec->env &&
                  spec2->working_dir == spec->working_dir && spec2->user == spec->user &&
                  spec2->port == spec->port && spec2->wall_clock_ns == spec->wall_clock_ns &&
                  spec2->net == spec->net);
  auto drive = proto::encode_config_drive(*spec);
  KILN_FUZZ_CHECK(drive.ok());
  KILN_FUZZ_CHECK(proto::decode_config_drive(*drive + std::string(100, '\0')).ok());
}

void typed_payload(proto::FrameType type, std::string_view p) {
  using proto::FrameType;
  switch (type) {
    case FrameType::kLaunchSpec: launch_spec(p); break;
    case FrameType::kStatusRequest: break;
    case FrameType::kIdentity: round_trip(p, proto::decode_identity); break;
    case FrameType::kShutdown: round_trip(p, proto::decode_shutdown); break;
    case FrameType::kAck: round_trip(p, proto::decode_ack); break;
    case FrameType::kStatus: round_trip(p, proto::decode_status); break;
    case FrameType::kHello: round_trip(p, proto::decode_hello); break;
    case FrameType::kReady: round_trip(p, proto::decode_ready); break;
    case FrameType::kNotReady: round_trip(p, proto::decode_not_ready); break;
    case FrameType::kLog: round_trip(p, proto::decode_log); break;
    case FrameType::kExit: round_trip(p, proto::decode_exit); break;
    case FrameType::kDropped: round_trip(p, proto::decode_dropped); break;
  }
}

}  // namespace
}  // namespace kiln::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::fuzz;
  namespace proto = kiln::protocol;
  FuzzInput in(data, size);
  size_t chunk = size_t{in.u8()} + 1;
  std::string_view bytes = as_text(in.rest());

  // One-shot decode: a frame re-encodes to exactly the bytes it came from.
  auto one = proto::decode_frame(bytes);
  if (one.ok() && one->state == proto::DecodeState::kFrame) {
    KILN_FUZZ_CHECK(one->consumed <= bytes.size());
    KILN_FUZZ_CHECK(one->consumed == proto::kHeaderSize + one->frame.payload.size());
    auto enc = proto::encode_frame(one->frame.type, one->frame.payload);
    KILN_FUZZ_CHECK(enc.ok() && *enc == bytes.substr(0, one->consumed));
    (void)proto::frame_type_name(one->frame.type);
  }

  // Streaming decode in fuzz-chosen chunks: yields the frames one-shot decoding finds.
  proto::FrameDecoder decoder;
  std::string_view left = bytes;
  size_t offset = 0;  // where the next frame starts in `bytes`
  while (!left.empty() && !decoder.failed()) {
    std::string_view piece = left.substr(0, chunk);
    left.remove_prefix(piece.size());
    if (!decoder.feed(piece).ok()) break;
    proto::Frame f;
    while (decoder.next(&f)) {
      auto ref = proto::decode_frame(bytes.substr(offset));
      KILN_FUZZ_CHECK(ref.ok() && ref->state == proto::DecodeState::kFrame);
      KILN_FUZZ_CHECK(ref->frame.type == f.type && ref->frame.payload == f.payload);
      offset += ref->consumed;
      if (proto::is_known_frame_type(static_cast<uint8_t>(f.type))) typed_payload(f.type, f.payload);
    }
  }

  // The whole input as each payload kind, and as a config drive / hybrid vsock reply.
  launch_spec(bytes);
  round_trip(bytes, proto::decode_log);
  round_trip(bytes, proto::decode_status);
  round_trip(bytes, proto::decode_exit);
  round_trip(bytes, proto::decode_hello);
  (void)proto::decode_config_drive(bytes);
  auto reply = proto::parse_hybrid_reply(bytes);
  if (reply.ok() && reply->complete) KILN_FUZZ_CHECK(reply->consumed <= bytes.size());
  return 0;
}
