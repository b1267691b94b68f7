// libcurl easy-handle wrapper: HTTP/HTTPS only, bounded bodies, connect and stall timeouts.
#include "rootfs-builder/registry/http_client.h"

#include <curl/curl.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "rootfs-builder/registry/error_hints.h"

namespace kiln::rootfs {

namespace {

struct CurlSlist {
  curl_slist* list = nullptr;
  ~CurlSlist() { curl_slist_free_all(list); }
};

struct Transfer {
  HttpResponse* resp;
  size_t max_body;
  const std::function<bool(const char*, size_t)>* sink;
  std::string* sink_error;
  const RequestBody* upload = nullptr;
  uint64_t sent = 0;
  std::string upload_error = {};
  bool overflow = false;
  bool aborted = false;

  bool status_ok() const { return resp->status >= 200 && resp->status < 300; }
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  std::string line(data, len);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.starts_with("HTTP/")) {
    t->resp->headers.clear();
    size_t sp = line.find(' ');
    if (sp != std::string::npos) t->resp->status = std::strtol(line.c_str() + sp + 1, nullptr, 10);
    return len;
  }
  size_t colon = line.find(':');
  if (colon == std::string::npos) return len;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string value = line.substr(colon + 1);
  size_t b = value.find_first_not_of(" \t");
  value = b == std::string::npos ? std::string() : value.substr(b);
  if (t->resp->headers.size() < 256) t->resp->headers[name] = value;
  return len;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->sink && *t->sink && t->status_ok()) {
    if (!(*t->sink)(data, len)) {
      t->aborted = true;
      return 0;
    }
    return len;
  }
  if (t->resp->body.size() + len > t->max_body) {
    t->overflow = true;
    return 0;
  }
  t->resp->body.append(data, len);
  return len;
}

size_t on_read(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const RequestBody& b = *t->upload;
  const uint64_t left = b.size - t->sent;
  const size_t want = static_cast<size_t>(std::min<uint64_t>(left, size * n));
  if (want == 0) return 0;
  if (b.fd < 0) {
    std::memcpy(buf, b.data.data() + t->sent, want);
    t->sent += want;
    return want;
  }
  for (;;) {
    ssize_t got = ::pread(b.fd, buf, want, static_cast<off_t>(t->sent));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      t->upload_error = got == 0 ? "request body file ended before " + std::to_string(b.size) + " bytes"
                                 : std::string("reading request body: ") + std::strerror(errno);
      return CURL_READFUNC_ABORT;
    }
    t->sent += static_cast<uint64_t>(got);
    return static_cast<size_t>(got);
  }
}

}  // namespace

HttpClient::HttpClient(HttpOptions opts) : opts_(std::move(opts)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

Result<HttpResponse> HttpClient::request(const std::string& method, const std::string& url,
                                         const std::vector<std::string>& headers, size_t max_body,
                                         const std::function<bool(const char*, size_t)>& sink,
                                         std::string* sink_error) {
  HttpRequest req;
  req.method = method;
  req.url = url;
  req.headers = headers;
  req.max_body = max_body;
  req.sink = sink;
  req.sink_error = sink_error;
  return perform(req);
}

Result<HttpResponse> HttpClient::perform(const HttpRequest& req) {
  const std::string& url = req.url;
  const std::string& method = req.method;
  std::string* sink_error = req.sink_error;
  CURL* c = static_cast<CURL*>(curl_);
  if (c == nullptr) return make_error("curl_easy_init failed");
  curl_easy_reset(c);
  HttpResponse resp;
  Transfer t{.resp = &resp, .max_body = req.max_body, .sink = &req.sink, .sink_error = sink_error};
  CurlSlist hl;
  for (const auto& h : req.headers) hl.list = curl_slist_append(hl.list, h.c_str());
  // No "Expect: 100-continue" round trip before an upload.
  if (req.body != nullptr) hl.list = curl_slist_append(hl.list, "Expect:");
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl.list);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  if (req.timeout.count() > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);  // abort a transfer stalled for 60 s
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "kiln-rootfs/0.1");
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (req.body != nullptr) {
    t.upload = req.body;
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);  // with CUSTOMREQUEST: POST or PUT with this body
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body->size));
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
  }
  if (!opts_.tls_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!opts_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, opts_.ca_file.c_str());
  CURLcode rc = curl_easy_perform(c);
  if (t.aborted) {
    return make_error(sink_error && !sink_error->empty() ? *sink_error : "transfer aborted");
  }
  if (!t.upload_error.empty()) return make_error("HTTP request to " + url + " failed: " + t.upload_error);
  if (t.overflow) return make_error("response from " + url + " is larger than " + std::to_string(req.max_body) + " bytes");
  if (rc != CURLE_OK) {
    std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    // A plain-HTTP server's answer to a TLS ClientHello reads to OpenSSL as a bad record
    // version: say what that usually means (front ends add their flag, error_hints.h).
    if (rc == CURLE_SSL_CONNECT_ERROR && why.find("wrong version number") != std::string::npos) {
      why += " (" + std::string(kPlainHttpHint) + ")";
    }
    return make_error("HTTP request to " + url + " failed: " + why);
  }
  char* eff = nullptr;
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
  if (eff) resp.effective_url = eff;
  return resp;
}

Result<std::string> resolve_url(const std::string& base, const std::string& location) {
  CURLU* u = curl_url();
  if (u == nullptr) return make_error("curl_url failed");
  std::string out;
  if (curl_url_set(u, CURLUPART_URL, base.c_str(), 0) == CURLUE_OK &&
      curl_url_set(u, CURLUPART_URL, location.c_str(), 0) == CURLUE_OK) {
    char* s = nullptr;
    if (curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK) {
      out = s;
      curl_free(s);
    }
  }
  curl_url_cleanup(u);
  if (out.empty()) return make_error("bad redirect location '" + location.substr(0, 200) + "'");
  return out;
}

Result<std::string> url_origin(const std::string& url) {
  CURLU* u = curl_url();
  if (u == nullptr) return make_error("curl_url failed");
  std::string out;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char *scheme = nullptr, *host = nullptr, *port = nullptr;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    if (scheme && host && port) out = std::string(scheme) + "://" + host + ":" + port;
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  if (out.empty()) return make_error("bad URL '" + url.substr(0, 200) + "'");
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return out;
}

}  // namespace kiln::rootfs
