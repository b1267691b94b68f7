// Registry pulls per the OCI distribution-spec ("Pulling manifests", "Pulling blobs") and the
// Docker token authentication spec (WWW-Authenticate: Bearer realm,service,scope).
#include "rootfs-builder/registry/registry_source.h"

#include <cstdlib>
#include <vector>

#include "common/base64/base64.h"
#include "common/json/field_reader.h"
#include "common/percent_encode.h"
#include "rootfs-builder/registry/auth.h"
#include "rootfs-builder/registry/error_hints.h"

namespace kiln::rootfs {

namespace {

constexpr int kMaxRedirects = 5;

}  // namespace

std::string registry_error_message(const HttpResponse& r) {
  std::string msg = "HTTP " + std::to_string(r.status);
  // Lenient on purpose: this only decorates an error already found, from whatever body came
  // (the distribution-spec's {"errors": [{"code", "message"}]}, or a proxy's HTML): what does
  // not fit is left out, never an error of its own.
  auto j = kiln::json::parse(r.body);
  if (!j.ok()) return msg;
  auto doc = kiln::json::ObjectReader::make(*j, "");
  if (!doc.ok()) return msg;
  auto errors = doc->opt_array("errors");
  if (!errors.ok() || *errors == nullptr) return msg;
  for (const auto& e : **errors) {
    auto error = kiln::json::ObjectReader::make(e, "");
    if (!error.ok()) continue;
    if (auto code = error->opt_string("code"); code.ok() && *code) msg += " " + **code;
    if (auto text = error->opt_string("message"); text.ok() && *text) msg += ": " + **text;
    break;
  }
  return msg;
}

RegistrySource::RegistrySource(ImageReference ref, SourceOptions opts)
    : ref_(std::move(ref)), opts_(std::move(opts)), http_(HttpOptions{opts_.tls_verify, opts_.ca_file}) {}

Result<std::unique_ptr<ImageSource>> RegistrySource::open(const ImageReference& ref, const SourceOptions& opts) {
  std::unique_ptr<RegistrySource> s(new RegistrySource(ref, opts));
  if (!opts.credentials.empty()) {
    if (opts.credentials.find(':') == std::string::npos) return make_error("--creds must be USER:PASSWORD");
    s->creds_ = opts.credentials;
  } else {
    std::string file = opts.auth_file;
    if (file.empty() && std::getenv("REGISTRY_AUTH_FILE")) file = std::getenv("REGISTRY_AUTH_FILE");
    if (!file.empty()) {
      KILN_ASSIGN_OR_RETURN(s->creds_, credentials_from_auth_file(file, ref.registry));
    } else {
      // The defaults podman/skopeo and docker read; each is optional.
      std::vector<std::string> defaults;
      if (const char* run = std::getenv("XDG_RUNTIME_DIR")) defaults.push_back(std::string(run) + "/containers/auth.json");
      if (const char* home = std::getenv("HOME")) defaults.push_back(std::string(home) + "/.docker/config.json");
      for (const auto& f : defaults) {
        auto c = credentials_from_auth_file(f, ref.registry);
        if (c.ok() && !c->empty()) {
          s->creds_ = *c;
          break;
        }
      }
    }
  }
  // Ping /v2/ (distribution-spec "Determining support"). With --tls-verify=false an HTTPS
  // failure falls back to plain HTTP, as skopeo/podman do for insecure registries.
  s->base_ = "https://" + ref.registry;
  auto ping = s->http_.request("GET", s->base_ + "/v2/", {}, 64 << 10);
  if (!ping.ok() && !opts.tls_verify) {
    s->base_ = "http://" + ref.registry;
    ping = s->http_.request("GET", s->base_ + "/v2/", {}, 64 << 10);
  }
  if (!ping.ok()) return ping.error().wrap("registry " + ref.registry + " is not reachable");
  KILN_ASSIGN_OR_RETURN(s->origin_, url_origin(s->base_));
  if (ping->status == 401) KILN_TRY(s->authenticate(*ping));
  return std::unique_ptr<ImageSource>(std::move(s));
}

std::unique_ptr<ImageSource> RegistrySource::clone_for_download() {
  std::unique_ptr<RegistrySource> c(new RegistrySource(ref_, opts_));
  c->creds_ = creds_;
  c->base_ = base_;
  c->origin_ = origin_;
  c->auth_header_ = auth_header_;
  return c;
}

Status RegistrySource::authenticate(const HttpResponse& resp) {
  auto h = resp.headers.find("www-authenticate");
  if (h == resp.headers.end()) return make_error("registry answered 401 without a WWW-Authenticate challenge");
  KILN_ASSIGN_OR_RETURN(AuthChallenge c, parse_www_authenticate(h->second));
  if (c.scheme == "basic") {
    if (creds_.empty()) {
      // Neutral: kiln-rootfs and the kiln CLI name their own flags (add_flag_hints).
      return make_error("registry " + ref_.registry + " " + std::string(kNoCredentialsHint));
    }
    auth_header_ = "Authorization: Basic " + base64::encode(creds_);
    return ok_status();
  }
  if (c.scheme != "bearer") return make_error("unsupported auth scheme '" + c.scheme + "'");
  auto realm = c.params.find("realm");
  if (realm == c.params.end() || realm->second.empty()) return make_error("bearer challenge without realm");
  if (!realm->second.starts_with("https://") && !realm->second.starts_with("http://")) {
    return make_error("bearer realm is not an http(s) URL");
  }
  std::string url = realm->second;
  url += url.find('?') == std::string::npos ? "?" : "&";
  std::string scope = "repository:" + ref_.repository + ":pull";
  auto sc = c.params.find("scope");
  if (sc != c.params.end() && !sc->second.empty()) scope = sc->second;
  auto svc = c.params.find("service");
  if (svc != c.params.end()) url += "service=" + percent_encode(svc->second) + "&";
  url += "scope=" + percent_encode(scope);
  std::vector<std::string> headers;
  if (!creds_.empty()) headers.push_back("Authorization: Basic " + base64::encode(creds_));
  KILN_ASSIGN_OR_RETURN(HttpResponse tr, http_.request("GET", url, headers, 1 << 20));
  if (tr.status == 401 || tr.status == 403) {
    return make_error("authentication to " + ref_.registry + " failed (wrong credentials?): " +
                      registry_error_message(tr));
  }
  if (tr.status != 200) return make_error("token endpoint answered " + registry_error_message(tr));
  // Token endpoints differ in which member they fill (Docker's token spec: "token"; OAuth2:
  // "access_token"), so the first usable one wins and an unusable one is passed over.
  std::string token;
  if (auto j = kiln::json::parse(tr.body); j.ok()) {
    if (auto doc = kiln::json::ObjectReader::make(*j, ""); doc.ok()) {
      for (const char* k : {"token", "access_token"}) {
        if (auto t = doc->opt_string(k); t.ok() && *t && !(*t)->empty()) {
          token = **t;
          break;
        }
      }
    }
  }
  if (token.empty() || token.find_first_of("\r\n") != std::string::npos) {
    return make_error("token endpoint returned no usable token");
  }
  auth_header_ = "Authorization: Bearer " + token;
  return ok_status();
}

Result<HttpResponse> RegistrySource::get(const std::string& path, const std::vector<std::string>& headers,
                                         size_t max_body, const std::function<bool(const char*, size_t)>& sink,
                                         std::string* sink_error) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string url = base_ + path;
    HttpResponse resp;
    bool same_origin = true;
    for (int hop = 0;; ++hop) {
      KILN_ASSIGN_OR_RETURN(std::string origin, url_origin(url));
      same_origin = origin == origin_;
      std::vector<std::string> h = headers;
      // Credentials never leave the registry's origin (e.g. a redirect to blob storage).
      if (same_origin && !auth_header_.empty()) h.push_back(auth_header_);
      KILN_ASSIGN_OR_RETURN(resp, http_.request("GET", url, h, max_body, sink, sink_error));
      bool redirect = resp.status == 301 || resp.status == 302 || resp.status == 303 ||
                      resp.status == 307 || resp.status == 308;
      if (!redirect) break;
      auto loc = resp.headers.find("location");
      if (loc == resp.headers.end()) return make_error("redirect without Location from " + url);
      if (hop + 1 >= kMaxRedirects) return make_error("too many redirects for " + base_ + path);
      KILN_ASSIGN_OR_RETURN(url, resolve_url(url, loc->second));
    }
    if (resp.status == 401 && attempt == 0 && same_origin) {
      std::string before = auth_header_;
      KILN_TRY(authenticate(resp));
      if (auth_header_ == before && !before.starts_with("Authorization: Bearer")) {
        return make_error("authentication to " + ref_.registry + " failed (wrong credentials?)");
      }
      continue;
    }
    if (resp.status == 401) {
      return make_error("authentication to " + ref_.registry + " failed (wrong credentials?): " +
                        registry_error_message(resp));
    }
    return resp;
  }
  return make_error("unreachable");
}

Result<ManifestDoc> RegistrySource::fetch_manifest(const std::string& reference, const std::string& expected_type) {
  std::string path = "/v2/" + ref_.repository + "/manifests/" + reference;
  KILN_ASSIGN_OR_RETURN(HttpResponse r, get(path, {"Accept: " + std::string(media_type::kManifestAccept)},
                                            kMaxDocumentSize));
  if (r.status == 404) return make_error("manifest " + reference + " not found in " + ref_.repository +
                                         ": " + registry_error_message(r));
  if (r.status != 200) return make_error("fetching manifest " + reference + ": " + registry_error_message(r));
  ManifestDoc doc;
  doc.body = std::move(r.body);
  doc.digest = sha256_of(doc.body);
  auto ct = r.headers.find("content-type");
  doc.media_type = ct != r.headers.end() ? ct->second : expected_type;
  auto dcd = r.headers.find("docker-content-digest");
  if (dcd != r.headers.end() && dcd->second != doc.digest.str()) {
    return make_error("manifest digest mismatch: registry says " + dcd->second + ", content is " +
                      doc.digest.str());
  }
  return doc;
}

Result<ManifestDoc> RegistrySource::root_manifest() {
  std::string reference = ref_.digest.empty() ? ref_.tag : ref_.digest;
  KILN_ASSIGN_OR_RETURN(ManifestDoc doc, fetch_manifest(reference, ""));
  if (!ref_.digest.empty() && doc.digest.str() != ref_.digest) {
    return make_error("digest mismatch: asked for " + ref_.digest + ", registry sent " + doc.digest.str());
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
  auto r = get("/v2/" + ref_.repository + "/blobs/" + d.digest.str(), {}, 64 << 10, sink, &sink_error);
  if (!r.ok()) return r.error().wrap("blob " + d.digest.str());
  if (r->status != 200) return make_error("blob " + d.digest.str() + ": " + registry_error_message(*r));
  auto c = store.commit(std::move(w));
  if (!c.ok()) return c.error().wrap("blob " + d.digest.str());
  return ok_status();
}

}  // namespace kiln::rootfs
