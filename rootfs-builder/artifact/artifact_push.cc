// push_artifact: blobs (empty config, chunk index, chunk data streamed from its file), the
// artifact manifest by digest, then the referrers fallback tag (distribution-spec 1.1
// "Pushing Manifests with Subject": no OCI-Subject header in the answer -> the client keeps
// the sha256-<hex> index).
#include "rootfs-builder/artifact/artifact_push.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "common/io.h"
#include "common/unique_fd.h"
#include "rootfs-builder/artifact/chunk_artifact.h"
#include "rootfs-builder/chunks/chunker.h"

namespace kiln::rootfs::artifact {

Result<PushedArtifact> push_artifact(RegistryPusher& pusher, const Digest& subject, const std::string& chunk_dir) {
  RegistryClient& client = pusher.client();
  const std::string index_path = chunk_dir + "/" + std::string(chunks::kIndexFileName);
  const std::string data_path = chunk_dir + "/" + std::string(chunks::kDataFileName);
  KILN_ASSIGN_OR_RETURN(std::string index_bytes, io::read_file(index_path, chunks::kMaxIndexBytes));
  auto index = chunks::parse(index_bytes);
  if (!index.ok()) return index.error().wrap(index_path);
  UniqueFd data(::open(data_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!data) return make_error("opening " + data_path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(data.get(), &st) != 0) return make_error("stat " + data_path + ": " + std::strerror(errno));
  if (static_cast<uint64_t>(st.st_size) != index->data_size) {
    return make_error(data_path + " has " + std::to_string(st.st_size) + " bytes, its index says " +
                      std::to_string(index->data_size));
  }

  // The subject descriptor: the image manifest as the registry serves it.
  KILN_ASSIGN_OR_RETURN(std::optional<ManifestDoc> image, get_manifest(client, subject.str()));
  if (!image) return make_error("image manifest " + subject.str() + " not found in " + client.repository());
  if (image->digest != subject) return make_error("registry sent " + image->digest.str() + " for " + subject.str());
  PushedArtifact out;
  out.subject.digest = subject;
  out.subject.size = image->body.size();
  KILN_ASSIGN_OR_RETURN(DocumentKind kind, classify_document(image->body, image->media_type, &out.subject.media_type));
  if (kind != DocumentKind::kManifest) return make_error(subject.str() + " is an index, not an image manifest");

  ArtifactLayers layers;
  layers.index.digest = out.index = chunks::index_digest(index_bytes);
  layers.index.size = index_bytes.size();
  KILN_ASSIGN_OR_RETURN(layers.data.digest, sha256_of_file(data.get(), &layers.data.size));
  layers.image_size = index->image_size;
  layers.chunk_size = index->chunk_size;

  const Descriptor empty = empty_descriptor();
  KILN_ASSIGN_OR_RETURN(bool up, pusher.push_blob(empty.digest, RequestBody::of(std::string(kEmptyJson))));
  if (up) out.uploaded_bytes += empty.size;
  KILN_ASSIGN_OR_RETURN(up, pusher.push_blob(layers.index.digest, RequestBody::of(index_bytes)));
  if (up) out.uploaded_bytes += layers.index.size;
  KILN_ASSIGN_OR_RETURN(up, pusher.push_blob(layers.data.digest, RequestBody::of_file(data.get(), layers.data.size)));
  if (up) out.uploaded_bytes += layers.data.size;

  const std::string manifest = artifact_manifest_json(out.subject, layers);
  out.artifact = sha256_of(manifest);
  KILN_ASSIGN_OR_RETURN(PushedManifest pushed,
                        pusher.push_manifest(out.artifact.str(), media_type::kOciManifest, manifest));
  if (pushed.subject_indexed) return out;

  // Tag-schema fallback: read, add, write back. Two pushers racing here can lose an entry
  // (the spec's known limit of the fallback); pushing again repairs it.
  const std::string tag = referrers_tag(subject);
  KILN_ASSIGN_OR_RETURN(std::optional<ManifestDoc> current,
                        get_manifest(client, tag, kNoDeadline, media_type::kOciIndex));
  std::optional<std::string> body;
  if (current) body = std::move(current->body);
  auto updated = add_referrer(body, current ? current->media_type : std::string(),
                              referrer_descriptor(out.artifact, manifest.size(), layers));
  if (!updated.ok()) return updated.error().wrap("referrers tag " + tag);
  if (*updated) {
    KILN_TRY(pusher.push_manifest(tag, media_type::kOciIndex, **updated));
    out.fallback_tag_updated = true;
  }
  return out;
}

}  // namespace kiln::rootfs::artifact
