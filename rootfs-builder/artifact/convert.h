// `kiln-rootfs convert`: build an image's ext4 (builder.h), chunk it (chunker.h) and, with
// push, publish the chunks as the image's artifact in its own repository (artifact_push.h).
#pragma once

#include <optional>
#include <string>

#include "common/result.h"
#include "rootfs-builder/artifact/artifact_push.h"
#include "rootfs-builder/builder/builder.h"
#include "rootfs-builder/chunks/chunker.h"

namespace kiln::rootfs::artifact {

struct ConvertRequest {
  BuildRequest build;   // reference, cache and registry options (output_path unused)
  std::string out_dir;  // chunk-index + chunk-data; empty: a scratch dir under CACHE/tmp, removed
  chunks::ChunkOptions chunking;
  bool push = false;  // needs a registry reference (docker transport)
};

struct ConvertResult {
  BuiltImage image;  // image.manifest_digest: the (platform) manifest built, the subject
  chunks::ChunkedImage chunked;
  double chunk_seconds = 0;
  std::optional<PushedArtifact> pushed;
};

// Errors: build()'s, chunk_image_file()'s, "--push needs a registry reference", push_artifact()'s.
Result<ConvertResult> convert(const ConvertRequest& req, const ProgressCallback& progress = {});

}  // namespace kiln::rootfs::artifact
