// Picks the ImageSource for a reference's transport.
#include <sys/stat.h>

#include "rootfs-builder/registry/registry_source.h"
#include "rootfs-builder/source/image_source.h"
#include "rootfs-builder/source/layout_source.h"

namespace kiln::rootfs {

Result<std::unique_ptr<ImageSource>> open_source(const ImageReference& ref, const SourceOptions& opts) {
  switch (ref.transport) {
    case Transport::kDocker:
      return RegistrySource::open(ref, opts);
    case Transport::kOciLayout:
      return LayoutSource::open(ref.path, ref.local_tag);
    case Transport::kOciArchive:
    case Transport::kDockerArchive: {
      if (opts.work_dir.empty()) return make_error("archive sources need a work directory");
      std::string dir = opts.work_dir + "/archive";
      KILN_TRY(unpack_archive_file(ref.path, dir));
      if (ref.transport == Transport::kOciArchive) return LayoutSource::open(dir, ref.local_tag);
      return DockerArchiveSource::open(dir, ref.local_tag);
    }
  }
  return make_error("unknown transport");
}

}  // namespace kiln::rootfs
