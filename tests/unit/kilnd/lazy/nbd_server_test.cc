// NbdServer against a real client (libnbd, as kiln-vmm uses it) and against hostile raw clients:
// data read back exactly, the export read-only, a failing read answered EIO while the others go on,
// many reads in flight at once, and protocol breakers disconnected without harming the server.
#include "src/lazy/nbd_server.h"

#include <gtest/gtest.h>
#include <libnbd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "common/io.h"
#include "src/lazy/nbd_protocol.h"
#include "tests/unit/rootfs/chunks/chunk_test_image.h"
#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::kilnd::lazy {
namespace {

using rootfs::testing::TempDir;

// An in-memory export; reads touching [bad_from, bad_to) fail.
class MemoryExport : public NbdExport {
 public:
  explicit MemoryExport(std::string bytes) : bytes_(std::move(bytes)) {}
  uint64_t size() const override { return bytes_.size(); }
  Status read(uint64_t offset, std::span<char> out) override {
    reads_++;
    if (offset < bad_to && offset + out.size() > bad_from) return make_error("injected failure");
    std::memcpy(out.data(), bytes_.data() + offset, out.size());
    return ok_status();
  }
  std::string bytes_;
  uint64_t bad_from = 0, bad_to = 0;
  std::atomic<uint64_t> reads_{0};
};

struct Nbd {
  nbd_handle* h = nbd_create();
  ~Nbd() { nbd_close(h); }
};

std::string uri(const std::string& socket) { return "nbd+unix:///rootfs?socket=" + socket; }

class NbdServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    exp_ = std::make_shared<MemoryExport>(rootfs::chunks::testing::random_bytes(1, 3 * 1024 * 1024 + 1000));
    auto s = NbdServer::start(dir_ / "nbd.sock", exp_);
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(*s);
  }

  // A raw client connected to the server, past nothing: the greeting is the next thing to read.
  UniqueFd raw_connect() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, server_->socket_path().c_str());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    timeval tv{5, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
  }

  // Reads until the server closes the connection; true if it did (no timeout).
  static bool server_closes(int fd) {
    char buf[256];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

  TempDir dir_;
  std::shared_ptr<MemoryExport> exp_;
  std::unique_ptr<NbdServer> server_;
};

TEST_F(NbdServerTest, LibnbdReadsTheExportExactly) {
  Nbd c;
  ASSERT_EQ(nbd_connect_uri(c.h, uri(server_->socket_path()).c_str()), 0) << nbd_get_error();
  EXPECT_EQ(nbd_get_size(c.h), static_cast<int64_t>(exp_->bytes_.size()));
  EXPECT_EQ(nbd_is_read_only(c.h), 1);
  EXPECT_EQ(nbd_get_block_size(c.h, LIBNBD_SIZE_MAXIMUM), nbd::kMaxPayloadBytes);
  for (auto [off, len] : std::vector<std::pair<uint64_t, size_t>>{{0, 4096}, {12345, 70000}, {3 * 1024 * 1024, 1000}}) {
    std::string buf(len, '\0');
    ASSERT_EQ(nbd_pread(c.h, buf.data(), len, off, 0), 0) << nbd_get_error();
    EXPECT_EQ(buf, exp_->bytes_.substr(off, len)) << "at " << off;
  }
  // Read-only: libnbd refuses a write itself; past the end is refused too.
  std::string one(512, 'x');
  EXPECT_EQ(nbd_pwrite(c.h, one.data(), one.size(), 0, 0), -1);
  EXPECT_EQ(nbd_pread(c.h, one.data(), one.size(), exp_->bytes_.size(), 0), -1);
  EXPECT_EQ(nbd_shutdown(c.h, 0), 0);
}

TEST_F(NbdServerTest, AFailingReadGetsEioAndTheSessionGoesOn) {
  exp_->bad_from = 8192;
  exp_->bad_to = 8193;
  Nbd c;
  ASSERT_EQ(nbd_connect_uri(c.h, uri(server_->socket_path()).c_str()), 0) << nbd_get_error();
  std::string buf(4096, '\0');
  EXPECT_EQ(nbd_pread(c.h, buf.data(), buf.size(), 8192, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EIO);
  ASSERT_EQ(nbd_pread(c.h, buf.data(), buf.size(), 0, 0), 0) << nbd_get_error();
  EXPECT_EQ(buf, exp_->bytes_.substr(0, 4096));
}

TEST_F(NbdServerTest, ManyReadsInFlightAllComplete) {
  Nbd c;
  ASSERT_EQ(nbd_connect_uri(c.h, uri(server_->socket_path()).c_str()), 0) << nbd_get_error();
  constexpr int kReads = 100;
  std::vector<std::string> bufs(kReads, std::string(16384, '\0'));
  std::vector<int64_t> cookies;
  for (int i = 0; i < kReads; ++i) {
    int64_t cookie =
        nbd_aio_pread(c.h, bufs[i].data(), bufs[i].size(), static_cast<uint64_t>(i) * 16384, NBD_NULL_COMPLETION, 0);
    ASSERT_GE(cookie, 0) << nbd_get_error();
    cookies.push_back(cookie);
  }
  for (int64_t cookie : cookies) {
    while (nbd_aio_command_completed(c.h, cookie) == 0) ASSERT_GE(nbd_poll(c.h, 5000), 0) << nbd_get_error();
  }
  for (int i = 0; i < kReads; ++i) EXPECT_EQ(bufs[i], exp_->bytes_.substr(i * 16384, 16384)) << i;
}

TEST_F(NbdServerTest, UnknownExportIsRefusedByName) {
  Nbd c;
  const std::string bad = "nbd+unix:///other?socket=" + server_->socket_path();
  EXPECT_EQ(nbd_connect_uri(c.h, bad.c_str()), -1);
  Nbd d;  // the server is still fine
  EXPECT_EQ(nbd_connect_uri(d.h, uri(server_->socket_path()).c_str()), 0) << nbd_get_error();
}

TEST_F(NbdServerTest, ProtocolBreakersAreDisconnected) {
  std::string greeting(18, '\0');
  {  // Bad option magic.
    UniqueFd fd = raw_connect();
    ASSERT_TRUE(io::read_exact(fd.get(), greeting.data(), greeting.size()).ok());
    std::string out;
    nbd::append_be32(out, nbd::kClientFlagFixedNewstyle);
    out += std::string(16, 'A');
    ASSERT_TRUE(io::write_all(fd.get(), out).ok());
    EXPECT_TRUE(server_closes(fd.get()));
  }
  {  // An option claiming 1 GiB of data.
    UniqueFd fd = raw_connect();
    ASSERT_TRUE(io::read_exact(fd.get(), greeting.data(), greeting.size()).ok());
    std::string out;
    nbd::append_be32(out, nbd::kClientFlagFixedNewstyle);
    nbd::append_be64(out, nbd::kOptionMagic);
    nbd::append_be32(out, nbd::kOptGo);
    nbd::append_be32(out, 1u << 30);
    ASSERT_TRUE(io::write_all(fd.get(), out).ok());
    EXPECT_TRUE(server_closes(fd.get()));
  }
  {  // Unknown client flags.
    UniqueFd fd = raw_connect();
    ASSERT_TRUE(io::read_exact(fd.get(), greeting.data(), greeting.size()).ok());
    std::string out;
    nbd::append_be32(out, 0x80);
    ASSERT_TRUE(io::write_all(fd.get(), out).ok());
    EXPECT_TRUE(server_closes(fd.get()));
  }
  {  // Transmission: a request with a bad magic ends the session.
    UniqueFd fd = raw_connect();
    ASSERT_TRUE(io::read_exact(fd.get(), greeting.data(), greeting.size()).ok());
    std::string out;
    nbd::append_be32(out, nbd::kClientFlagFixedNewstyle | nbd::kClientFlagNoZeroes);
    nbd::append_be64(out, nbd::kOptionMagic);
    nbd::append_be32(out, nbd::kOptExportName);
    nbd::append_be32(out, 6);
    out += "rootfs";
    ASSERT_TRUE(io::write_all(fd.get(), out).ok());
    std::string answer(10, '\0');  // size + flags, no zeroes
    ASSERT_TRUE(io::read_exact(fd.get(), answer.data(), answer.size()).ok());
    EXPECT_EQ(nbd::load_be64(answer.data()), exp_->bytes_.size());
    ASSERT_TRUE(io::write_all(fd.get(), std::string(nbd::kRequestBytes, 'Z')).ok());
    EXPECT_TRUE(server_closes(fd.get()));
  }
  EXPECT_GE(server_->session_errors(), 4u);
  Nbd c;  // and the server still serves
  ASSERT_EQ(nbd_connect_uri(c.h, uri(server_->socket_path()).c_str()), 0) << nbd_get_error();
}

TEST_F(NbdServerTest, ASilentClientIsDroppedAfterTheNegotiationDeadline) {
  server_.reset();
  NbdServerOptions options;
  options.session.handshake_timeout_ms = 200;
  auto s = NbdServer::start(dir_ / "nbd2.sock", exp_, options);
  ASSERT_TRUE(s.ok()) << s.error().message;
  server_ = std::move(*s);
  UniqueFd fd = raw_connect();
  EXPECT_TRUE(server_closes(fd.get()));  // well within the client's 5 s timeout
  EXPECT_EQ(server_->session_errors(), 1u);
}

TEST_F(NbdServerTest, StoppingEndsConnectedSessions) {
  Nbd c;
  ASSERT_EQ(nbd_connect_uri(c.h, uri(server_->socket_path()).c_str()), 0) << nbd_get_error();
  const std::string path = server_->socket_path();
  server_.reset();  // joins its threads: would hang if a session did not end
  std::string buf(512, '\0');
  EXPECT_EQ(nbd_pread(c.h, buf.data(), buf.size(), 0, 0), -1);
  EXPECT_FALSE(rootfs::testing::exists(path));
}

}  // namespace
}  // namespace kiln::kilnd::lazy
