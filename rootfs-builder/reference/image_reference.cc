// Reference parsing following the distribution reference grammar (docker/distribution
// reference/regexp.go) and skopeo's transport prefixes.
#include "rootfs-builder/reference/image_reference.h"

#include <cctype>

#include "rootfs-builder/digest/digest.h"

namespace kiln::rootfs {

namespace {

constexpr size_t kMaxReference = 4096;
constexpr std::string_view kDockerHubHost = "registry-1.docker.io";

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// path-component: [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
bool valid_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (is_lower_alnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !is_lower_alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" || sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) return false;
    i = j;
  }
  return true;
}

// tag: [\w][\w.-]{0,127}
bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (!word(t[0])) return false;
  for (char c : t) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

// host (domain or [ipv6]) with an optional :port
bool valid_host(std::string_view h) {
  if (h.empty()) return false;
  std::string_view host = h, port;
  if (h.front() == '[') {
    size_t close = h.find(']');
    if (close == std::string_view::npos) return false;
    host = h.substr(1, close - 1);
    std::string_view rest = h.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
    for (char c : host) {
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) return false;
    }
  } else {
    size_t colon = h.find(':');
    if (colon != std::string_view::npos) {
      host = h.substr(0, colon);
      port = h.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (host.empty()) return false;
    for (char c : host) {
      bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
      if (!ok) return false;
    }
  }
  if (port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

Result<ImageReference> parse_docker(std::string_view s) {
  ImageReference ref;
  ref.transport = Transport::kDocker;
  if (s.empty()) return make_error("empty image reference");
  size_t at = s.find('@');
  std::string_view name_tag = s.substr(0, at);
  if (at != std::string_view::npos) {
    KILN_ASSIGN_OR_RETURN(Digest d, Digest::parse(s.substr(at + 1)));
    ref.digest = d.str();
  }
  // The tag is after the last ':' that follows the last '/' (a ':' before it is a port).
  size_t slash = name_tag.rfind('/');
  size_t colon = name_tag.rfind(':');
  std::string_view name = name_tag;
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view tag = name_tag.substr(colon + 1);
    if (!valid_tag(tag)) return make_error("invalid tag '" + std::string(tag) + "'");
    ref.tag = std::string(tag);
    name = name_tag.substr(0, colon);
  }
  if (name.empty()) return make_error("image reference has no repository name");
  // Split off the registry: the first component is a host when it has '.', ':' or is localhost.
  size_t first_slash = name.find('/');
  std::string_view repo = name;
  if (first_slash != std::string_view::npos) {
    std::string_view first = name.substr(0, first_slash);
    if (first.find_first_of(".:[") != std::string_view::npos || first == "localhost") {
      if (!valid_host(first)) return make_error("invalid registry host '" + std::string(first) + "'");
      ref.registry = std::string(first);
      repo = name.substr(first_slash + 1);
    }
  }
  if (ref.registry.empty()) {
    ref.registry = std::string(kDockerHubHost);
    if (repo.find('/') == std::string_view::npos) ref.repository = "library/";
  } else if (ref.registry == "docker.io" || ref.registry == "index.docker.io") {
    ref.registry = std::string(kDockerHubHost);
    if (repo.find('/') == std::string_view::npos) ref.repository = "library/";
  }
  ref.repository += std::string(repo);
  if (ref.repository.size() > 255) return make_error("repository name longer than 255 characters");
  size_t start = 0;
  for (;;) {
    size_t end = ref.repository.find('/', start);
    std::string_view comp = std::string_view(ref.repository).substr(start, end - start);
    if (!valid_component(comp)) {
      return make_error("invalid repository name component '" + std::string(comp) + "'");
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

// "PATH[:REF]": like containers/image, the first ':' separates the path from the ref.
void split_path(std::string_view s, ImageReference& ref) {
  size_t colon = s.find(':');
  ref.path = std::string(s.substr(0, colon));
  if (colon != std::string_view::npos) ref.local_tag = std::string(s.substr(colon + 1));
}

}  // namespace

Result<ImageReference> parse_reference(std::string_view text) {
  if (text.size() > kMaxReference) return make_error("image reference too long");
  auto starts = [&](std::string_view p) { return text.substr(0, p.size()) == p; };
  ImageReference ref;
  if (starts("docker://")) return parse_docker(text.substr(9));
  if (starts("oci:")) {
    ref.transport = Transport::kOciLayout;
    split_path(text.substr(4), ref);
  } else if (starts("oci-archive:")) {
    ref.transport = Transport::kOciArchive;
    split_path(text.substr(12), ref);
  } else if (starts("docker-archive:")) {
    ref.transport = Transport::kDockerArchive;
    split_path(text.substr(15), ref);
  } else {
    return parse_docker(text);
  }
  if (ref.path.empty()) return make_error("image reference '" + std::string(text) + "' has no path");
  return ref;
}

std::string ImageReference::to_string() const {
  switch (transport) {
    case Transport::kDocker: {
      std::string s = "docker://" + registry + "/" + repository;
      if (!tag.empty() && !(tag == "latest" && !digest.empty())) s += ":" + tag;
      if (!digest.empty()) s += "@" + digest;
      return s;
    }
    case Transport::kOciLayout:
      return "oci:" + path + (local_tag.empty() ? "" : ":" + local_tag);
    case Transport::kOciArchive:
      return "oci-archive:" + path + (local_tag.empty() ? "" : ":" + local_tag);
    case Transport::kDockerArchive:
      return "docker-archive:" + path + (local_tag.empty() ? "" : ":" + local_tag);
  }
  return {};
}

}  // namespace kiln::rootfs
