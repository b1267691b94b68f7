// ImageBuilder: turns a function's image reference into a rootfs image (the production one is
// rootfs-builder's build(); tests inject their own).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "rootfs-builder/chunks/chunk_source.h"
#include "src/registry/function_config.h"

namespace kiln::kilnd::registry {

// Runs on a worker thread; `progress` may be called from that thread (kilnd posts it back to
// its loop).
using ImageBuilder = std::function<Result<ImageStatus>(const FunctionConfig& config,
                                                       const std::function<void(const ImageStatus&)>& progress)>;

// The production builder: rootfs-builder's build() with its cache under `cache_dir`. With
// `lazy`, an image from a registry whose repository holds kiln's chunked-rootfs artifact for it
// (docs/lazy-images.md) is not pulled: its manifest and config are fetched and verified, its
// chunk index is stored (CACHE/lazy/<hex>.index) and the status says `lazy`; an image without
// the artifact is built as before. A registry that serves a bad artifact fails the image.
ImageBuilder rootfs_image_builder(std::string cache_dir, bool lazy = false);

// Where a lazy image's chunks come from: Range reads of its artifact's chunk data blob in the
// function's registry, with the function's credentials and TLS setting (no I/O until a read).
Result<std::shared_ptr<rootfs::chunks::ChunkSource>> lazy_chunk_source(const FunctionConfig& config,
                                                                       const ImageStatus::Lazy& lazy);

}  // namespace kiln::kilnd::registry
