// NBD drive URIs (the NBD URI spec, doc/uri.md in the NBD project): which `path_on_host` values
// name an NBD export instead of a file, and the one form kiln-vmm serves: nbd+unix, no TLS.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace kiln::vmm::config {

struct NbdUri {
  std::string socket;       // Unix socket path of the server (the `socket` query parameter)
  std::string export_name;  // the path after the first '/', percent-decoded;
                            // empty = default
};

// Whether `path_on_host` is meant as an NBD URI: it starts with an nbd scheme (nbd, nbds, nbd+unix,
// nbds+unix, nbd+vsock, ...) followed by "://". Anything else is a file path.
bool is_nbd_uri(std::string_view path_on_host);

// Parses `nbd+unix:///[EXPORT]?socket=PATH`. Errors: another scheme (TCP, TLS or vsock: the VMM has
// no network and no TLS), a host or port, user info, a fragment, a query parameter other than one
// `socket`, a missing or empty socket, a bad percent escape, a NUL byte anywhere, a socket path
// longer than a sockaddr_un holds (107 bytes) or an export name over 4096 bytes (NBD's limit).
// Pure: no file system access.
Result<NbdUri> parse_nbd_uri(std::string_view uri);

}  // namespace kiln::vmm::config
