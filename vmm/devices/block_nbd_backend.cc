// NbdBlockBackend implementation (libnbd's asynchronous API: nbd_aio_* commands, the handle's
// socket and direction served by the caller's loop, nbd_aio_notify_read/write).
#include "vmm/devices/block_nbd_backend.h"

#include <libnbd.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>

#include "vmm/devices/block_request.h"
#include "vmm/logging/logger.h"

namespace kiln::vmm::devices {

struct NbdBlockBackend::Pending {
  NbdBlockBackend* self;
  uint64_t tag;
  uint64_t started_ms;  // EventLoop::now_ms() at submit
};

namespace {

std::string nbd_error_text() {
  const char* e = nbd_get_error();
  return e != nullptr ? e : "unknown libnbd error";
}

struct HandleCloser {
  void operator()(nbd_handle* h) const { nbd_close(h); }
};
using HandlePtr = std::unique_ptr<nbd_handle, HandleCloser>;

// Runs libnbd's connect and handshake state machine on this thread until the handle is ready, dead,
// or the deadline passes.
Status finish_handshake(nbd_handle* h, const std::string& socket, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (nbd_aio_is_ready(h) != 1) {
    if (nbd_aio_is_dead(h) == 1 || nbd_aio_is_closed(h) == 1) {
      return make_error("NBD handshake with " + socket + " failed: " + nbd_error_text());
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return make_error("NBD server at " + socket + " did not complete the handshake within " +
                        std::to_string(timeout.count()) + " ms");
    }
    const unsigned dir = nbd_aio_get_direction(h);
    pollfd p{nbd_aio_get_fd(h), 0, 0};
    if (p.fd < 0) return make_error("NBD connection to " + socket + ": " + nbd_error_text());
    if (dir & LIBNBD_AIO_DIRECTION_READ) p.events |= POLLIN;
    if (dir & LIBNBD_AIO_DIRECTION_WRITE) p.events |= POLLOUT;
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) return errno_error("poll on the NBD socket " + socket);
    if (n <= 0) continue;
    int r = 0;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) r = nbd_aio_notify_read(h);
    if (r == 0 && (p.revents & POLLOUT)) r = nbd_aio_notify_write(h);
    if (r != 0) return make_error("NBD handshake with " + socket + " failed: " + nbd_error_text());
  }
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<NbdBlockBackend>> NbdBlockBackend::connect(const config::NbdUri& uri, bool read_only,
                                                                  EventLoop& loop, std::chrono::milliseconds timeout,
                                                                  std::chrono::milliseconds command_deadline) {
  HandlePtr h(nbd_create());
  if (!h) return make_error("virtio-blk: nbd_create: " + nbd_error_text());
  const std::string where = "virtio-blk: NBD export '" + uri.export_name + "' at " + uri.socket;
  if (nbd_set_export_name(h.get(), uri.export_name.c_str()) != 0) return make_error(where + ": " + nbd_error_text());
  if (nbd_aio_connect_unix(h.get(), uri.socket.c_str()) != 0) return make_error(where + ": " + nbd_error_text());
  if (auto st = finish_handshake(h.get(), uri.socket, timeout); !st.ok()) return st.error().wrap(where);

  const int64_t size = nbd_get_size(h.get());
  if (size < 0) return make_error(where + ": size: " + nbd_error_text());
  if (size % kSectorSize != 0) {
    KILN_LOG_WARN("%s: the export is not a multiple of 512 bytes; the tail is not visible", where.c_str());
  }
  const bool server_ro = nbd_is_read_only(h.get()) == 1;
  const bool can_flush = nbd_can_flush(h.get()) == 1;
  uint64_t max_request = kMaxRequestBytes;
  const int64_t server_max = nbd_get_block_size(h.get(), LIBNBD_SIZE_MAXIMUM);
  if (server_max > 0) max_request = std::min<uint64_t>(max_request, static_cast<uint64_t>(server_max));
  if (server_ro && !read_only) KILN_LOG_WARN("%s: the server is read-only; so is the drive", where.c_str());

  auto b = std::unique_ptr<NbdBlockBackend>(new NbdBlockBackend(h.release(), loop, static_cast<uint64_t>(size),
                                                                read_only || server_ro, can_flush, max_request,
                                                                command_deadline));
  {
    std::lock_guard lock(b->events_mu_);
    b->events_ = EPOLLIN;
  }
  NbdBlockBackend* self = b.get();
  KILN_TRY(loop.add(b->fd_, EPOLLIN, [self](uint32_t events) { self->on_socket(events); }));
  return b;
}

NbdBlockBackend::NbdBlockBackend(nbd_handle* h, EventLoop& loop, uint64_t size, bool read_only, bool can_flush,
                                 uint64_t max_request, std::chrono::milliseconds command_deadline)
    : h_(h),
      loop_(loop),
      fd_(nbd_aio_get_fd(h)),
      size_(size),
      read_only_(read_only),
      can_flush_(can_flush),
      max_request_(max_request),
      command_deadline_(command_deadline),
      deadline_check_(std::make_unique<DeviceWakeup>(loop, [this] { check_deadlines(); })) {}

NbdBlockBackend::~NbdBlockBackend() {
  deadline_check_.reset();
  loop_.remove_if_present(fd_);
  nbd_close(h_);  // closes the socket; commands still in flight are dropped
                  // (their free() runs)
}

std::vector<std::pair<std::string, uint64_t>> NbdBlockBackend::counters() const {
  return {{"nbd_errors", errors_.load()}, {"nbd_disconnected", dead_.load() ? 1 : 0}};
}

int NbdBlockBackend::on_command_done(void* user_data, int* error) {
  auto* p = static_cast<Pending*>(user_data);
  p->self->add_completion(p->tag, *error == 0);
  return 1;  // retire the command: its result is handed over
}

void NbdBlockBackend::free_pending(void* user_data) {
  auto* p = static_cast<Pending*>(user_data);
  {
    std::lock_guard lock(p->self->done_mu_);
    p->self->live_.erase(p);
  }
  delete p;
}

void NbdBlockBackend::check_deadlines() {
  uint64_t oldest = UINT64_MAX;
  {
    std::lock_guard lock(done_mu_);
    for (const Pending* p : live_) oldest = std::min(oldest, p->started_ms);
  }
  if (oldest == UINT64_MAX || dead_.load()) return;  // the next submit arms the check again
  const uint64_t deadline_ms = static_cast<uint64_t>(command_deadline_.count());
  if (EventLoop::now_ms() - oldest < deadline_ms) {
    deadline_check_->after(std::max<rate_limiter::Nanos>(deadline_ms * 1'000'000 / 4, 1'000'000));
    return;
  }
  KILN_LOG_ERROR("virtio-blk: an NBD command got no answer within %llu ms; dropping the connection",
                 static_cast<unsigned long long>(deadline_ms));
  ::shutdown(fd_, SHUT_RDWR);  // libnbd then reads end-of-file: the connection is dead
  on_socket(EPOLLIN);
}

void NbdBlockBackend::add_completion(uint64_t tag, bool ok) {
  if (!ok) errors_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(done_mu_);
  done_.push_back({tag, ok});
}

std::vector<BlockCompletion> NbdBlockBackend::take_completions() {
  std::lock_guard lock(done_mu_);
  std::vector<BlockCompletion> out;
  out.swap(done_);
  return out;
}

std::optional<bool> NbdBlockBackend::submit(BlockIo io) {
  if (io.op == BlockOp::kFlush && !can_flush_) return true;  // nothing the server could persist
  if (dead_.load()) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return false;  // fail fast while disconnected
  }
  if (io.op != BlockOp::kFlush && io.bufs.size() != 1) return false;  // the device bounces: one buffer
  auto* pending = new Pending{this, io.tag, EventLoop::now_ms()};
  {
    std::lock_guard lock(done_mu_);
    live_.insert(pending);
  }
  nbd_completion_callback cb{on_command_done, pending, free_pending};
  int64_t cookie = -1;
  switch (io.op) {
    case BlockOp::kRead:
      cookie = nbd_aio_pread(h_, io.bufs[0].data(), io.bufs[0].size(), io.offset, cb, 0);
      break;
    case BlockOp::kWrite:
      cookie = nbd_aio_pwrite(h_, io.bufs[0].data(), io.bufs[0].size(), io.offset, cb, 0);
      break;
    case BlockOp::kFlush:
      cookie = nbd_aio_flush(h_, cb, 0);
      break;
  }
  if (cookie < 0) {
    // Not issued (libnbd freed the callback data without calling it).
    errors_.fetch_add(1, std::memory_order_relaxed);
    KILN_LOG_GUEST(logging::LogLevel::kError, "virtio-blk: NBD request at %llu not issued: %s",
                   static_cast<unsigned long long>(io.offset), nbd_error_text().c_str());
    check_connection("issuing a request");
    return false;
  }
  check_connection("sending a request");
  deadline_check_->after(std::max<rate_limiter::Nanos>(command_deadline_.count() * 1'000'000 / 4, 1'000'000));
  return std::nullopt;
}

void NbdBlockBackend::on_socket(uint32_t events) {
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) (void)nbd_aio_notify_read(h_);
  if ((events & EPOLLOUT) && !dead_.load()) (void)nbd_aio_notify_write(h_);
  check_connection("serving the socket");
  if (ready_) ready_();
}

void NbdBlockBackend::check_connection(const char* during) {
  if (dead_.load()) return;
  if (nbd_aio_is_dead(h_) == 1 || nbd_aio_is_closed(h_) == 1) {
    if (!dead_.exchange(true)) {
      // Once per drive: every later request fails at once without reaching libnbd.
      const char* why = nbd_get_error();
      KILN_LOG_ERROR("virtio-blk: NBD connection lost while %s: %s; the drive's requests fail with EIO", during,
                     why != nullptr ? why : "the server closed it");
      loop_.remove_if_present(fd_);
    }
    return;
  }
  update_events();
}

void NbdBlockBackend::update_events() {
  std::lock_guard lock(events_mu_);
  const unsigned dir = nbd_aio_get_direction(h_);
  uint32_t want = 0;
  if (dir & LIBNBD_AIO_DIRECTION_READ) want |= EPOLLIN;
  if (dir & LIBNBD_AIO_DIRECTION_WRITE) want |= EPOLLOUT;
  if (want == events_ || dead_.load()) return;
  if (loop_.modify(fd_, want).ok()) events_ = want;
}

}  // namespace kiln::vmm::devices
