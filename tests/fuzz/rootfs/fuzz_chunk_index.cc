// Fuzz target: the chunk index parser (rootfs-builder/chunks/chunk_index.h) and the chunk
// verifier. Input: a selector byte, then the bytes. Even selector: the rest is an index; a
// parsed index must re-encode to exactly the input (one index, one encoding, one digest) and
// hold its invariants. Odd selector: the rest is a frame for chunk 0 of a one-chunk 4 KiB index;
// whatever it is, the verifier returns either an error or exactly the pinned 4 KiB.
#include <cstdint>
#include <string>
#include <string_view>

#include "rootfs-builder/chunks/chunk_index.h"
#include "rootfs-builder/chunks/chunk_verifier.h"
#include "tests/fuzz/support/fuzz_input.h"

namespace kiln::fuzz {
namespace {

namespace chunks = kiln::rootfs::chunks;

void check_index(std::string_view bytes) {
  auto index = chunks::parse(bytes);
  if (!index.ok()) return;
  KILN_FUZZ_CHECK(chunks::encode(*index) == bytes);
  KILN_FUZZ_CHECK(index->entries.size() == chunks::chunk_count(index->image_size, index->chunk_size));
  for (const chunks::ChunkEntry& e : index->entries) {
    KILN_FUZZ_CHECK(e.length <= chunks::max_frame_bytes(index->chunk_size));
    KILN_FUZZ_CHECK(e.offset <= index->data_size && e.length <= index->data_size - e.offset);
  }
}

// The pinned content of the one-chunk index: "kiln" repeated (the seed frames compress it).
const std::string& pinned() {
  static const std::string content = [] {
    std::string s;
    while (s.size() < chunks::kMinChunkSize) s += "kiln";
    return s;
  }();
  return content;
}

void check_frame(std::string_view frame) {
  chunks::ChunkIndex index;
  index.chunk_size = chunks::kMinChunkSize;
  index.image_size = chunks::kMinChunkSize;
  index.data_size = frame.size();
  index.entries.push_back({chunks::raw_sha256(pinned()), 0, static_cast<uint32_t>(frame.size())});
  auto out = chunks::verify_chunk(index, 0, frame);
  if (out.ok()) KILN_FUZZ_CHECK(*out == pinned());
}

}  // namespace
}  // namespace kiln::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::fuzz::FuzzInput in(data, size);
  const uint8_t sel = in.u8();
  const std::string_view rest = kiln::fuzz::as_text(in.rest());
  if (sel % 2 == 0) {
    kiln::fuzz::check_index(rest);
  } else {
    kiln::fuzz::check_frame(rest);
  }
  return 0;
}
