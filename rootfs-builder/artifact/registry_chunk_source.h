// RegistryChunkSource: a ChunkSource reading chunk frames from the chunk data blob of an
// image's artifact in its registry, one HTTP Range request per frame (docs/lazy-images.md),
// with the registry's credentials and redirects (a redirect to blob storage keeps the Range
// header and loses the credentials), a deadline per read, and counters kilnd exports.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rootfs-builder/chunks/chunk_source.h"
#include "rootfs-builder/oci/image_documents.h"
#include "rootfs-builder/reference/image_reference.h"
#include "rootfs-builder/registry/registry_client.h"

namespace kiln::rootfs::artifact {

struct RegistryChunkSourceOptions {
  // For one fetch_frame: connecting (and, until one connection has been set up, the /v2/ ping and
  // authentication; later connections reuse that origin and token), redirects and the transfer.
  std::chrono::milliseconds timeout{10000};
  // The largest frame fetched (a parsed index already bounds frames by its chunk size).
  uint64_t max_frame_bytes = 32ull << 20;
  // Idle connections kept for the next reads (one per concurrent read; more are opened as
  // needed and closed after use).
  size_t max_idle_connections = 8;
};

// Monotonic counters, readable at any time from any thread.
struct ChunkFetchCounters {
  std::atomic<uint64_t> fetches{0};  // fetch_frame calls past the local checks (a request was tried)
  std::atomic<uint64_t> bytes{0};    // frame bytes received by successful fetches
  std::atomic<uint64_t> errors{0};   // fetches that failed (any reason below)
  std::atomic<uint64_t> wait_ns{0};  // time spent in fetches, successful or not
};

class RegistryChunkSource : public chunks::ChunkSource {
 public:
  // No I/O here: connections are opened by the reads (so a registry that is down makes reads
  // fail within their deadline, not construction). `data` is DiscoveredArtifact::data.
  RegistryChunkSource(ImageReference ref, SourceOptions opts, Descriptor data, RegistryChunkSourceOptions options = {});
  ~RegistryChunkSource() override;

  // GET /v2/NAME/blobs/DATA with Range: bytes=OFF-(OFF+LEN-1). Thread-safe. Errors:
  //  "chunk frame: zero chunk" / "... N bytes over the limit M" / "... outside the data blob"
  //  (refused without a request); the registry's (unreachable, auth, "Operation timed out ..." or
  //  "deadline exceeded" after `timeout`); "... HTTP 200 ...: the registry ignored Range" (a whole
  //  blob is refused as soon as it passes LEN bytes, without reading it all); "... answered HTTP N";
  //  "... got N of LEN bytes"; "... Content-Range 'X' is not bytes OFF-END/...".
  Result<std::string> fetch_frame(const chunks::ChunkEntry& entry) override;
  // "registry HOST/NAME@sha256:..." (the data blob).
  std::string describe() const override;
  const ChunkFetchCounters& counters() const { return counters_; }

 private:
  Result<std::unique_ptr<RegistryClient>> take_client(Deadline deadline);
  void give_back(std::unique_ptr<RegistryClient> c);
  Result<std::string> fetch(RegistryClient& client, const chunks::ChunkEntry& entry, Deadline deadline);

  const ImageReference ref_;
  const SourceOptions opts_;
  const Descriptor data_;
  const RegistryChunkSourceOptions options_;
  ChunkFetchCounters counters_;
  std::mutex mu_;
  std::vector<std::unique_ptr<RegistryClient>> idle_;  // guarded by mu_
  std::unique_ptr<RegistryClient> template_;           // guarded by mu_: the first opened, for clone()
};

}  // namespace kiln::rootfs::artifact
