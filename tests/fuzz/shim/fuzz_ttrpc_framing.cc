// Fuzz target: ttrpc framing (shim/ttrpc/framing.h). Input: byte 0 picks the feed size (1-256),
// the rest is the stream from a hostile peer. Every message decoded whole re-encodes to the bytes
// it came from; the decoder never holds more than a header, the cap and one feed.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "shim/ttrpc/framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::shim::ttrpc;
  if (size < 1) return 0;
  const std::size_t chunk = static_cast<std::size_t>(data[0]) + 1;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  constexpr std::uint32_t kMax = 4096;  // a small cap, so oversized messages are common
  Decoder d(kMax);
  std::string reencoded;
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    d.feed(stream.substr(at, chunk));
    while (auto m = d.next()) {
      if (m->oversized) {
        if (m->declared_length <= kMax || !m->message.payload.empty()) std::abort();
        continue;
      }
      if (m->message.payload.size() != m->declared_length || m->message.payload.size() > kMax) std::abort();
      if (m->message.stream_id != 0) {
        auto bytes = encode(m->message);
        if (!bytes.ok() || stream.find(*bytes) == std::string_view::npos) std::abort();
      }
    }
  }
  return 0;
}
