// ChunkCache implementation: an in-memory LRU list over the files of DIR/sha256; the file
// system holds the bytes, this process the order of use and the pins.
#include "rootfs-builder/chunks/chunk_cache.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "common/io.h"

namespace kiln::rootfs::chunks {
namespace {

namespace fs = std::filesystem;

// The largest chunk a cache holds: the index format's largest chunk size.
constexpr uint64_t kMaxChunkBytes = kMaxChunkSize;

}  // namespace

Result<std::unique_ptr<ChunkCache>> ChunkCache::open(const std::string& dir, uint64_t max_bytes) {
  KILN_TRY(io::make_dirs(dir + "/sha256", 0700));
  std::unique_ptr<ChunkCache> cache(new ChunkCache(dir, max_bytes));
  // What an earlier run stored, oldest use first (mtime: the put or the last refresh).
  struct Found {
    RawSha256 digest;
    uint64_t size;
    fs::file_time_type used;
  };
  std::vector<Found> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir + "/sha256", ec)) {
    const std::string name = e.path().filename().string();
    auto digest = Digest::parse("sha256:" + name);
    std::error_code fec;
    const bool regular = e.is_regular_file(fec);
    if (!digest.ok() || !regular) {
      fs::remove(e.path(), fec);  // a temp file a crash left, or something that is not ours
      continue;
    }
    found.push_back({raw_of(*digest), static_cast<uint64_t>(e.file_size(fec)), e.last_write_time(fec)});
  }
  if (ec) return make_error("chunk cache " + dir + ": " + ec.message());
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.used > b.used; });
  std::lock_guard lock(cache->mu_);
  for (const Found& f : found) {
    cache->lru_.push_back(f.digest);  // newest first
    cache->entries_[f.digest] = Entry{f.size, std::prev(cache->lru_.end())};
    cache->stats_.bytes += f.size;
  }
  cache->make_room_locked(0);
  return cache;
}

std::string ChunkCache::path(const RawSha256& digest) const { return dir_ + "/sha256/" + digest_of(digest).hex; }

bool ChunkCache::pinned_locked(const RawSha256& digest) const { return pin_counts_.count(digest) != 0; }

void ChunkCache::drop_locked(const RawSha256& digest) {
  auto it = entries_.find(digest);
  if (it == entries_.end()) return;
  std::error_code ec;
  fs::remove(path(digest), ec);
  stats_.bytes -= it->second.size;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

bool ChunkCache::make_room_locked(uint64_t incoming) {
  auto it = lru_.end();
  while (stats_.bytes + incoming > max_bytes_ && it != lru_.begin()) {
    --it;  // from the least recently used towards the most
    if (pinned_locked(*it)) continue;
    const RawSha256 victim = *it;
    it = std::next(it);  // drop_locked erases the victim's node
    drop_locked(victim);
    ++stats_.evicted;
  }
  return stats_.bytes + incoming <= max_bytes_;
}

Result<std::optional<std::string>> ChunkCache::get_locked(const RawSha256& digest) {
  auto it = entries_.find(digest);
  if (it == entries_.end()) return std::optional<std::string>();
  auto bytes = io::read_file(path(digest), kMaxChunkBytes);
  if (!bytes.ok() || raw_sha256(*bytes) != digest) {
    // Gone from under us, or changed on disk: not a chunk we can serve. Fetched again.
    ++stats_.corrupt;
    drop_locked(digest);
    return std::optional<std::string>();
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  ++stats_.hits;
  return std::optional<std::string>(std::move(*bytes));
}

Result<std::optional<std::string>> ChunkCache::get(const RawSha256& digest) {
  std::lock_guard lock(mu_);
  return get_locked(digest);
}

Result<bool> ChunkCache::put_locked(const RawSha256& digest, std::string_view bytes) {
  if (bytes.size() > kMaxChunkBytes) return make_error("chunk cache: a chunk of " + std::to_string(bytes.size()) + " bytes");
  if (raw_sha256(bytes) != digest) {
    ++stats_.refused;
    return make_error("chunk cache: bytes do not match " + digest_of(digest).str());
  }
  if (entries_.count(digest)) return true;
  if (!make_room_locked(bytes.size())) {
    ++stats_.not_stored;
    return false;
  }
  KILN_TRY(io::write_file_atomic(path(digest), bytes, {.mode = 0600, .sync_dir = false}));
  lru_.push_front(digest);
  entries_[digest] = Entry{bytes.size(), lru_.begin()};
  stats_.bytes += bytes.size();
  return true;
}

Result<bool> ChunkCache::put(const RawSha256& digest, std::string_view bytes) {
  std::lock_guard lock(mu_);
  return put_locked(digest, bytes);
}

Result<std::string> ChunkCache::get_or_fetch(const RawSha256& digest, const Fetch& fetch) {
  std::unique_lock lock(mu_);
  KILN_ASSIGN_OR_RETURN(auto hit, get_locked(digest));
  if (hit) return std::move(*hit);
  ++stats_.misses;
  if (auto it = in_flight_.find(digest); it != in_flight_.end()) {
    std::shared_ptr<InFlight> f = it->second;
    ++f->waiters;
    ++stats_.coalesced;
    fetched_.wait(lock, [&] { return f->done; });
    return f->result;
  }
  auto f = std::make_shared<InFlight>();
  in_flight_[digest] = f;
  ++stats_.fetches;
  lock.unlock();
  Result<std::string> got = fetch();
  lock.lock();
  if (got.ok()) {
    // A fetch that does not hash to the digest asked for is an error for every waiter.
    auto stored = put_locked(digest, *got);
    if (!stored.ok()) got = stored.error();
  }
  f->result = got;
  f->done = true;
  in_flight_.erase(digest);
  fetched_.notify_all();
  return got;
}

void ChunkCache::pin(const std::string& owner, const std::set<RawSha256>& digests) {
  std::lock_guard lock(mu_);
  std::set<RawSha256>& mine = pins_[owner];
  for (const RawSha256& d : digests) {
    if (mine.insert(d).second) ++pin_counts_[d];
  }
}

void ChunkCache::unpin(const std::string& owner) {
  std::lock_guard lock(mu_);
  auto it = pins_.find(owner);
  if (it == pins_.end()) return;
  for (const RawSha256& d : it->second) {
    if (--pin_counts_[d] == 0) pin_counts_.erase(d);
  }
  pins_.erase(it);
  make_room_locked(0);  // pinned chunks may have held the cache over its bound
}

ChunkCacheStats ChunkCache::stats() const {
  std::lock_guard lock(mu_);
  ChunkCacheStats s = stats_;
  s.entries = entries_.size();
  return s;
}

uint64_t ChunkCache::waiting_for(const RawSha256& digest) const {
  std::lock_guard lock(mu_);
  auto it = in_flight_.find(digest);
  return it == in_flight_.end() ? 0 : it->second->waiters;
}

}  // namespace kiln::rootfs::chunks
