// Range reads of the chunk data blob (RFC 9110 §14: Range, 206 Partial Content, Content-Range)
// over a small pool of RegistryClients (a curl handle serves one thread at a time).
#include "rootfs-builder/artifact/registry_chunk_source.h"

#include <cinttypes>
#include <cstdio>

namespace kiln::rootfs::artifact {

RegistryChunkSource::RegistryChunkSource(ImageReference ref, SourceOptions opts, Descriptor data,
                                         RegistryChunkSourceOptions options)
    : ref_(std::move(ref)), opts_(std::move(opts)), data_(std::move(data)), options_(options) {}

RegistryChunkSource::~RegistryChunkSource() = default;

std::string RegistryChunkSource::describe() const {
  return "registry " + ref_.registry + "/" + ref_.repository + "@" + data_.digest.str();
}

Result<std::unique_ptr<RegistryClient>> RegistryChunkSource::take_client(Deadline deadline) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<RegistryClient> c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    // Pinged and authenticated once: later connections start from its origin and token.
    if (template_) return template_->clone();
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<RegistryClient> c,
                        RegistryClient::open(ref_, opts_, RegistryAccess::kPull, deadline));
  std::lock_guard<std::mutex> l(mu_);
  if (!template_) template_ = c->clone();
  return c;
}

void RegistryChunkSource::give_back(std::unique_ptr<RegistryClient> c) {
  std::lock_guard<std::mutex> l(mu_);
  if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(c));
}

Result<std::string> RegistryChunkSource::fetch(RegistryClient& client, const chunks::ChunkEntry& entry,
                                               Deadline deadline) {
  const uint64_t first = entry.offset, last = entry.offset + entry.length - 1;
  char range[64];
  std::snprintf(range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, first, last);
  const std::string what = "chunk frame " + std::string(range + 6) + " of " + data_.digest.str();
  std::string frame, sink_error;
  frame.reserve(entry.length);
  RegistryCall c;
  c.target = client.repo_path() + "/blobs/" + data_.digest.str();
  c.headers = {"Range: " + std::string(range)};
  c.deadline = deadline;
  c.sink_error = &sink_error;
  // A registry (or proxy) that ignores Range answers 200 with the whole blob: stop it once it
  // has sent more than was asked for, never reading the rest.
  c.sink = [&](const char* data, size_t len) {
    if (frame.size() + len > entry.length) {
      sink_error = what + ": more than " + std::to_string(entry.length) +
                   " bytes in the answer (HTTP 200 with the whole blob?): the registry ignored Range";
      return false;
    }
    frame.append(data, len);
    return true;
  };
  KILN_ASSIGN_OR_RETURN(HttpResponse r, client.call(c));
  if (r.status == 200) return make_error(what + ": HTTP 200 (whole blob): the registry ignored Range");
  if (r.status != 206) return make_error(what + ": registry answered " + registry_error_message(r));
  if (frame.size() != entry.length) {
    return make_error(what + ": got " + std::to_string(frame.size()) + " of " + std::to_string(entry.length) +
                      " bytes");
  }
  if (auto cr = r.headers.find("content-range"); cr != r.headers.end()) {
    const std::string want = "bytes " + std::string(range + 6) + "/";
    if (!cr->second.starts_with(want)) {
      return make_error(what + ": Content-Range '" + cr->second.substr(0, 100) + "' is not " + want + "...");
    }
  }
  return frame;
}

Result<std::string> RegistryChunkSource::fetch_frame(const chunks::ChunkEntry& entry) {
  if (entry.zero()) return make_error("chunk frame: zero chunk (nothing stored)");
  if (entry.length > options_.max_frame_bytes) {
    return make_error("chunk frame: " + std::to_string(entry.length) + " bytes over the limit " +
                      std::to_string(options_.max_frame_bytes));
  }
  if (entry.offset > data_.size || entry.length > data_.size - entry.offset) {
    return make_error("chunk frame at " + std::to_string(entry.offset) + "+" + std::to_string(entry.length) +
                      " is outside the data blob (" + std::to_string(data_.size) + " bytes)");
  }
  const auto start = std::chrono::steady_clock::now();
  const Deadline deadline = deadline_after(options_.timeout);
  counters_.fetches.fetch_add(1, std::memory_order_relaxed);
  Result<std::string> out = [&]() -> Result<std::string> {
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<RegistryClient> client, take_client(deadline));
    auto frame = fetch(*client, entry, deadline);
    // A failed transfer may leave the connection in any state: only a clean one is reused.
    if (frame.ok()) give_back(std::move(client));
    return frame;
  }();
  counters_.wait_ns.fetch_add(
      static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count()),
      std::memory_order_relaxed);
  if (!out.ok()) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    return out;
  }
  counters_.bytes.fetch_add(out->size(), std::memory_order_relaxed);
  return out;
}

}  // namespace kiln::rootfs::artifact
