// LazyDisk: read() walks the chunks a range covers; a zero chunk is synthesised, a stored one comes
// from the recent list, the cache, or one fetch + verify shared by concurrent readers.
#include "src/lazy/lazy_disk.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "rootfs-builder/chunks/chunk_verifier.h"

namespace kiln::kilnd::lazy {

namespace chunks = rootfs::chunks;

LazyDisk::LazyDisk(chunks::ChunkIndex index, std::shared_ptr<chunks::ChunkCache> cache,
                   std::shared_ptr<chunks::ChunkSource> source)
    : index_(std::move(index)), cache_(std::move(cache)), source_(std::move(source)), seen_(index_.entries.size()) {}

void LazyDisk::note_read(uint32_t i) {
  // mu_ held
  if (!seen_[i]) {
    seen_[i] = true;
    order_.push_back(i);
  }
}

Result<std::string> LazyDisk::get(uint32_t i, bool* fetched) {
  const chunks::ChunkEntry& entry = index_.entries[i];
  Result<std::string> bytes = cache_->get_or_fetch(entry.sha256, [&]() -> Result<std::string> {
    *fetched = true;
    KILN_ASSIGN_OR_RETURN(std::string frame, source_->fetch_frame(entry));
    {
      std::lock_guard lock(mu_);
      stats_.fetched_bytes += frame.size();
    }
    return chunks::verify_chunk(index_, i, frame);
  });
  if (!bytes.ok()) {
    return make_error("chunk " + std::to_string(i) + " (" + chunks::digest_of(entry.sha256).str() + ") from " +
                      source_->describe() + ": " + bytes.error().message);
  }
  return bytes;
}

Result<LazyDisk::Chunk> LazyDisk::chunk(uint32_t i) {
  {
    std::lock_guard lock(mu_);
    for (auto it = recent_.begin(); it != recent_.end(); ++it) {
      if (it->first == i) {
        recent_.splice(recent_.begin(), recent_, it);
        return it->second;
      }
    }
  }
  bool fetched = false;
  const auto started = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(std::string bytes, get(i, &fetched));
  auto shared = std::make_shared<const std::string>(std::move(bytes));
  std::lock_guard lock(mu_);
  if (fetched) {
    stats_.chunk_misses++;
    stats_.wait_ns += static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count());
  }
  recent_.emplace_front(i, shared);
  if (recent_.size() > kRecentChunks) recent_.pop_back();
  return Chunk(shared);
}

Status LazyDisk::read(uint64_t offset, std::span<char> out) {
  if (offset > index_.image_size || out.size() > index_.image_size - offset) {
    return make_error("read past the end of the image");
  }
  const uint64_t chunk_size = index_.chunk_size;
  size_t done = 0;
  while (done < out.size()) {
    const uint64_t at = offset + done;
    const auto i = static_cast<uint32_t>(at / chunk_size);
    const uint64_t within = at % chunk_size;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(index_.chunk_length(i) - within, out.size() - done));
    const chunks::ChunkEntry& entry = index_.entries[i];
    if (entry.zero()) {
      std::memset(out.data() + done, 0, n);
    } else {
      Result<Chunk> c = chunk(i);
      if (!c.ok()) {
        std::string report;
        {
          std::lock_guard lock(mu_);
          stats_.fetch_errors++;
          const auto now = std::chrono::steady_clock::now();
          if (on_error_ && now - last_report_ >= std::chrono::seconds(1)) {
            last_report_ = now;
            report = "read of " + std::to_string(out.size()) + " bytes at " + std::to_string(offset) +
                     " failed (the guest gets an I/O error): " + c.error().message;
            if (unreported_ > 0) report += " (" + std::to_string(unreported_) + " more failed reads since the last report)";
            unreported_ = 0;
          } else {
            unreported_++;
          }
        }
        if (!report.empty()) on_error_(report);
        return c.error();
      }
      std::memcpy(out.data() + done, (*c)->data() + within, n);
      std::lock_guard lock(mu_);
      note_read(i);
    }
    done += n;
  }
  std::lock_guard lock(mu_);
  stats_.reads++;
  stats_.bytes_read += out.size();
  return ok_status();
}

std::vector<uint32_t> LazyDisk::read_order() const {
  std::lock_guard lock(mu_);
  return order_;
}

Status LazyDisk::prefetch(std::span<const uint32_t> list, const std::atomic<bool>& stop) {
  for (uint32_t i : list) {
    if (stop) break;
    if (i >= index_.entries.size() || index_.entries[i].zero()) continue;
    bool fetched = false;
    Result<std::string> bytes = get(i, &fetched);
    if (!bytes.ok()) return make_error("prefetching " + bytes.error().message);
    if (fetched) {
      std::lock_guard lock(mu_);
      stats_.prefetched++;
    }
  }
  return ok_status();
}

std::set<chunks::RawSha256> LazyDisk::digests() const {
  std::set<chunks::RawSha256> out;
  for (const chunks::ChunkEntry& e : index_.entries) {
    if (!e.zero()) out.insert(e.sha256);
  }
  return out;
}

LazyDiskStats LazyDisk::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace kiln::kilnd::lazy
