// LazyDisk: an NBD export of a chunked image (rootfs-builder/chunks) whose chunks come from the
// host's ChunkCache, or are fetched from a ChunkSource (the image's registry) and verified against
// the pinned index before any byte is served. Records the order in which chunks were first read
// (the prefetch list a snapshot keeps) and can fetch such a list ahead.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "rootfs-builder/chunks/chunk_cache.h"
#include "rootfs-builder/chunks/chunk_source.h"
#include "src/lazy/nbd_session.h"

namespace kiln::kilnd::lazy {

struct LazyDiskStats {
  uint64_t reads = 0;          // read() calls
  uint64_t bytes_read = 0;     // bytes served
  uint64_t chunk_misses = 0;   // chunks this disk fetched for a read
  uint64_t fetched_bytes = 0;  // compressed bytes those fetches (and prefetches) moved
  uint64_t fetch_errors = 0;   // reads that failed for a chunk that could not be had
  uint64_t wait_ns = 0;        // time reads spent waiting for missing chunks
  uint64_t prefetched = 0;     // chunks prefetch() put into the cache
};

class LazyDisk : public NbdExport {
 public:
  // Recently read chunks kept in memory, so a run of small reads in one chunk reads and verifies
  // its cache file once.
  static constexpr size_t kRecentChunks = 16;

  LazyDisk(rootfs::chunks::ChunkIndex index, std::shared_ptr<rootfs::chunks::ChunkCache> cache,
           std::shared_ptr<rootfs::chunks::ChunkSource> source);

  uint64_t size() const override { return index_.image_size; }
  // Errors: "chunk N (sha256:...) from SOURCE: ..." (fetch or verification failed).
  Status read(uint64_t offset, std::span<char> out) override;
  // Told of failed reads (what the guest got EIO for), at most once a second: the text names
  // the chunk, the source and why, and how many failures went unreported since the last call.
  // Set before the disk is served.
  using ErrorListener = std::function<void(const std::string& text)>;
  void set_error_listener(ErrorListener listener) { on_error_ = std::move(listener); }

  // Stored chunks in the order they were first read.
  std::vector<uint32_t> read_order() const;
  // Gets each listed chunk (numbers past the end and zero chunks are skipped) into the cache, in
  // order, until `stop`; the first error ends it.
  Status prefetch(std::span<const uint32_t> chunks, const std::atomic<bool>& stop);
  // The digests of every stored chunk (what an instance pins in the cache).
  std::set<rootfs::chunks::RawSha256> digests() const;
  LazyDiskStats stats() const;
  const rootfs::chunks::ChunkIndex& index() const { return index_; }

 private:
  using Chunk = std::shared_ptr<const std::string>;
  // Chunk i's bytes from the cache, or one verified fetch (*fetched: this call fetched).
  Result<std::string> get(uint32_t i, bool* fetched);
  // The same through the recent list, counting misses and their wait.
  Result<Chunk> chunk(uint32_t i);
  void note_read(uint32_t i);

  const rootfs::chunks::ChunkIndex index_;
  const std::shared_ptr<rootfs::chunks::ChunkCache> cache_;
  const std::shared_ptr<rootfs::chunks::ChunkSource> source_;

  mutable std::mutex mu_;
  std::list<std::pair<uint32_t, Chunk>> recent_;  // front: most recent
  std::vector<bool> seen_;
  std::vector<uint32_t> order_;
  LazyDiskStats stats_;
  ErrorListener on_error_;
  std::chrono::steady_clock::time_point last_report_{};
  uint64_t unreported_ = 0;
};

}  // namespace kiln::kilnd::lazy
