// ChunkCache: a host's local store of verified, uncompressed image chunks (issue 19: on-demand
// reads), content-addressed (DIR/sha256/<hex>), so a chunk shared by images or versions is
// stored once. Bounded in bytes: least-recently-used chunks go first, never a pinned one (the
// chunks of a running instance). Every read checks the bytes against their name: a corrupted
// entry is dropped and counted, and the caller fetches it again. Concurrent misses of one chunk
// make one fetch (get_or_fetch). Thread-safe: a block server's threads share one cache.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/result.h"
#include "rootfs-builder/chunks/chunk_index.h"

namespace kiln::rootfs::chunks {

struct ChunkCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;          // get_or_fetch calls that fetched (or waited for another's fetch)
  uint64_t fetches = 0;         // fetch functions run
  uint64_t coalesced = 0;       // misses served by another caller's fetch
  uint64_t corrupt = 0;         // entries whose bytes no longer matched their name (dropped)
  uint64_t refused = 0;         // puts whose bytes did not match the digest given
  uint64_t evicted = 0;
  uint64_t not_stored = 0;      // puts that found no room without evicting a pinned chunk
  uint64_t bytes = 0;           // stored now
  uint64_t entries = 0;
};

class ChunkCache {
 public:
  // Opens (creating) DIR; entries already there count towards max_bytes, oldest use first
  // (file mtime), and the cache is trimmed to max_bytes; leftover temp files are removed.
  static Result<std::unique_ptr<ChunkCache>> open(const std::string& dir, uint64_t max_bytes);

  // The chunk's bytes if stored and intact (a hit makes it the most recently used); nullopt
  // when missing or found corrupted (then removed).
  Result<std::optional<std::string>> get(const RawSha256& digest);
  // Stores `bytes` under `digest` after checking they hash to it (an error otherwise, nothing
  // stored). Returns false when it fits only by evicting pinned chunks: not stored (the
  // caller still has the bytes). Evicts unpinned chunks, least recently used first.
  Result<bool> put(const RawSha256& digest, std::string_view bytes);
  // get(), else one fetch for all concurrent callers of the same digest: `fetch` returns the
  // verified bytes (the chunk verifier's output); they are put() and returned to every waiter.
  // A fetch error goes to every caller that waited for it; the next call fetches again.
  using Fetch = std::function<Result<std::string>()>;
  Result<std::string> get_or_fetch(const RawSha256& digest, const Fetch& fetch);

  // Pins: `owner` (an instance) keeps `digests` from eviction until unpin(owner). Pinning a
  // chunk not stored yet protects it once stored.
  void pin(const std::string& owner, const std::set<RawSha256>& digests);
  void unpin(const std::string& owner);

  ChunkCacheStats stats() const;
  uint64_t max_bytes() const { return max_bytes_; }
  // Callers waiting on another caller's fetch of `digest` (tests).
  uint64_t waiting_for(const RawSha256& digest) const;

 private:
  struct Entry {
    uint64_t size = 0;
    std::list<RawSha256>::iterator lru;  // position in lru_ (front: most recent)
  };
  struct InFlight {
    uint64_t waiters = 0;
    bool done = false;
    Result<std::string> result = make_error("fetch not finished");
  };

  ChunkCache(std::string dir, uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  std::string path(const RawSha256& digest) const;
  bool pinned_locked(const RawSha256& digest) const;
  void drop_locked(const RawSha256& digest);
  // Evicts unpinned entries, least recent first, until `incoming` more bytes fit; false if
  // they cannot (only pinned entries left).
  bool make_room_locked(uint64_t incoming);
  Result<std::optional<std::string>> get_locked(const RawSha256& digest);
  Result<bool> put_locked(const RawSha256& digest, std::string_view bytes);

  const std::string dir_;
  const uint64_t max_bytes_;
  mutable std::mutex mu_;
  std::condition_variable fetched_;
  std::map<RawSha256, Entry> entries_;
  std::list<RawSha256> lru_;
  std::map<std::string, std::set<RawSha256>> pins_;  // owner -> chunks
  std::map<RawSha256, uint32_t> pin_counts_;
  std::map<RawSha256, std::shared_ptr<InFlight>> in_flight_;
  ChunkCacheStats stats_;
};

}  // namespace kiln::rootfs::chunks
