// Registry pulls per the OCI distribution-spec ("Pulling manifests", "Pulling blobs") over the
// shared RegistryClient (auth, redirects).
#include "rootfs-builder/registry/registry_source.h"

#include <vector>

namespace kiln::rootfs {

Result<std::unique_ptr<ImageSource>> RegistrySource::open(const ImageReference& ref, const SourceOptions& opts) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<RegistryClient> c, RegistryClient::open(ref, opts));
  return std::unique_ptr<ImageSource>(new RegistrySource(std::move(c)));
}

std::unique_ptr<ImageSource> RegistrySource::clone_for_download() {
  return std::unique_ptr<ImageSource>(new RegistrySource(client_->clone()));
}

Result<HttpResponse> RegistrySource::get(const std::string& path, const std::vector<std::string>& headers,
                                         size_t max_body, const BodySink& sink, std::string* sink_error) {
  RegistryCall c;
  c.target = path;
  c.headers = headers;
  c.max_body = max_body;
  c.sink = sink;
  c.sink_error = sink_error;
  return client_->call(c);
}

Result<ManifestDoc> RegistrySource::fetch_manifest(const std::string& reference, const std::string& expected_type) {
  KILN_ASSIGN_OR_RETURN(std::optional<ManifestDoc> doc, get_manifest(*client_, reference));
  if (!doc) return make_error("manifest " + reference + " not found in " + client_->repository());
  if (doc->media_type.empty()) doc->media_type = expected_type;
  return std::move(*doc);
}

Result<ManifestDoc> RegistrySource::root_manifest() {
  std::string reference = client_->reference().digest.empty() ? client_->reference().tag : client_->reference().digest;
  KILN_ASSIGN_OR_RETURN(ManifestDoc doc, fetch_manifest(reference, ""));
  if (!client_->reference().digest.empty() && doc.digest.str() != client_->reference().digest) {
    return make_error("digest mismatch: asked for " + client_->reference().digest + ", registry sent " + doc.digest.str());
  }
  return doc;
}

Result<ManifestDoc> RegistrySource::manifest(const Descriptor& d) {
  if (d.size > kMaxDocumentSize) return make_error("manifest " + d.digest.str() + " is too large");
  KILN_ASSIGN_OR_RETURN(ManifestDoc doc, fetch_manifest(d.digest.str(), d.media_type));
  KILN_TRY(verify_document(doc.body, d));
  return doc;
}

Status RegistrySource::fetch_blob(const Descriptor& d, BlobStore& store, const ByteProgress& progress) {
  if (store.has(d.digest)) {
    if (progress) progress(d.size);
    return ok_status();
  }
  KILN_ASSIGN_OR_RETURN(BlobWriter w, store.begin(d.digest, d.size));
  std::string sink_error;
  auto sink = [&](const char* data, size_t len) {
    Status s = w.write(data, len);
    if (!s.ok()) {
      sink_error = s.error().message;
      return false;
    }
    if (progress) progress(w.written());
    return true;
  };
  auto r = get("/v2/" + client_->repository() + "/blobs/" + d.digest.str(), {}, 64 << 10, sink, &sink_error);
  if (!r.ok()) return r.error().wrap("blob " + d.digest.str());
  if (r->status != 200) return make_error("blob " + d.digest.str() + ": " + registry_error_message(*r));
  auto c = store.commit(std::move(w));
  if (!c.ok()) return c.error().wrap("blob " + d.digest.str());
  return ok_status();
}

}  // namespace kiln::rootfs
