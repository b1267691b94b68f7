// rootfs-builder's build() as kilnd's ImageBuilder: its progress and result as ImageStatus.
#include "src/registry/image_builder.h"

#include "rootfs-builder/builder/builder.h"

namespace kiln::kilnd::registry {

ImageBuilder rootfs_image_builder(std::string cache_dir) {
  return [cache_dir](const FunctionConfig& c, const std::function<void(const ImageStatus&)>& progress)
             -> Result<ImageStatus> {
    rootfs::BuildRequest req;
    req.reference = c.image;
    req.cache_dir = cache_dir;
    req.tls_verify = c.tls_verify;
    if (!c.credentials.empty()) req.credentials = c.credentials.username + ":" + c.credentials.password;
    KILN_ASSIGN_OR_RETURN(rootfs::BuiltImage built, rootfs::build(req, [&progress](const rootfs::Progress& p) {
      ImageStatus s;
      s.state = ImageState::kBuilding;
      s.stage = p.stage;
      s.detail = p.detail;
      s.done = p.done;
      s.total = p.total;
      progress(s);
    }));
    ImageStatus s;
    s.state = ImageState::kReady;
    s.stage = "done";
    s.manifest_digest = built.manifest_digest.str();
    s.rootfs_path = built.image_path;
    s.entrypoint = built.config.entrypoint;
    s.cmd = built.config.cmd;
    s.env = built.config.env;
    s.working_dir = built.config.working_dir;
    s.user = built.config.user;
    s.labels = built.config.labels;
    return s;
  };
}

}  // namespace kiln::kilnd::registry
