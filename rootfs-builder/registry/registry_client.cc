// Registry transport per the OCI distribution-spec and the Docker token authentication spec
// (WWW-Authenticate: Bearer realm,service,scope), shared by pulls (RegistrySource) and pushes
// (RegistryPusher).
#include "rootfs-builder/registry/registry_client.h"

#include <cstdlib>

#include "common/base64/base64.h"
#include "common/json/field_reader.h"
#include "common/percent_encode.h"
#include "rootfs-builder/registry/auth.h"
#include "rootfs-builder/registry/error_hints.h"

namespace kiln::rootfs {

namespace {

constexpr int kMaxRedirects = 5;

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

Deadline deadline_after(std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) return kNoDeadline;
  return std::chrono::steady_clock::now() + timeout;
}

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

RegistryClient::RegistryClient(ImageReference ref, const SourceOptions& opts, RegistryAccess access)
    : ref_(std::move(ref)), http_opts_{opts.tls_verify, opts.ca_file}, access_(access), http_(http_opts_) {}

Result<std::unique_ptr<RegistryClient>> RegistryClient::open(const ImageReference& ref, const SourceOptions& opts,
                                                             RegistryAccess access, Deadline deadline) {
  std::unique_ptr<RegistryClient> s(new RegistryClient(ref, opts, access));
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
      if (const char* run = std::getenv("XDG_RUNTIME_DIR"))
        defaults.push_back(std::string(run) + "/containers/auth.json");
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
  HttpRequest ping;
  ping.url = "https://" + ref.registry + "/v2/";
  s->base_ = "https://" + ref.registry;
  auto r = s->send(ping, deadline);
  if (!r.ok() && !opts.tls_verify) {
    s->base_ = "http://" + ref.registry;
    ping.url = s->base_ + "/v2/";
    r = s->send(ping, deadline);
  }
  if (!r.ok()) return r.error().wrap("registry " + ref.registry + " is not reachable");
  KILN_ASSIGN_OR_RETURN(s->origin_, url_origin(s->base_));
  if (r->status == 401) KILN_TRY(s->authenticate(*r, deadline));
  return s;
}

std::unique_ptr<RegistryClient> RegistryClient::clone() const {
  std::unique_ptr<RegistryClient> c(
      new RegistryClient(ref_, SourceOptions{http_opts_.tls_verify, {}, {}, http_opts_.ca_file, {}}, access_));
  c->creds_ = creds_;
  c->base_ = base_;
  c->origin_ = origin_;
  c->auth_header_ = auth_header_;
  return c;
}

Result<HttpResponse> RegistryClient::send(HttpRequest req, Deadline deadline) {
  if (deadline != kNoDeadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return make_error("HTTP request to " + req.url + " failed: deadline exceeded");
    req.timeout = left;
  }
  return http_.perform(req);
}

Status RegistryClient::authenticate(const HttpResponse& resp, Deadline deadline) {
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
  std::string scope = "repository:" + ref_.repository + (access_ == RegistryAccess::kPush ? ":pull,push" : ":pull");
  auto sc = c.params.find("scope");
  if (sc != c.params.end() && !sc->second.empty()) scope = sc->second;
  auto svc = c.params.find("service");
  if (svc != c.params.end()) url += "service=" + percent_encode(svc->second) + "&";
  url += "scope=" + percent_encode(scope);
  HttpRequest tq;
  tq.url = url;
  tq.max_body = 1 << 20;
  if (!creds_.empty()) tq.headers.push_back("Authorization: Basic " + base64::encode(creds_));
  KILN_ASSIGN_OR_RETURN(HttpResponse tr, send(tq, deadline));
  if (tr.status == 401 || tr.status == 403) {
    return make_error("authentication to " + ref_.registry +
                      " failed (wrong credentials?): " + registry_error_message(tr));
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

Result<HttpResponse> RegistryClient::call(const RegistryCall& c) {
  const bool follow = c.method == "GET" || c.method == "HEAD";
  const std::string first = c.target.starts_with("/") ? base_ + c.target : c.target;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string url = first;
    HttpResponse resp;
    bool same_origin = true;
    for (int hop = 0;; ++hop) {
      KILN_ASSIGN_OR_RETURN(std::string origin, url_origin(url));
      same_origin = origin == origin_;
      HttpRequest req;
      req.method = c.method;
      req.url = url;
      req.headers = c.headers;
      req.max_body = c.max_body;
      req.sink = c.sink;
      req.sink_error = c.sink_error;
      req.body = c.body;
      // Credentials never leave the registry's origin (e.g. a redirect to blob storage).
      if (same_origin && !auth_header_.empty()) req.headers.push_back(auth_header_);
      KILN_ASSIGN_OR_RETURN(resp, send(std::move(req), c.deadline));
      if (!follow || !is_redirect(resp.status)) break;
      auto loc = resp.headers.find("location");
      if (loc == resp.headers.end()) return make_error("redirect without Location from " + url);
      if (hop + 1 >= kMaxRedirects) return make_error("too many redirects for " + first);
      KILN_ASSIGN_OR_RETURN(url, resolve_url(url, loc->second));
    }
    if (resp.status == 401 && attempt == 0 && same_origin) {
      std::string before = auth_header_;
      KILN_TRY(authenticate(resp, c.deadline));
      if (auth_header_ == before && !before.starts_with("Authorization: Bearer")) {
        return make_error("authentication to " + ref_.registry + " failed (wrong credentials?)");
      }
      continue;
    }
    if (resp.status == 401) {
      return make_error("authentication to " + ref_.registry +
                        " failed (wrong credentials?): " + registry_error_message(resp));
    }
    return resp;
  }
  return make_error("unreachable");
}

Result<std::optional<ManifestDoc>> get_manifest(RegistryClient& client, const std::string& reference, Deadline deadline,
                                                std::string_view accept) {
  RegistryCall c;
  c.target = client.repo_path() + "/manifests/" + reference;
  c.headers = {"Accept: " + std::string(accept)};
  c.max_body = kMaxDocumentSize;
  c.deadline = deadline;
  KILN_ASSIGN_OR_RETURN(HttpResponse r, client.call(c));
  if (r.status == 404) return std::optional<ManifestDoc>();
  if (r.status != 200) return make_error("fetching manifest " + reference + ": " + registry_error_message(r));
  ManifestDoc doc;
  doc.body = std::move(r.body);
  doc.digest = sha256_of(doc.body);
  if (auto ct = r.headers.find("content-type"); ct != r.headers.end()) doc.media_type = ct->second;
  auto dcd = r.headers.find("docker-content-digest");
  if (dcd != r.headers.end() && dcd->second != doc.digest.str()) {
    return make_error("manifest digest mismatch: registry says " + dcd->second + ", content is " + doc.digest.str());
  }
  return std::optional<ManifestDoc>(std::move(doc));
}

Result<std::string> get_small_blob(RegistryClient& client, const Descriptor& d, uint64_t max_bytes, Deadline deadline) {
  const std::string what = "blob " + d.digest.str();
  if (d.size > max_bytes) {
    return make_error(what + ": " + std::to_string(d.size) + " bytes (limit " + std::to_string(max_bytes) + ")");
  }
  std::string out, sink_error;
  RegistryCall c;
  c.target = client.repo_path() + "/blobs/" + d.digest.str();
  c.deadline = deadline;
  c.sink_error = &sink_error;
  c.sink = [&](const char* data, size_t len) {
    if (out.size() + len > d.size) {
      sink_error = what + ": more than " + std::to_string(d.size) + " bytes";
      return false;
    }
    out.append(data, len);
    return true;
  };
  KILN_ASSIGN_OR_RETURN(HttpResponse r, client.call(c));
  if (r.status != 200) return make_error(what + ": " + registry_error_message(r));
  if (out.size() != d.size) {
    return make_error(what + ": got " + std::to_string(out.size()) + " bytes, want " + std::to_string(d.size));
  }
  if (Digest got = sha256_of(out); got != d.digest) return make_error(what + ": content is " + got.str());
  return out;
}

}  // namespace kiln::rootfs
