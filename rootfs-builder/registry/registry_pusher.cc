// Blob and manifest uploads per the OCI distribution-spec ("Pushing blobs": "POST then PUT",
// "Checking if content exists in the registry"; "Pushing Manifests" and its OCI-Subject answer).
#include "rootfs-builder/registry/registry_pusher.h"

namespace kiln::rootfs {

Result<std::unique_ptr<RegistryPusher>> RegistryPusher::open(const ImageReference& ref, const SourceOptions& opts) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<RegistryClient> c, RegistryClient::open(ref, opts, RegistryAccess::kPush));
  return std::make_unique<RegistryPusher>(std::move(c));
}

Result<bool> RegistryPusher::has_blob(const Digest& digest) {
  RegistryCall c;
  c.method = "HEAD";
  c.target = client_->repo_path() + "/blobs/" + digest.str();
  KILN_ASSIGN_OR_RETURN(HttpResponse r, client_->call(c));
  if (r.status == 200) return true;
  if (r.status == 404) return false;
  return make_error("checking blob " + digest.str() + ": " + registry_error_message(r));
}

Result<bool> RegistryPusher::push_blob(const Digest& digest, const RequestBody& body) {
  KILN_ASSIGN_OR_RETURN(bool present, has_blob(digest));
  if (present) return false;
  const std::string what = "pushing blob " + digest.str();
  RegistryCall post;
  post.method = "POST";
  post.target = client_->repo_path() + "/blobs/uploads/";
  RequestBody empty;
  post.body = &empty;  // Content-Length: 0
  KILN_ASSIGN_OR_RETURN(HttpResponse started, client_->call(post));
  if (started.status != 202) return make_error(what + ": starting the upload: " + registry_error_message(started));
  auto loc = started.headers.find("location");
  if (loc == started.headers.end() || loc->second.empty()) return make_error(what + ": upload answer has no Location");
  // Location is absolute or absolute-path (distribution-spec "POST then PUT"); RegistryClient
  // sends credentials only if it is on the registry's origin.
  std::string target = loc->second;
  if (!target.starts_with("/") && !target.starts_with("http://") && !target.starts_with("https://")) {
    return make_error(what + ": unusable upload Location '" + target.substr(0, 200) + "'");
  }
  target += target.find('?') == std::string::npos ? "?" : "&";
  target += "digest=" + digest.str();
  RegistryCall put;
  put.method = "PUT";
  put.target = target;
  put.headers = {"Content-Type: application/octet-stream"};
  put.body = &body;
  KILN_ASSIGN_OR_RETURN(HttpResponse done, client_->call(put));
  if (done.status != 201) return make_error(what + ": " + registry_error_message(done));
  return true;
}

Result<PushedManifest> RegistryPusher::push_manifest(const std::string& reference, std::string_view media_type,
                                                     const std::string& body) {
  PushedManifest out;
  out.digest = sha256_of(body);
  RequestBody b = RequestBody::of(body);
  RegistryCall c;
  c.method = "PUT";
  c.target = client_->repo_path() + "/manifests/" + reference;
  c.headers = {"Content-Type: " + std::string(media_type)};
  c.body = &b;
  KILN_ASSIGN_OR_RETURN(HttpResponse r, client_->call(c));
  if (r.status != 201) return make_error("pushing manifest " + reference + ": " + registry_error_message(r));
  auto dcd = r.headers.find("docker-content-digest");
  if (dcd != r.headers.end() && dcd->second != out.digest.str()) {
    return make_error("pushing manifest " + reference + ": registry stored " + dcd->second + ", sent " +
                      out.digest.str());
  }
  out.subject_indexed = r.headers.contains("oci-subject");
  return out;
}

}  // namespace kiln::rootfs
