// The transport registry pulls and pushes share: one repository's origin, its credentials and
// authentication (anonymous, basic, the bearer-token flow), redirects followed by kiln itself
// with credentials sent only to the registry's own origin, and an optional deadline per call.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "rootfs-builder/reference/image_reference.h"
#include "rootfs-builder/registry/http_client.h"
#include "rootfs-builder/source/image_source.h"

namespace kiln::rootfs {

using Deadline = std::chrono::steady_clock::time_point;
inline constexpr Deadline kNoDeadline = Deadline::max();
// now + timeout; kNoDeadline for a zero timeout.
Deadline deadline_after(std::chrono::milliseconds timeout);

enum class RegistryAccess { kPull, kPush };  // the token scope asked for first

struct RegistryCall {
  std::string method = "GET";
  std::string target;  // "/v2/..." under the registry's base URL, or an absolute URL (upload locations)
  std::vector<std::string> headers;
  size_t max_body = 64 << 10;
  BodySink sink;  // 2xx bodies, as in HttpRequest
  std::string* sink_error = nullptr;
  const RequestBody* body = nullptr;
  Deadline deadline = kNoDeadline;  // for the whole call: redirects and authentication included
};

class RegistryClient {
 public:
  // Resolves credentials (--creds, else the auth file, else the default auth files), pings
  // /v2/ (with tls_verify off an HTTPS failure falls back to plain HTTP) and authenticates when
  // the ping asks for it. Errors: "registry HOST is not reachable: ...", auth failures.
  static Result<std::unique_ptr<RegistryClient>> open(const ImageReference& ref, const SourceOptions& opts,
                                                      RegistryAccess access = RegistryAccess::kPull,
                                                      Deadline deadline = kNoDeadline);
  // A second client (same origin, credentials and token, its own connection) for another thread.
  std::unique_ptr<RegistryClient> clone() const;

  // One request: answers one 401 by authenticating and retrying; GET and HEAD follow up to 5
  // redirects. Any final HTTP status other than 401 is returned as a response.
  Result<HttpResponse> call(const RegistryCall& c);

  const ImageReference& reference() const { return ref_; }
  const std::string& repository() const { return ref_.repository; }
  // "/v2/NAME"
  std::string repo_path() const { return "/v2/" + ref_.repository; }

 private:
  RegistryClient(ImageReference ref, const SourceOptions& opts, RegistryAccess access);
  Status authenticate(const HttpResponse& challenge, Deadline deadline);
  Result<HttpResponse> send(HttpRequest req, Deadline deadline);

  ImageReference ref_;
  HttpOptions http_opts_;
  RegistryAccess access_;
  std::string creds_;
  std::string base_;    // "https://host:port"
  std::string origin_;  // url_origin(base_)
  std::string auth_header_;
  HttpClient http_;
};

// GET /v2/NAME/manifests/REFERENCE (a tag or a digest) with `accept`, at most kMaxDocumentSize
// bytes: the body, its sha256 and the Content-Type (empty when absent); nullopt for a 404.
// Errors: "fetching manifest R: HTTP N ...", "manifest digest mismatch: registry says D, content
// is D'" (a Docker-Content-Digest header that lies).
Result<std::optional<ManifestDoc>> get_manifest(RegistryClient& client, const std::string& reference,
                                                Deadline deadline = kNoDeadline,
                                                std::string_view accept = media_type::kManifestAccept);

// GET /v2/NAME/blobs/D of a small blob into memory, verified against `d` (size and sha256),
// refused without reading on when it grows past d.size or `max_bytes` bytes. Errors:
// "blob D: N bytes (limit M)", "blob D: HTTP N ...", "blob D: more than N bytes",
// "blob D: got N bytes, want M", "blob D: content is sha256:..." (digest mismatch).
Result<std::string> get_small_blob(RegistryClient& client, const Descriptor& d, uint64_t max_bytes,
                                   Deadline deadline = kNoDeadline);

// A readable message from a registry error response (distribution-spec "Error Codes").
std::string registry_error_message(const HttpResponse& r);

}  // namespace kiln::rootfs
