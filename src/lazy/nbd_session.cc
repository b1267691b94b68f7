// serve_nbd_session: the negotiation on the calling thread, then a reader (this thread) that queues
// reads for NbdSessionLimits::workers threads; every reply is written whole under one mutex, so
// replies of different requests never interleave.
#include "src/lazy/nbd_session.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "common/io.h"
#include "src/lazy/nbd_protocol.h"

namespace kiln::kilnd::lazy {
namespace {

using Clock = std::chrono::steady_clock;

// The transmission flags of every export: read-only, so several connections are coherent.
constexpr uint16_t kTransmissionFlags = nbd::kFlagHasFlags | nbd::kFlagReadOnly | nbd::kFlagCanMultiConn;

Status set_receive_timeout(int fd, int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) return errno_error("nbd: SO_RCVTIMEO");
  return ok_status();
}

class Session {
 public:
  Session(int fd, NbdExport& exp, const std::string& name, const NbdSessionLimits& limits)
      : fd_(fd), exp_(exp), name_(name), limits_(limits) {}

  Status run(NbdSessionStats* stats) {
    Result<bool> negotiated = negotiate();
    Status result = ok_status();
    if (!negotiated.ok()) {
      result = negotiated.error();
    } else if (*negotiated) {
      result = transmit();
    }
    if (stats != nullptr) {
      stats->reads = reads_.load();
      stats->read_bytes = read_bytes_.load();
      stats->read_errors = read_errors_.load();
      stats->refused = refused_.load();
    }
    return result;
  }

 private:
  Status read_exact(std::string& buf, size_t len, std::string_view what) {
    buf.resize(len);
    return io::read_exact(fd_, buf.data(), len, what);
  }

  Status send(std::string_view bytes) {
    std::lock_guard lock(write_mu_);
    return io::send_all(fd_, bytes, "nbd reply");
  }

  // True: transmission follows; false: the client aborted cleanly.
  Result<bool> negotiate() {
    const auto deadline = Clock::now() + std::chrono::milliseconds(limits_.handshake_timeout_ms);
    auto arm = [&]() -> Status {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0)
        return make_error("nbd: negotiation took longer than " + std::to_string(limits_.handshake_timeout_ms) + " ms");
      return set_receive_timeout(fd_, static_cast<int>(left));
    };
    KILN_TRY(send(nbd::encode_greeting()));
    std::string buf;
    KILN_TRY(arm());
    KILN_TRY(read_exact(buf, 4, "nbd client flags"));
    const uint32_t client_flags = nbd::load_be32(buf.data());
    if ((client_flags & ~(nbd::kClientFlagFixedNewstyle | nbd::kClientFlagNoZeroes)) != 0) {
      return make_error("nbd: unknown client flags " + std::to_string(client_flags));  // proto.md: MUST close
    }
    const bool no_zeroes = (client_flags & nbd::kClientFlagNoZeroes) != 0;
    for (uint32_t n = 0;; ++n) {
      if (n == limits_.max_options) return make_error("nbd: more than " + std::to_string(n) + " options");
      KILN_TRY(arm());
      KILN_TRY(read_exact(buf, nbd::kOptionHeaderBytes, "nbd option header"));
      KILN_ASSIGN_OR_RETURN(nbd::OptionHeader header, nbd::decode_option_header(buf));
      if (header.length > nbd::kMaxOptionBytes) {
        return make_error("nbd: option " + std::to_string(header.option) + " of " + std::to_string(header.length) +
                          " bytes exceeds " + std::to_string(nbd::kMaxOptionBytes));
      }
      KILN_TRY(read_exact(buf, header.length, "nbd option data"));
      switch (header.option) {
        case nbd::kOptExportName:
          if (!serves(buf)) return make_error("nbd: no export named '" + buf + "'");  // cannot answer an error
          KILN_TRY(send(nbd::encode_export_name_reply(exp_.size(), kTransmissionFlags, no_zeroes)));
          KILN_TRY(set_receive_timeout(fd_, 0));
          return true;
        case nbd::kOptAbort:
          (void)send(nbd::encode_option_reply(header.option, nbd::kRepAck));
          return false;
        case nbd::kOptList: {
          std::string server;
          nbd::append_be32(server, static_cast<uint32_t>(name_.size()));
          server += name_;
          KILN_TRY(send(nbd::encode_option_reply(header.option, nbd::kRepServer, server) +
                        nbd::encode_option_reply(header.option, nbd::kRepAck)));
          break;
        }
        case nbd::kOptInfo:
        case nbd::kOptGo: {
          Result<nbd::GoRequest> go = nbd::decode_go(buf);
          if (!go.ok()) {
            KILN_TRY(send(nbd::encode_option_reply(header.option, nbd::kRepErrInvalid, go.error().message)));
            break;
          }
          if (!serves(go->name)) {
            KILN_TRY(send(nbd::encode_option_reply(header.option, nbd::kRepErrUnknown, "no such export")));
            break;
          }
          KILN_TRY(send(nbd::encode_option_reply(header.option, nbd::kRepInfo,
                                                 nbd::encode_info_export(exp_.size(), kTransmissionFlags)) +
                        nbd::encode_option_reply(header.option, nbd::kRepInfo,
                                                 nbd::encode_info_block_size(1, 4096, nbd::kMaxPayloadBytes)) +
                        nbd::encode_option_reply(header.option, nbd::kRepAck)));
          if (header.option == nbd::kOptGo) {
            KILN_TRY(set_receive_timeout(fd_, 0));
            return true;
          }
          break;
        }
        default:
          KILN_TRY(send(nbd::encode_option_reply(header.option, nbd::kRepErrUnsup)));
      }
    }
  }

  bool serves(std::string_view name) const { return name.empty() || name == name_; }

  Status reply_error(uint32_t error, uint64_t handle) {
    ++refused_;
    return send(nbd::encode_simple_reply(error, handle));
  }

  void serve_read(const nbd::Request& r) {
    if (uint32_t err = nbd::check_read(r, exp_.size()); err != 0) {
      (void)reply_error(err, r.handle);
      return;
    }
    std::string data(r.length, '\0');
    Status st = exp_.read(r.offset, std::span<char>(data.data(), data.size()));
    ++reads_;
    if (!st.ok()) {
      ++read_errors_;
      (void)send(nbd::encode_simple_reply(nbd::kEio, r.handle));
      return;
    }
    read_bytes_ += r.length;
    std::string header = nbd::encode_simple_reply(0, r.handle);
    std::lock_guard lock(write_mu_);
    if (io::send_all(fd_, header, "nbd reply").ok()) (void)io::send_all(fd_, data, "nbd reply");
  }

  void worker() {
    for (;;) {
      nbd::Request r;
      {
        std::unique_lock lock(queue_mu_);
        work_.wait(lock, [&] { return !queue_.empty() || closing_; });
        if (queue_.empty()) return;
        r = queue_.front();
        queue_.pop_front();
      }
      space_.notify_one();
      serve_read(r);
    }
  }

  // Reads requests until the client leaves or breaks the protocol.
  Status read_requests() {
    std::string buf;
    for (;;) {
      if (Status st = read_exact(buf, nbd::kRequestBytes, "nbd request"); !st.ok()) return st;
      KILN_ASSIGN_OR_RETURN(nbd::Request r, nbd::decode_request(buf));
      switch (r.type) {
        case nbd::kCmdRead: {
          std::unique_lock lock(queue_mu_);
          space_.wait(lock, [&] { return queue_.size() < limits_.max_queued; });
          queue_.push_back(r);
          lock.unlock();
          work_.notify_one();
          break;
        }
        case nbd::kCmdWrite:
          // The payload follows the request: read it to stay in step, then refuse.
          if (r.length > nbd::kMaxPayloadBytes) {
            return make_error("nbd: write of " + std::to_string(r.length) + " bytes exceeds the maximum payload");
          }
          KILN_TRY(read_exact(buf, r.length, "nbd write payload"));
          KILN_TRY(reply_error(nbd::kEperm, r.handle));
          break;
        case nbd::kCmdTrim:
        case nbd::kCmdWriteZeroes:
          KILN_TRY(reply_error(nbd::kEperm, r.handle));
          break;
        case nbd::kCmdDisc:
          return ok_status();
        default:
          KILN_TRY(reply_error(nbd::kEinval, r.handle));
      }
    }
  }

  Status transmit() {
    std::vector<std::thread> workers;
    const uint32_t count = limits_.workers == 0 ? 1 : limits_.workers;
    for (uint32_t i = 0; i < count; ++i) workers.emplace_back([this] { worker(); });
    Status st = read_requests();
    {
      std::lock_guard lock(queue_mu_);
      closing_ = true;
    }
    work_.notify_all();
    for (std::thread& t : workers) t.join();
    return st;
  }

  const int fd_;
  NbdExport& exp_;
  const std::string& name_;
  const NbdSessionLimits limits_;
  std::mutex write_mu_;
  std::mutex queue_mu_;
  std::condition_variable work_;
  std::condition_variable space_;
  std::deque<nbd::Request> queue_;
  bool closing_ = false;
  std::atomic<uint64_t> reads_{0}, read_bytes_{0}, read_errors_{0}, refused_{0};
};

}  // namespace

Status serve_nbd_session(int fd, NbdExport& exp, const std::string& export_name, const NbdSessionLimits& limits,
                         NbdSessionStats* stats) {
  Session session(fd, exp, export_name, limits);
  return session.run(stats);
}

}  // namespace kiln::kilnd::lazy
