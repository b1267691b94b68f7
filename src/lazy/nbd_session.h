// One NBD connection, server side: the fixed newstyle handshake (NBD_OPT_GO / INFO / EXPORT_NAME /
// LIST / ABORT), then transmission with simple replies, reads served by a few worker threads and
// answered in completion order. The export is read-only: writes, trims and write-zeroes get EPERM,
// an unadvertised command EINVAL, and a client breaking the protocol (bad magic, an oversized
// option or payload) is disconnected.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/result.h"

namespace kiln::kilnd::lazy {

// What an NBD server exports: a read-only range of bytes.
class NbdExport {
 public:
  virtual ~NbdExport() = default;
  virtual uint64_t size() const = 0;
  // Fills `out` with bytes [offset, offset + out.size()) (the session checked the range). An error
  // answers EIO for that read; logging and counting it is the export's job. Called from several
  // threads at once.
  virtual Status read(uint64_t offset, std::span<char> out) = 0;
};

struct NbdSessionLimits {
  int handshake_timeout_ms = 10'000;  // the whole negotiation must arrive within this
  uint32_t max_options = 32;          // options before transmission; more end the session
  uint32_t workers = 4;               // reads served at once
  uint32_t max_queued = 64;           // requests read ahead of the workers (then the session waits)
};

struct NbdSessionStats {
  uint64_t reads = 0;
  uint64_t read_bytes = 0;
  uint64_t read_errors = 0;  // EIO answers
  uint64_t refused = 0;      // EINVAL / EPERM answers
};

// Serves the connected socket `fd` until the client disconnects (NBD_CMD_DISC, NBD_OPT_ABORT: ok),
// breaks the protocol or the socket fails (an error saying how), after every accepted read was
// answered or the socket closed. `export_name` is the one name served (the default export "" is
// served too). Shutting the socket down from another thread ends the session.
Status serve_nbd_session(int fd, NbdExport& exp, const std::string& export_name, const NbdSessionLimits& limits,
                         NbdSessionStats* stats = nullptr);

}  // namespace kiln::kilnd::lazy
