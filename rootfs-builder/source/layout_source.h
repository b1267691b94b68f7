// OCI image layout directories (image-spec image-layout.md) and the two archive transports,
// which are unpacked (safely) into scratch space and then read like a layout.
#pragma once

#include <map>

#include "rootfs-builder/source/image_source.h"
#include "rootfs-builder/source/local_dir.h"

namespace kiln::rootfs {

class LayoutSource : public ImageSource {
 public:
  // tag: matches org.opencontainers.image.ref.name; empty picks the only manifest.
  static Result<std::unique_ptr<ImageSource>> open(const std::string& dir, const std::string& tag);

  Result<ManifestDoc> root_manifest() override;
  Result<ManifestDoc> manifest(const Descriptor& d) override;
  Status fetch_blob(const Descriptor& d, BlobStore& store, const ByteProgress& progress) override;
  std::optional<Result<UniqueFd>> open_local_blob(const Descriptor& d) override {
    return dir_.open_file(blob_path(d.digest));
  }

 private:
  LayoutSource(LocalDir dir, Descriptor root) : dir_(std::move(dir)), root_(std::move(root)) {}
  static std::string blob_path(const Digest& d) { return "blobs/sha256/" + d.hex; }
  LocalDir dir_;
  Descriptor root_;
};

// docker save format: manifest.json lists Config and Layers files; kiln synthesises an OCI
// manifest for it (its digest names the image in the cache).
class DockerArchiveSource : public ImageSource {
 public:
  static Result<std::unique_ptr<ImageSource>> open(const std::string& dir, const std::string& tag);

  Result<ManifestDoc> root_manifest() override { return root_; }
  Result<ManifestDoc> manifest(const Descriptor&) override {
    return make_error("docker-archive has no image index");
  }
  Status fetch_blob(const Descriptor& d, BlobStore& store, const ByteProgress& progress) override;
  std::optional<Result<UniqueFd>> open_local_blob(const Descriptor& d) override;

 private:
  explicit DockerArchiveSource(LocalDir dir) : dir_(std::move(dir)) {}
  LocalDir dir_;
  ManifestDoc root_;
  std::map<std::string, std::string> files_;  // digest hex -> member path inside dir_
};

// Unpacks an archive file (tar, optionally compressed) into dir with the safe extractor.
Status unpack_archive_file(const std::string& archive_path, const std::string& dir);

}  // namespace kiln::rootfs
