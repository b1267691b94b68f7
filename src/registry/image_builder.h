// ImageBuilder: turns a function's image reference into a rootfs image (the production one is
// rootfs-builder's build(); tests inject their own).
#pragma once

#include <functional>
#include <string>

#include "common/result.h"
#include "src/registry/function_config.h"

namespace kiln::kilnd::registry {

// Runs on a worker thread; `progress` may be called from that thread (kilnd posts it back to
// its loop).
using ImageBuilder = std::function<Result<ImageStatus>(const FunctionConfig& config,
                                                       const std::function<void(const ImageStatus&)>& progress)>;

// The production builder: rootfs-builder's build() with its cache under `cache_dir`.
ImageBuilder rootfs_image_builder(std::string cache_dir);

}  // namespace kiln::kilnd::registry
