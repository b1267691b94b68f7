// The NBD URI kiln-vmm's drive takes for a lazy root disk (`path_on_host`), served on `socket`.
#pragma once

#include <string>

namespace kiln::kilnd::lazy {

inline std::string nbd_drive_uri(const std::string& socket) { return "nbd+unix:///rootfs?socket=" + socket; }

}  // namespace kiln::kilnd::lazy
