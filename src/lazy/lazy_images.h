// LazyImages: kilnd's lazy root disks. Holds the host's chunk cache (bounded, content-addressed,
// shared by every image), one LazyDisk + NbdServer per lazy image (keyed by its pinned index
// digest) whose socket the instances' kiln-vmm connect to, the pins that keep a running
// instance's chunks from eviction, background prefetching of a snapshot's read list, and the
// numbers for /metrics and `kiln status`.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "rootfs-builder/chunks/chunk_cache.h"
#include "rootfs-builder/chunks/chunk_source.h"
#include "src/lazy/lazy_disk.h"
#include "src/lazy/nbd_server.h"
#include "src/lazy/nbd_uri.h"

namespace kiln::kilnd::lazy {

struct LazyImageStats {
  std::string index_digest;
  uint64_t image_size = 0;
  uint64_t stored_chunks = 0;  // chunks with data (not zero)
  LazyDiskStats disk;
  uint64_t nbd_connections = 0;
};

struct LazyCacheStats {
  rootfs::chunks::ChunkCacheStats cache;
  uint64_t max_bytes = 0;
};

class LazyImages {
 public:
  // `dir` holds the cache (DIR/chunks) and the images' sockets (DIR/sockets, 0700: the sockets
  // themselves are 0666 so jailed VMMs of any uid can connect where they are bound).
  static Result<std::unique_ptr<LazyImages>> open(const std::string& dir, uint64_t cache_bytes);
  ~LazyImages();

  // Serves the image whose chunk index is `index_bytes` (checked against `index_digest`, then
  // parsed strictly) with chunks from `source`; returns the socket path. Serving an image
  // already served returns its socket.
  // `on_error` hears of its failed reads (LazyDisk::set_error_listener; the first serve's).
  Result<std::string> serve(const std::string& index_digest, std::string_view index_bytes,
                            std::shared_ptr<rootfs::chunks::ChunkSource> source,
                            LazyDisk::ErrorListener on_error = {});
  // Stops serving it (its function is gone); connected VMMs see their reads fail.
  void stop(const std::string& index_digest);

  // Keeps the image's chunks in the cache while `instance` runs (an owner pins one image: pinning
  // another lets the first one's chunks go).
  void pin(const std::string& instance, const std::string& index_digest);
  void unpin(const std::string& instance);

  // Chunks the image's instances read so far, in first-read order (the snapshot's prefetch list).
  std::vector<uint32_t> read_order(const std::string& index_digest) const;
  // Fetches `chunks` into the cache in the background, in order. One prefetch per image at a
  // time: a list given while one runs is dropped (false). Errors are counted, not fatal: a
  // chunk not prefetched is fetched on demand.
  bool prefetch(const std::string& index_digest, std::vector<uint32_t> chunks);
  // Waits for the image's prefetch to end (tests, shutdown).
  void wait_prefetch(const std::string& index_digest);

  std::vector<LazyImageStats> image_stats() const;
  std::optional<LazyImageStats> image_stats(const std::string& index_digest) const;
  LazyCacheStats cache_stats() const;
  uint64_t prefetch_errors() const { return prefetch_errors_.load(); }

 private:
  struct Image {
    std::shared_ptr<LazyDisk> disk;
    std::unique_ptr<NbdServer> server;
    std::thread prefetcher;
    std::shared_ptr<std::atomic<bool>> prefetching = std::make_shared<std::atomic<bool>>(false);
    std::shared_ptr<std::atomic<bool>> stop = std::make_shared<std::atomic<bool>>(false);
  };
  static void end_prefetch(Image& image);
  LazyImages(std::string dir, std::shared_ptr<rootfs::chunks::ChunkCache> cache)
      : dir_(std::move(dir)), cache_(std::move(cache)) {}
  std::string socket_path(const std::string& index_digest) const;

  const std::string dir_;
  const std::shared_ptr<rootfs::chunks::ChunkCache> cache_;
  mutable std::mutex mu_;
  std::map<std::string, Image> images_;      // by index digest
  std::map<std::string, std::string> pins_;  // instance -> index digest
  std::atomic<uint64_t> prefetch_errors_{0};
};

}  // namespace kiln::kilnd::lazy
