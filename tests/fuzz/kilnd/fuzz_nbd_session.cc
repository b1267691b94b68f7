// Fuzz target: kilnd's NBD server session (src/lazy/nbd_session.h) fed a hostile client's bytes
// over a socketpair: the negotiation and transmission parsers, the option and payload bounds.
// Input: everything the client sends. The session must end (the input ends with the client's end of
// stream) without a crash, and every read it answers stays inside the export.
#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "common/io.h"
#include "common/unique_fd.h"
#include "src/lazy/nbd_session.h"

namespace {

class Export : public kiln::kilnd::lazy::NbdExport {
 public:
  uint64_t size() const override { return 1 << 20; }
  kiln::Status read(uint64_t offset, std::span<char> out) override {
    if (offset > size() || out.size() > size() - offset) std::abort();  // the session checks ranges
    if (offset % 3 == 1) return kiln::make_error("injected failure");
    std::memset(out.data(), static_cast<int>(offset & 0xff), out.size());
    return kiln::ok_status();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 16) return 0;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  kiln::UniqueFd server(sv[0]), client(sv[1]);
  // The client writes its bytes, then reads (and drops) whatever the server answers.
  std::thread peer([&] {
    (void)kiln::io::send_all(client.get(), std::string_view(reinterpret_cast<const char*>(data), size));
    ::shutdown(client.get(), SHUT_WR);
    char buf[65536];
    while (::read(client.get(), buf, sizeof buf) > 0) {
    }
  });
  Export exp;
  kiln::kilnd::lazy::NbdSessionLimits limits;
  limits.handshake_timeout_ms = 2000;
  limits.workers = 2;
  (void)kiln::kilnd::lazy::serve_nbd_session(server.get(), exp, "rootfs", limits);
  ::shutdown(server.get(), SHUT_RDWR);
  peer.join();
  return 0;
}
