// The library entry point kilnd calls: image reference -> verified blobs -> unpacked tree ->
// ext4 image, content-addressed by manifest digest under a cache directory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "common/result.h"
#include "rootfs-builder/digest/digest.h"
#include "rootfs-builder/oci/image_documents.h"
#include "rootfs-builder/source/image_source.h"
#include "rootfs-builder/unpack/tree_builder.h"

namespace kiln::rootfs {

struct BuildRequest {
  std::string reference;    // skopeo syntax, see reference/image_reference.h
  std::string cache_dir;    // blobs/ and images/ live here
  std::string output_path;  // optional: also copy the image here
  bool tls_verify = true;   // false: allow plain HTTP and unverified certificates
  std::string credentials;  // "user:password"
  std::string auth_file;    // Docker-style auth file
  std::string ca_file;      // extra CA bundle for the registry
  std::string os = "linux";
  std::string architecture = "amd64";
  UnpackLimits limits;
};

struct BuiltImage {
  std::string image_path;   // the cached ext4 image (treat as read-only)
  std::string config_path;  // JSON next to it: Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts
  Digest manifest_digest;
  ImageConfig config;
  bool cache_hit = false;
};

struct Progress {
  std::string stage;   // "resolve", "fetch", "unpack", "mkfs", "done"
  std::string detail;  // e.g. the blob digest
  uint64_t done = 0;
  uint64_t total = 0;  // 0 when unknown
};
using ProgressCallback = std::function<void(const Progress&)>;

// The registry/source options of a request (tls_verify, credentials, auth_file, ca_file).
SourceOptions source_options(const BuildRequest& req);

// A scratch directory PARENT/build-PID-N removed (safely, without following symlinks) on
// destruction; build() reaps those of dead processes under CACHE/tmp.
class ScratchDir {
 public:
  static Result<ScratchDir> create(const std::string& parent);
  ScratchDir() = default;
  ScratchDir(ScratchDir&& o) noexcept : parent_(std::move(o.parent_)), name_(std::exchange(o.name_, {})) {}
  ScratchDir& operator=(ScratchDir&&) = delete;
  ~ScratchDir();
  std::string path() const { return parent_ + "/" + name_; }

 private:
  std::string parent_, name_;
};

Result<BuiltImage> build(const BuildRequest& req, const ProgressCallback& progress = {});

// The cache entry for a manifest digest, if a previous build() left one (no network access).
// kilnd uses this after a restart to find the images its functions were deployed with.
Result<BuiltImage> find_cached(const std::string& cache_dir, const Digest& manifest_digest);

// Cache housekeeping (e.g. when kilnd deletes a function). Both wait for running builds:
// builds hold the cache lock shared, these take it exclusively.
// Removes one image and its config (not an error when absent).
Status remove_image(const std::string& cache_dir, const Digest& manifest_digest);
// Removes every stored blob; images are self-contained, blobs only speed up later builds of
// images that share layers. Returns the bytes freed.
Result<uint64_t> prune_blobs(const std::string& cache_dir);

struct InspectResult {
  Digest manifest_digest;
  std::string manifest_media_type;
  Digest config_digest;
  ImageConfig config;
};

// Resolves the reference and fetches (and verifies) its manifest and config only.
Result<InspectResult> inspect(const BuildRequest& req);

// The JSON kiln-rootfs inspect prints.
std::string inspect_json(const InspectResult& r);

}  // namespace kiln::rootfs
