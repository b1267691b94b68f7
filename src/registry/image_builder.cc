// rootfs-builder's build() as kilnd's ImageBuilder: its progress and result as ImageStatus.
#include "src/registry/image_builder.h"

#include "common/io.h"
#include "rootfs-builder/artifact/artifact_discovery.h"
#include "rootfs-builder/artifact/registry_chunk_source.h"
#include "rootfs-builder/artifact/chunk_artifact.h"
#include "rootfs-builder/builder/builder.h"
#include "rootfs-builder/chunks/chunk_index.h"

namespace kiln::kilnd::registry {

namespace {

void set_config(ImageStatus& s, const rootfs::ImageConfig& config) {
  s.entrypoint = config.entrypoint;
  s.cmd = config.cmd;
  s.env = config.env;
  s.working_dir = config.working_dir;
  s.user = config.user;
  s.labels = config.labels;
}

// The request rootfs-builder gets for `c`: its reference, TLS setting and credentials.
rootfs::BuildRequest build_request(const FunctionConfig& c, const std::string& cache_dir) {
  rootfs::BuildRequest req;
  req.reference = c.image;
  req.cache_dir = cache_dir;
  req.tls_verify = c.tls_verify;
  if (!c.credentials.empty()) req.credentials = c.credentials.username + ":" + c.credentials.password;
  return req;
}

// The lazy image of `req` if its registry holds the artifact; nullopt: build it whole.
Result<std::optional<ImageStatus>> find_lazy(const rootfs::BuildRequest& req, const std::string& cache_dir,
                                             const std::function<void(const ImageStatus&)>& progress) {
  KILN_ASSIGN_OR_RETURN(rootfs::ImageReference ref, rootfs::parse_reference(req.reference));
  if (ref.transport != rootfs::Transport::kDocker) return std::optional<ImageStatus>();  // local sources: nothing to fetch lazily
  ImageStatus s;
  s.state = ImageState::kBuilding;
  s.stage = "resolve";
  s.detail = "looking for a chunked-rootfs artifact";
  progress(s);
  KILN_ASSIGN_OR_RETURN(rootfs::InspectResult inspected, rootfs::inspect(req));
  KILN_ASSIGN_OR_RETURN(auto found, rootfs::artifact::discover_artifact(ref, inspected.manifest_digest,
                                                                        rootfs::source_options(req)));
  if (!found) return std::optional<ImageStatus>();
  const std::string index_path = cache_dir + "/lazy/" + found->index_digest.hex + ".index";
  KILN_TRY(io::make_dirs(cache_dir + "/lazy", 0700));
  KILN_TRY(io::write_file_atomic(index_path, rootfs::chunks::encode(found->index)));
  s.state = ImageState::kReady;
  s.stage = "done";
  s.detail = "lazy: " + found->index_digest.str();
  s.manifest_digest = inspected.manifest_digest.str();
  s.lazy = ImageStatus::Lazy{found->index_digest.str(), index_path, found->index.image_size,
                             found->data.digest.str(), found->data.size};
  set_config(s, inspected.config);
  return std::optional<ImageStatus>(std::move(s));
}

}  // namespace

ImageBuilder rootfs_image_builder(std::string cache_dir, bool lazy) {
  return [cache_dir, lazy](const FunctionConfig& c, const std::function<void(const ImageStatus&)>& progress)
             -> Result<ImageStatus> {
    const rootfs::BuildRequest req = build_request(c, cache_dir);
    if (lazy) {
      KILN_ASSIGN_OR_RETURN(std::optional<ImageStatus> lazy_image, find_lazy(req, cache_dir, progress));
      if (lazy_image) return std::move(*lazy_image);
    }
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
    set_config(s, built.config);
    return s;
  };
}

Result<std::shared_ptr<rootfs::chunks::ChunkSource>> lazy_chunk_source(const FunctionConfig& config,
                                                                       const ImageStatus::Lazy& lazy) {
  const rootfs::BuildRequest req = build_request(config, "");
  KILN_ASSIGN_OR_RETURN(rootfs::ImageReference ref, rootfs::parse_reference(req.reference));
  rootfs::Descriptor data;
  data.media_type = std::string(rootfs::artifact::kDataMediaType);
  KILN_ASSIGN_OR_RETURN(data.digest, rootfs::Digest::parse(lazy.data_digest));
  data.size = lazy.data_size;
  return std::shared_ptr<rootfs::chunks::ChunkSource>(
      std::make_shared<rootfs::artifact::RegistryChunkSource>(ref, rootfs::source_options(req), data));
}

}  // namespace kiln::kilnd::registry
