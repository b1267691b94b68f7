// Challenge parsing and auth files.
#include "rootfs-builder/registry/auth.h"

#include <algorithm>
#include <cctype>

#include "common/base64/base64.h"
#include "common/json/field_reader.h"
#include "rootfs-builder/digest/blob_store.h"

namespace kiln::rootfs {

namespace {
std::string lower(std::string_view s) {
  std::string o(s);
  std::transform(o.begin(), o.end(), o.begin(), [](unsigned char c) { return std::tolower(c); });
  return o;
}
}  // namespace

Result<AuthChallenge> parse_www_authenticate(std::string_view h) {
  if (h.size() > 8192) return make_error("WWW-Authenticate header too long");
  size_t i = 0;
  while (i < h.size() && h[i] == ' ') ++i;
  size_t s = i;
  while (i < h.size() && h[i] != ' ') ++i;
  AuthChallenge c;
  c.scheme = lower(h.substr(s, i - s));
  if (c.scheme.empty()) return make_error("empty WWW-Authenticate challenge");
  // auth-param list: key=value or key="quoted \" value", comma separated
  while (i < h.size()) {
    while (i < h.size() && (h[i] == ' ' || h[i] == ',')) ++i;
    size_t ks = i;
    while (i < h.size() && h[i] != '=' && h[i] != ',' && h[i] != ' ') ++i;
    std::string key = lower(h.substr(ks, i - ks));
    if (i >= h.size() || h[i] != '=') {
      if (key.empty()) break;
      continue;  // token68 or a bare token: ignore
    }
    ++i;
    std::string val;
    if (i < h.size() && h[i] == '"') {
      ++i;
      bool closed = false;
      while (i < h.size()) {
        char ch = h[i++];
        if (ch == '\\' && i < h.size()) {
          val += h[i++];
        } else if (ch == '"') {
          closed = true;
          break;
        } else {
          val += ch;
        }
      }
      if (!closed) return make_error("unterminated quoted string in WWW-Authenticate");
    } else {
      size_t vs = i;
      while (i < h.size() && h[i] != ',') ++i;
      val = std::string(h.substr(vs, i - vs));
      while (!val.empty() && val.back() == ' ') val.pop_back();
    }
    if (!key.empty()) c.params[key] = val;
  }
  return c;
}

Result<std::string> credentials_from_auth_file(const std::string& path, const std::string& registry) {
  KILN_ASSIGN_OR_RETURN(std::string body, read_file_capped(path, 1 << 20));
  const std::string where = "auth file " + path;
  auto doc = kiln::json::parse(body);
  if (!doc.ok()) return doc.error().wrap(where);
  // No known-field list: docker, podman and skopeo keep more in this file (credsStore,
  // credHelpers, other registries' entries with identity tokens) that kiln neither uses nor checks.
  auto top = kiln::json::ObjectReader::make(*doc, "");
  if (!top.ok()) return top.error().wrap(where);
  auto auths = top->opt_object("auths");
  if (!auths.ok()) return auths.error().wrap(where);
  if (!*auths) return std::string();
  for (auto it = (*auths)->value().begin(); it != (*auths)->value().end(); ++it) {
    std::string key = it.key();
    // Keys are "host[:port]" or URLs such as "https://host/v1/".
    size_t scheme = key.find("://");
    if (scheme != std::string::npos) key = key.substr(scheme + 3);
    key = key.substr(0, key.find('/'));
    bool hub = registry == "registry-1.docker.io" && (key == "docker.io" || key == "index.docker.io");
    if (key != registry && !hub) continue;
    auto entry = kiln::json::ObjectReader::make(it.value(), (*auths)->field(it.key()));
    if (!entry.ok()) return entry.error().wrap(where);
    auto auth = entry->opt_string("auth");
    if (!auth.ok()) return auth.error().wrap(where);
    if (!*auth) continue;  // an entry with only an identity token: perhaps another one for this host
    KILN_ASSIGN_OR_RETURN(std::string creds, base64::decode(**auth));
    if (creds.find(':') == std::string::npos) return make_error("auth file entry for " + registry + " has no ':'");
    return creds;
  }
  return std::string();
}

}  // namespace kiln::rootfs
