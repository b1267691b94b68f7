// convert(): build -> chunk -> (push). The pushed subject is the manifest build() resolved (for
// a multi-platform index, the platform manifest it built), asked of the same repository.
#include "rootfs-builder/artifact/convert.h"

#include <chrono>

#include "common/io.h"
#include "rootfs-builder/reference/image_reference.h"

namespace kiln::rootfs::artifact {

Result<ConvertResult> convert(const ConvertRequest& req, const ProgressCallback& progress) {
  KILN_ASSIGN_OR_RETURN(ImageReference ref, parse_reference(req.build.reference));
  if (req.push && ref.transport != Transport::kDocker) return make_error("--push needs a registry reference");
  BuildRequest build = req.build;
  build.output_path.clear();
  ConvertResult out;
  KILN_ASSIGN_OR_RETURN(out.image, rootfs::build(build, progress));

  std::optional<ScratchDir> scratch;
  std::string dir = req.out_dir;
  if (dir.empty()) {
    KILN_TRY(io::make_dirs(build.cache_dir + "/tmp", 0755));
    KILN_ASSIGN_OR_RETURN(ScratchDir s, ScratchDir::create(build.cache_dir + "/tmp"));
    scratch.emplace(std::move(s));
    dir = scratch->path();
  }
  const auto start = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(out.chunked, chunks::chunk_image_file(out.image.image_path, dir, req.chunking));
  out.chunk_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!req.push) return out;

  KILN_ASSIGN_OR_RETURN(std::unique_ptr<RegistryPusher> pusher, RegistryPusher::open(ref, source_options(build)));
  KILN_ASSIGN_OR_RETURN(PushedArtifact pushed, push_artifact(*pusher, out.image.manifest_digest, dir));
  out.pushed = std::move(pushed);
  return out;
}

}  // namespace kiln::rootfs::artifact
