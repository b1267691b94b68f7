// Fuzz target: NBD drive URI parsing (vmm/config/nbd_uri.h), a pure function over text. A URI that
// parses names a non-empty socket path that fits a sockaddr_un and has no NUL byte, and an export
// name of at most 4096 bytes without NUL.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vmm/config/nbd_uri.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto uri = kiln::vmm::config::parse_nbd_uri(text);
  if (!uri.ok()) return 0;
  if (!kiln::vmm::config::is_nbd_uri(text)) std::abort();
  if (uri->socket.empty() || uri->socket.size() > 107 || uri->socket.find('\0') != std::string::npos) std::abort();
  if (uri->export_name.size() > 4096 || uri->export_name.find('\0') != std::string::npos) std::abort();
  return 0;
}
