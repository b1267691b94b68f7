// Encoding and strict parsing of the chunk index (format in chunk_index.h and the README).
#include "rootfs-builder/chunks/chunk_index.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

namespace kiln::rootfs::chunks {
namespace {

// Header (little-endian):  0 magic[8]  8 u32 version  12 u32 compression  16 u32 chunk_size
// 20 u32 reserved (0)  24 u64 image_size  32 u64 chunk_count  40 u64 data_size.
// Entry: 0 sha256[32]  32 u64 offset  40 u32 length  44 u32 reserved (0).

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

Error chunk_error(uint64_t i, const std::string& what) {
  return make_error("chunk index: chunk " + std::to_string(i) + ": " + what);
}
Error index_error(const std::string& what) { return make_error("chunk index: " + what); }

// zero_chunk_sha256 of a valid chunk size, computed once per size for the process.
RawSha256 full_zero_chunk_sha256(uint32_t chunk_size) {
  static std::mutex mu;
  static std::map<uint32_t, RawSha256> cache;  // at most 13 sizes
  std::lock_guard lock(mu);
  auto it = cache.find(chunk_size);
  if (it == cache.end()) it = cache.emplace(chunk_size, zero_chunk_sha256(chunk_size)).first;
  return it->second;
}

}  // namespace

RawSha256 raw_of(const Digest& d) {
  RawSha256 raw{};
  for (size_t i = 0; i < raw.size(); ++i) {
    auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    raw[i] = static_cast<uint8_t>(nibble(d.hex[2 * i]) << 4 | nibble(d.hex[2 * i + 1]));
  }
  return raw;
}

bool valid_chunk_size(uint32_t s) { return s >= kMinChunkSize && s <= kMaxChunkSize && (s & (s - 1)) == 0; }

uint64_t chunk_count(uint64_t image_size, uint32_t chunk_size) {
  return image_size / chunk_size + (image_size % chunk_size != 0 ? 1 : 0);
}

uint32_t ChunkIndex::chunk_length(uint64_t i) const {
  const uint64_t start = i * chunk_size;
  return static_cast<uint32_t>(std::min<uint64_t>(chunk_size, image_size - start));
}

uint64_t max_frame_bytes(uint32_t chunk_size) { return ZSTD_compressBound(chunk_size); }

RawSha256 raw_sha256(std::string_view data) { return raw_of(sha256_of(data)); }

Digest digest_of(const RawSha256& raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(64);
  for (uint8_t b : raw) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 0xf]);
  }
  return Digest{std::move(hex)};
}

RawSha256 zero_chunk_sha256(uint32_t len) {
  Sha256 h;
  static constexpr char kZeros[4096] = {};
  for (uint32_t done = 0; done < len;) {
    const uint32_t n = std::min<uint32_t>(sizeof kZeros, len - done);
    h.update(kZeros, n);
    done += n;
  }
  const Digest d = h.finish();
  return raw_of(d);
}

std::string encode(const ChunkIndex& index) {
  std::string out;
  out.reserve(kHeaderBytes + index.entries.size() * kEntryBytes);
  out.append(kIndexMagic, sizeof kIndexMagic);
  put_u32(out, kIndexVersion);
  put_u32(out, kCompressionZstd);
  put_u32(out, index.chunk_size);
  put_u32(out, 0);
  put_u64(out, index.image_size);
  put_u64(out, index.entries.size());
  put_u64(out, index.data_size);
  for (const ChunkEntry& e : index.entries) {
    out.append(reinterpret_cast<const char*>(e.sha256.data()), e.sha256.size());
    put_u64(out, e.offset);
    put_u32(out, e.length);
    put_u32(out, 0);
  }
  return out;
}

Digest index_digest(std::string_view encoded) { return sha256_of(encoded); }

Result<ChunkIndex> parse(std::string_view bytes) {
  if (bytes.size() < kHeaderBytes) {
    return index_error("truncated: " + std::to_string(bytes.size()) + " bytes, the header alone is " +
                       std::to_string(kHeaderBytes));
  }
  const char* h = bytes.data();
  if (std::memcmp(h, kIndexMagic, sizeof kIndexMagic) != 0) return index_error("bad magic (not a kiln chunk index)");
  if (const uint32_t v = get_u32(h + 8); v != kIndexVersion) {
    return index_error("unsupported version " + std::to_string(v) + " (this kiln reads version " +
                       std::to_string(kIndexVersion) + ")");
  }
  if (const uint32_t c = get_u32(h + 12); c != kCompressionZstd) {
    return index_error("unsupported compression " + std::to_string(c) + " (1 = zstd)");
  }
  ChunkIndex index;
  index.chunk_size = get_u32(h + 16);
  if (get_u32(h + 20) != 0) return index_error("reserved header field is not zero");
  index.image_size = get_u64(h + 24);
  const uint64_t count = get_u64(h + 32);
  index.data_size = get_u64(h + 40);
  if (!valid_chunk_size(index.chunk_size)) {
    return index_error("chunk size " + std::to_string(index.chunk_size) +
                       " is not a power of two in [4 KiB, 16 MiB]");
  }
  if (index.image_size == 0 || index.image_size > kMaxImageSize) {
    return index_error("image size " + std::to_string(index.image_size) + " is not in [1, 1 TiB]");
  }
  const uint64_t want = chunk_count(index.image_size, index.chunk_size);
  if (count != want) {
    return index_error("chunk count " + std::to_string(count) + " disagrees with image size " +
                       std::to_string(index.image_size) + " (" + std::to_string(want) + " chunks of " +
                       std::to_string(index.chunk_size) + ")");
  }
  // count <= 2^40 / 2^12, so this product cannot overflow.
  const uint64_t total = kHeaderBytes + count * kEntryBytes;
  if (total > kMaxIndexBytes) {
    return index_error("index of " + std::to_string(total) + " bytes exceeds " + std::to_string(kMaxIndexBytes));
  }
  if (bytes.size() < total) {
    return index_error("truncated: " + std::to_string(bytes.size()) + " bytes, " + std::to_string(count) +
                       " chunks need " + std::to_string(total));
  }
  if (bytes.size() > total) return index_error(std::to_string(bytes.size() - total) + " trailing bytes");

  const uint64_t bound = max_frame_bytes(index.chunk_size);
  // The digests a stored chunk may not have, hashed only when a stored chunk asks.
  std::optional<RawSha256> zero_full;
  auto is_zero_digest = [&](uint64_t i, const RawSha256& d) {
    const uint32_t len = index.chunk_length(i);
    if (len != index.chunk_size) return d == zero_chunk_sha256(len);  // the last chunk, once
    if (!zero_full) zero_full = full_zero_chunk_sha256(index.chunk_size);
    return d == *zero_full;
  };
  index.entries.resize(count);
  std::vector<uint64_t> firsts;  // chunks holding a first copy, by increasing offset
  uint64_t end = 0;  // bytes of the data blob taken by first copies so far
  for (uint64_t i = 0; i < count; ++i) {
    const char* p = h + kHeaderBytes + i * kEntryBytes;
    ChunkEntry& e = index.entries[i];
    std::memcpy(e.sha256.data(), p, e.sha256.size());
    e.offset = get_u64(p + 32);
    e.length = get_u32(p + 40);
    if (get_u32(p + 44) != 0) return chunk_error(i, "reserved field is not zero");
    if (e.zero()) {
      if (e.offset != 0 || e.sha256 != RawSha256{}) return chunk_error(i, "zero chunk with non-zero fields");
      continue;
    }
    if (e.length > bound) {
      return chunk_error(i, "length " + std::to_string(e.length) + " over bound " + std::to_string(bound));
    }
    if (is_zero_digest(i, e.sha256)) {
      return chunk_error(i, "digest of an all-zero chunk (zero chunks are not stored)");
    }
    if (e.offset > index.data_size || e.length > index.data_size - e.offset) {
      return chunk_error(i, "offset " + std::to_string(e.offset) + " + length " + std::to_string(e.length) +
                                " out of range (data size " + std::to_string(index.data_size) + ")");
    }
    if (e.offset > end) return chunk_error(i, "offset " + std::to_string(e.offset) + " leaves a gap after " + std::to_string(end));
    if (e.offset == end) {
      firsts.push_back(i);
      end += e.length;
      continue;
    }
    // Before `end`: only a repeat of an earlier chunk's content, pointing at its first copy.
    auto it = std::lower_bound(firsts.begin(), firsts.end(), e.offset,
                               [&](uint64_t k, uint64_t off) { return index.entries[k].offset < off; });
    if (it == firsts.end() || index.entries[*it].offset != e.offset || index.entries[*it].length != e.length) {
      return chunk_error(i, "offset " + std::to_string(e.offset) + " overlaps stored data");
    }
    if (index.entries[*it].sha256 != e.sha256) {
      return chunk_error(i, "repeats the location of chunk " + std::to_string(*it) + " with another digest");
    }
  }
  if (end != index.data_size) {
    return index_error("data size " + std::to_string(index.data_size) + " disagrees with the stored chunks (" +
                       std::to_string(end) + ")");
  }
  // One copy per content: two first copies with one digest are a non-canonical encoding.
  std::vector<const RawSha256*> digests;
  digests.reserve(firsts.size());
  for (uint64_t k : firsts) digests.push_back(&index.entries[k].sha256);
  std::sort(digests.begin(), digests.end(), [](const RawSha256* a, const RawSha256* b) { return *a < *b; });
  for (size_t k = 1; k < digests.size(); ++k) {
    if (*digests[k] == *digests[k - 1]) {
      return index_error("content " + digest_of(*digests[k]).str() + " is stored twice (repeats must point at one copy)");
    }
  }
  return index;
}

}  // namespace kiln::rootfs::chunks
