// NBD drive URI parsing (see nbd_uri.h).
#include "vmm/config/nbd_uri.h"

#include <sys/un.h>

#include "common/percent_encode.h"

namespace kiln::vmm::config {
namespace {

constexpr size_t kMaxExportName = 4096;  // NBD protocol: export names are at most 4096 bytes
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

bool scheme_char(char c) { return (c >= 'a' && c <= 'z') || c == '+'; }

Error refuse(std::string_view uri, const std::string& why) {
  return make_error("NBD drive URI '" + std::string(uri.substr(0, 200)) + "': " + why);
}

}  // namespace

bool is_nbd_uri(std::string_view path_on_host) {
  const size_t sep = path_on_host.find("://");
  if (sep == std::string_view::npos || path_on_host.substr(0, 3) != "nbd") return false;
  for (char c : path_on_host.substr(0, sep)) {
    if (!scheme_char(c)) return false;
  }
  return true;
}

Result<NbdUri> parse_nbd_uri(std::string_view uri) {
  if (uri.find('\0') != std::string_view::npos) return refuse(uri, "contains a NUL byte");
  const size_t sep = uri.find("://");
  if (!is_nbd_uri(uri)) return refuse(uri, "not an nbd URI");
  const std::string_view scheme = uri.substr(0, sep);
  if (scheme != "nbd+unix") {
    if (scheme.substr(0, 4) == "nbds") {
      return refuse(uri, "TLS (nbds) is not supported: use nbd+unix:///EXPORT?socket=PATH");
    }
    return refuse(uri, "scheme " + std::string(scheme) +
                           " is not supported: kiln-vmm has no network; only nbd+unix:///EXPORT?socket=PATH");
  }
  std::string_view rest = uri.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) return refuse(uri, "a fragment is not allowed");
  const size_t q = rest.find('?');
  std::string_view hier = rest.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);
  // Authority: empty for Unix sockets (nbd+unix:///...).
  if (hier.empty() || hier.front() != '/') return refuse(uri, "a host, port or user is not allowed with nbd+unix");

  NbdUri out;
  auto name = percent_decode(hier.substr(1));
  if (!name) return refuse(uri, "bad percent escape in the export name");
  if (name->find('\0') != std::string::npos) return refuse(uri, "the export name contains a NUL byte");
  if (name->size() > kMaxExportName) return refuse(uri, "the export name is longer than 4096 bytes");
  out.export_name = std::move(*name);

  bool have_socket = false;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos || kv.substr(0, eq) != "socket") {
      return refuse(uri, "unsupported query parameter '" + std::string(kv.substr(0, eq)) + "' (only socket=PATH)");
    }
    if (have_socket) return refuse(uri, "socket is given twice");
    auto path = percent_decode(kv.substr(eq + 1));
    if (!path) return refuse(uri, "bad percent escape in the socket path");
    if (path->find('\0') != std::string::npos) return refuse(uri, "the socket path contains a NUL byte");
    if (path->empty()) return refuse(uri, "the socket path is empty");
    if (path->size() > kMaxSocketPath) return refuse(uri, "the socket path is longer than 107 bytes");
    out.socket = std::move(*path);
    have_socket = true;
  }
  if (!have_socket) return refuse(uri, "missing ?socket=PATH");
  return out;
}

}  // namespace kiln::vmm::config
