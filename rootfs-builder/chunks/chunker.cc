// The chunker (chunker.h): pread one chunk, skip it if zero, point it at an earlier copy if its
// content was seen, else compress it into one zstd frame appended to the data blob.
#include "rootfs-builder/chunks/chunker.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <zstd.h>

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "common/io.h"
#include "common/unique_fd.h"

namespace kiln::rootfs::chunks {
namespace {

using CCtx = std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)>;

// Zero iff the first byte is and every byte equals the next (memcmp is the vectorised loop).
bool all_zero(const char* p, size_t n) { return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0); }

Result<CCtx> make_compressor(int level) {
  CCtx c(ZSTD_createCCtx(), &ZSTD_freeCCtx);
  if (!c) return make_error("zstd: out of memory");
  // Content size in every frame (the verifier checks it before decompressing); no zstd
  // checksum (the chunk's SHA-256 covers it); no worker threads (their output is the same,
  // but one thread keeps memory bounded and the code simple).
  for (auto [param, value] : {std::pair{ZSTD_c_compressionLevel, level}, std::pair{ZSTD_c_contentSizeFlag, 1},
                              std::pair{ZSTD_c_checksumFlag, 0}, std::pair{ZSTD_c_nbWorkers, 0}}) {
    const size_t r = ZSTD_CCtx_setParameter(c.get(), param, value);
    if (ZSTD_isError(r)) return make_error(std::string("zstd: ") + ZSTD_getErrorName(r));
  }
  return c;
}

}  // namespace

Result<ChunkedImage> chunk_image(int image_fd, const ChunkOptions& options, const FrameSink& sink) {
  if (!valid_chunk_size(options.chunk_size)) {
    return make_error("chunk size " + std::to_string(options.chunk_size) + " is not a power of two in [4 KiB, 16 MiB]");
  }
  if (options.zstd_level < 1 || options.zstd_level > 19) {
    return make_error("zstd level " + std::to_string(options.zstd_level) + " is not in [1, 19]");
  }
  struct stat st {};
  if (::fstat(image_fd, &st) != 0) return errno_error("fstat image");
  if (!S_ISREG(st.st_mode)) return make_error("image is not a regular file");
  const auto image_size = static_cast<uint64_t>(st.st_size);
  if (image_size == 0 || image_size > kMaxImageSize) return make_error("image size " + std::to_string(image_size) + " is not in [1, 1 TiB]");
  const uint64_t count = chunk_count(image_size, options.chunk_size);
  if (kHeaderBytes + count * kEntryBytes > kMaxIndexBytes) {
    return make_error("image of " + std::to_string(image_size) + " bytes needs more than " +
                      std::to_string(kMaxIndexBytes) + " bytes of index: use a larger chunk size");
  }
  KILN_ASSIGN_OR_RETURN(CCtx cctx, make_compressor(options.zstd_level));

  ChunkedImage out;
  ChunkIndex& index = out.index;
  index.chunk_size = options.chunk_size;
  index.image_size = image_size;
  index.entries.resize(count);
  std::map<RawSha256, uint64_t> first_copy;  // content -> chunk holding its frame
  std::vector<char> in(options.chunk_size);
  std::vector<char> frame(max_frame_bytes(options.chunk_size));
  for (uint64_t i = 0; i < count; ++i) {
    const uint32_t len = index.chunk_length(i);
    KILN_TRY(io::pread_all(image_fd, in.data(), len, i * options.chunk_size, "image"));
    ChunkEntry& e = index.entries[i];
    if (all_zero(in.data(), len)) {
      ++out.stats.zero_chunks;
      continue;
    }
    e.sha256 = raw_sha256(std::string_view(in.data(), len));
    if (auto it = first_copy.find(e.sha256); it != first_copy.end()) {
      e.offset = index.entries[it->second].offset;
      e.length = index.entries[it->second].length;
      ++out.stats.repeated_chunks;
      continue;
    }
    const size_t n = ZSTD_compress2(cctx.get(), frame.data(), frame.size(), in.data(), len);
    if (ZSTD_isError(n)) return make_error("zstd chunk " + std::to_string(i) + ": " + ZSTD_getErrorName(n));
    KILN_TRY(sink(std::string_view(frame.data(), n)));
    e.offset = index.data_size;
    e.length = static_cast<uint32_t>(n);  // <= max_frame_bytes(chunk_size) < 4 GiB
    index.data_size += n;
    first_copy.emplace(e.sha256, i);
    ++out.stats.stored_chunks;
  }
  out.stats.chunks = count;
  out.index_bytes = encode(index);
  out.index_digest = index_digest(out.index_bytes);
  return out;
}

Result<ChunkedImage> chunk_image_file(const std::string& image_path, const std::string& out_dir,
                                      const ChunkOptions& options) {
  UniqueFd image(::open(image_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!image) return errno_error("open " + image_path);
  KILN_TRY(io::make_dirs(out_dir, 0755));
  const std::string data_path = out_dir + "/" + std::string(kDataFileName);
  std::optional<Result<ChunkedImage>> chunked;
  const io::AtomicWriteOptions mode{.mode = 0644};
  KILN_TRY(io::write_file_atomic(data_path, [&](int fd) -> Status {
    chunked = chunk_image(image.get(), options, [&](std::string_view f) { return io::write_all(fd, f, data_path); });
    if (!chunked->ok()) return chunked->error();
    return ok_status();
  }, mode));
  KILN_TRY(io::write_file_atomic(out_dir + "/" + std::string(kIndexFileName), (*chunked)->index_bytes, mode));
  return std::move(*chunked);
}

}  // namespace kiln::rootfs::chunks
