// The verifier (chunk_verifier.h): check sizes first, decompress into a buffer of exactly the
// chunk's length, then compare the SHA-256.
#include "rootfs-builder/chunks/chunk_verifier.h"

#include <zstd.h>

#include <memory>

namespace kiln::rootfs::chunks {
namespace {

Error chunk_error(uint64_t i, const std::string& what) {
  return make_error("chunk " + std::to_string(i) + ": " + what);
}

}  // namespace

Result<std::string> verify_chunk(const ChunkIndex& index, uint64_t i, std::string_view compressed) {
  if (i >= index.entries.size()) return chunk_error(i, "out of range");
  const ChunkEntry& e = index.entries[i];
  if (e.zero()) return chunk_error(i, "is a zero chunk (nothing stored)");
  if (compressed.size() != e.length) {
    return chunk_error(i, std::to_string(compressed.size()) + " compressed bytes, the index says " +
                              std::to_string(e.length));
  }
  const uint32_t want = index.chunk_length(i);
  // The frame header's content size, when present, must already agree (a cheap early refusal).
  const unsigned long long declared = ZSTD_getFrameContentSize(compressed.data(), compressed.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return chunk_error(i, "not a zstd frame");
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != want) {
    return chunk_error(i, "frame declares " + std::to_string(declared) + " bytes, want " + std::to_string(want));
  }
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), &ZSTD_freeDCtx);
  if (!dctx) return make_error("zstd: out of memory");
  // One-shot decompression into `want` bytes: output past the chunk's length is an error
  // (dstSize_tooSmall), never an allocation.
  std::string out(want, '\0');
  const size_t n = ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), compressed.data(), compressed.size());
  if (ZSTD_isError(n)) return chunk_error(i, std::string("zstd: ") + ZSTD_getErrorName(n));
  if (n != want) return chunk_error(i, "decompresses to " + std::to_string(n) + " bytes, want " + std::to_string(want));
  const RawSha256 got = raw_sha256(out);
  if (got != e.sha256) {
    return chunk_error(i, "digest " + digest_of(got).str() + " does not match the index (" +
                              digest_of(e.sha256).str() + ")");
  }
  return out;
}

Result<std::string> read_chunk(const ChunkIndex& index, uint64_t i, std::string_view data_blob) {
  if (i >= index.entries.size()) return chunk_error(i, "out of range");
  const ChunkEntry& e = index.entries[i];
  if (e.zero()) return std::string(index.chunk_length(i), '\0');
  if (e.offset > data_blob.size() || e.length > data_blob.size() - e.offset) {
    return chunk_error(i, "lies past the end of the data blob");
  }
  return verify_chunk(index, i, data_blob.substr(e.offset, e.length));
}

}  // namespace kiln::rootfs::chunks
