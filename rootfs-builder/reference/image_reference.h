// Image references in skopeo's transport syntax:
//   [docker://]host[:port]/name[:tag][@sha256:...], oci:DIR[:TAG], oci-archive:FILE[:TAG],
//   docker-archive:FILE
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace kiln::rootfs {

enum class Transport { kDocker, kOciLayout, kOciArchive, kDockerArchive };

struct ImageReference {
  Transport transport = Transport::kDocker;
  // kDocker: registry host[:port], repository path, and a tag and/or digest.
  std::string registry;
  std::string repository;
  std::string tag;     // "latest" when neither tag nor digest was given
  std::string digest;  // "sha256:<hex>" or empty
  // Local transports: the directory or archive file, and an optional tag/ref name.
  std::string path;
  std::string local_tag;

  std::string to_string() const;
};

Result<ImageReference> parse_reference(std::string_view text);

}  // namespace kiln::rootfs
