// VsockDevice implementation: Unix-socket plumbing and the rx/tx/event queues. Every guest
// packet is validated (vsock_packet.h) before it reaches a connection's state machine.
#include "vmm/devices/vsock_device.h"

#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "vmm/logging/logger.h"
#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::devices {

namespace {

constexpr size_t kMaxQueuedRsts = 256;
constexpr size_t kReadChunk = 64 * 1024;

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return make_error("vsock: Unix socket path is empty or too long: " + path);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

}  // namespace

Result<std::shared_ptr<VsockDevice>> VsockDevice::create(const VsockDeviceConfig& config,
                                                         EventLoop& loop) {
  // virtio 1.2 §5.10.4: CIDs 0-2 are reserved; the upper 32 bits are reserved as well.
  if (config.guest_cid < 3 || config.guest_cid > UINT32_MAX - 1) {
    return make_error("vsock: guest_cid must be in [3, 2^32-2]");
  }
  KILN_ASSIGN_OR_RETURN(sockaddr_un addr, unix_address(config.uds_path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("vsock: socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return errno_error("vsock: bind " + config.uds_path);
  }
  if (::listen(fd.get(), 128) != 0) {
    ::unlink(config.uds_path.c_str());
    return errno_error("vsock: listen " + config.uds_path);
  }
  UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer) {
    ::unlink(config.uds_path.c_str());
    return errno_error("vsock: timerfd_create");
  }
  int lfd = fd.get();
  int tfd = timer.get();
  std::shared_ptr<VsockDevice> dev(new VsockDevice(config, loop, std::move(fd), std::move(timer)));
  VsockDevice* raw = dev.get();
  // On failure the destructor unregisters what was added and unlinks the path.
  KILN_TRY(loop.add(lfd, EPOLLIN, [raw](uint32_t ev) { raw->on_listener(ev); }));
  KILN_TRY(loop.add(tfd, EPOLLIN, [raw](uint32_t) { raw->on_timer(); }));
  return dev;
}

VsockDevice::~VsockDevice() {
  std::lock_guard lock(mu_);
  for (auto& [fd, h] : handshakes_) (void)loop_.remove(fd);
  for (auto& [key, c] : conns_) {
    if (c->registered) (void)loop_.remove(c->fd.get());
  }
  if (loop_.contains(timer_.get())) (void)loop_.remove(timer_.get());
  if (listener_) {
    if (loop_.contains(listener_.get())) (void)loop_.remove(listener_.get());
    ::unlink(config_.uds_path.c_str());
  }
}

void VsockDevice::update_timer() {
  bool need = !handshakes_.empty();
  for (auto it = conns_.begin(); !need && it != conns_.end(); ++it) {
    need = it->second->connect_deadline.has_value();
  }
  if (need == timer_armed_) return;
  itimerspec spec{};
  if (need) {
    // Tick at a fraction of the shortest timeout so expiry is at most ~1/4 late.
    auto shortest = std::min(config_.handshake_timeout, config_.connect_timeout);
    auto tick = std::clamp(shortest / 4, std::chrono::milliseconds(1), std::chrono::milliseconds(250));
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(tick).count();
    spec.it_interval.tv_sec = ns / 1000000000;
    spec.it_interval.tv_nsec = ns % 1000000000;
    spec.it_value = spec.it_interval;
  }
  if (::timerfd_settime(timer_.get(), 0, &spec, nullptr) == 0) timer_armed_ = need;
}

std::string VsockDevice::queue_diagnostics() {
  // The driver's side as the device sees it: pending interrupt bits (set and never acknowledged
  // means the guest takes no interrupts), rx buffers posted, ring positions.
  std::string out = "interrupt status " + std::to_string(interrupt_ ? interrupt_->status() : 0) + ", raised " +
                    std::to_string(interrupt_ ? interrupt_->triggered_count() : 0);
  if (active_ && mem_ != nullptr) {
    const char* names[] = {"rx", "tx", "event"};
    for (uint16_t q = 0; q < queues_.size() && q < 3; ++q) {
      auto avail = queues_[q].has_available(*mem_);
      out += std::string(", ") + names[q] + " next avail " + std::to_string(queues_[q].next_avail()) + " used " +
             std::to_string(queues_[q].next_used()) + (avail.ok() && *avail ? " (more posted)" : "");
    }
  }
  if (reset_hold_since_) out += ", rx held for a transport reset";
  if (diagnostics_) out += ", " + diagnostics_();
  return out;
}

void VsockDevice::on_timer() {
  std::lock_guard lock(mu_);
  uint64_t ticks;
  [[maybe_unused]] ssize_t n = ::read(timer_.get(), &ticks, sizeof ticks);
  const auto now = std::chrono::steady_clock::now();
  std::vector<int> stale;
  for (auto& [fd, h] : handshakes_) {
    if (now >= h->deadline) stale.push_back(fd);
  }
  for (int fd : stale) {
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: host client sent no CONNECT line in time");
    drop_handshake(fd);
  }
  std::vector<Key> expired;
  for (auto& [key, c] : conns_) {
    if (c->connect_deadline && now >= *c->connect_deadline) expired.push_back(key);
  }
  for (const Key& key : expired) {
    Conn& c = *conns_[key];
    c.connect_deadline.reset();
    if (c.sm.state() == VsockConnection::State::kConnecting) {
      KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: guest did not answer connection to port %u (%s)",
                     key.second, queue_diagnostics().c_str());
      c.sm.on_host_error();  // cancels the request (RST if it was sent) and closes the client
    }
    service_conn(key);
  }
  if (active_ && !broken_) {
    auto st = fill_rx();
    if (!st.ok()) mark_broken(st.error());
  }
  update_timer();
}

uint32_t VsockDevice::device_id() const { return virtio::kDeviceIdVsock; }

uint64_t VsockDevice::device_features() const {
  return virtio::feature_bit(virtio::kFeatureVersion1) |
         virtio::feature_bit(virtio::kFeatureIndirectDesc);
}

void VsockDevice::read_config(uint64_t offset, std::span<uint8_t> data) const {
  // struct virtio_vsock_config { le64 guest_cid; } (virtio 1.2 §5.10.4)
  std::array<uint8_t, 8> image;
  uint64_t cid = config_.guest_cid;
  std::memcpy(image.data(), &cid, 8);
  virtio::read_config_bytes(image, offset, data);
}

size_t VsockDevice::connection_count() const {
  std::lock_guard lock(mu_);
  return conns_.size();
}

Status VsockDevice::activate(const GuestMemory& mem, std::vector<virtio::Queue> queues, uint64_t,
                             virtio::Interrupt& interrupt) {
  std::lock_guard lock(mu_);
  if (queues.size() != 3) return make_error("vsock: expected 3 queues");
  for (const auto& q : queues) {
    if (!q.ready) return make_error("vsock: a queue is not ready");
  }
  mem_ = &mem;
  queues_ = std::move(queues);
  interrupt_ = &interrupt;
  active_ = true;
  broken_ = false;
  // Host clients may have asked for connections before the driver was up.
  return fill_rx();
}

void VsockDevice::reset() {
  std::lock_guard lock(mu_);
  drop_all_connections();
  reset_hold_since_.reset();
  active_ = false;
  broken_ = false;
  queues_.clear();
  mem_ = nullptr;
  interrupt_ = nullptr;
}

void VsockDevice::mark_broken(const Error& e) {
  KILN_LOG_GUEST(logging::LogLevel::kError, "vsock: device broken: %s", e.message.c_str());
  broken_ = true;
  if (interrupt_) interrupt_->mark_needs_reset();
}

void VsockDevice::drop_all_connections() {
  for (auto& [key, c] : conns_) {
    if (c->registered) (void)loop_.remove(c->fd.get());
  }
  conns_.clear();
  rst_queue_.clear();
  dirty_.clear();
}

// ---------------------------------------------------------------- host side

void VsockDevice::on_listener(uint32_t) {
  std::lock_guard lock(mu_);
  // Bounded: stops at EAGAIN or when the connection limit is reached.
  for (size_t i = 0; i < config_.max_connections + 1; ++i) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR) continue;
      break;  // EAGAIN, or an error the next readiness event retries
    }
    if (handshakes_.size() + conns_.size() >= config_.max_connections) {
      counters_.add_error();
      KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: connection limit reached, refusing host client");
      continue;  // fd closes
    }
    int raw = fd.get();
    auto st = loop_.add(raw, EPOLLIN, [this, raw](uint32_t ev) { on_handshake(raw, ev); });
    if (!st.ok()) {
      counters_.add_error();
      KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: dropping host client: %s", st.error().message.c_str());
      continue;
    }
    auto h = std::make_unique<Handshake>();
    h->fd = std::move(fd);
    h->deadline = std::chrono::steady_clock::now() + config_.handshake_timeout;
    handshakes_.emplace(raw, std::move(h));
  }
  update_timer();
}

void VsockDevice::drop_handshake(int fd) {
  (void)loop_.remove(fd);
  handshakes_.erase(fd);
}

void VsockDevice::on_handshake(int fd, uint32_t events) {
  std::lock_guard lock(mu_);
  auto it = handshakes_.find(fd);
  if (it == handshakes_.end()) return;
  Handshake& h = *it->second;
  // One byte at a time so nothing after the newline is consumed: it is stream data.
  while (h.line.size() < kMaxConnectLine) {
    char c;
    ssize_t n = ::recv(fd, &c, 1, 0);
    if (n == 1) {
      h.line.push_back(c);
      if (c != '\n') continue;
      auto port = parse_connect_line(h.line);
      if (!port.ok()) {
        KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: bad host handshake: %s",
                       port.error().message.c_str());
        drop_handshake(fd);
        return;
      }
      finish_handshake(fd, *port);
      return;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (events & (EPOLLHUP | EPOLLERR)) {
        KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: host client hung up during its CONNECT line");
        drop_handshake(fd);
      }
      return;
    }
    if (n < 0) KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: host client: %s", std::strerror(errno));
    drop_handshake(fd);  // EOF or error before a full line
    return;
  }
  drop_handshake(fd);  // line too long
}

uint32_t VsockDevice::allocate_local_port() {
  for (size_t i = 0; i <= conns_.size(); ++i) {
    uint32_t p = next_local_port_;
    next_local_port_ = (next_local_port_ == UINT32_MAX) ? kFirstLocalPort : next_local_port_ + 1;
    auto it = conns_.lower_bound(Key{p, 0});
    if (it == conns_.end() || it->first.first != p) return p;
  }
  return next_local_port_++;  // unreachable: more ports than connections
}

void VsockDevice::finish_handshake(int fd, uint32_t port) {
  auto it = handshakes_.find(fd);
  UniqueFd sock = std::move(it->second->fd);
  (void)loop_.remove(fd);
  handshakes_.erase(it);
  uint32_t local = allocate_local_port();
  Key key{local, port};
  auto c = std::make_unique<Conn>(
      std::move(sock), VsockConnection::host_initiated(config_.guest_cid, local, port, config_.connection));
  conns_.emplace(key, std::move(c));
  service_conn(key);
  if (active_ && !broken_) {
    auto st = fill_rx();
    if (!st.ok()) mark_broken(st.error());
  }
}

void VsockDevice::read_host(Conn& c) {
  std::vector<uint8_t> buf;
  while (true) {
    size_t space = c.sm.host_read_space();
    if (space == 0) return;
    buf.resize(std::min(space, kReadChunk));
    ssize_t n = ::recv(c.fd.get(), buf.data(), buf.size(), 0);
    if (n > 0) {
      c.sm.on_host_data(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
      continue;
    }
    if (n == 0) {
      c.sm.on_host_eof();
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      c.sm.on_host_error();
      c.hup = true;
    }
    return;
  }
}

void VsockDevice::on_conn(Key key, uint32_t events) {
  std::lock_guard lock(mu_);
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (events & EPOLLERR) {
    c.sm.on_host_error();
    c.hup = true;
  } else {
    if (events & (EPOLLIN | EPOLLHUP)) read_host(c);
    // Hang-up is level-triggered and cannot be masked: stop polling, read what is left.
    if (events & EPOLLHUP) c.hup = true;
  }
  service_conn(key);
  if (active_ && !broken_) {
    auto st = fill_rx();
    if (!st.ok()) mark_broken(st.error());
  }
}

void VsockDevice::service_conn(Key key) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (c.sm.state() != VsockConnection::State::kConnecting) c.connect_deadline.reset();
  if (c.hup) read_host(c);

  bool want_out = false;
  while (true) {
    auto pending = c.sm.host_write_pending();
    if (pending.empty()) break;
    if (c.hup) {
      c.sm.on_host_error();  // data for a peer that is gone
      break;
    }
    ssize_t n = ::send(c.fd.get(), pending.data(), pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.sm.on_host_written(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      want_out = true;
      break;
    }
    c.sm.on_host_error();  // EPIPE, ECONNRESET, ...
    c.hup = true;
    break;
  }
  if (c.sm.take_host_shutdown_write()) ::shutdown(c.fd.get(), SHUT_WR);

  if (c.sm.closed()) {
    remove_conn(key);
    return;
  }
  if (c.hup) {
    if (c.registered) {
      (void)loop_.remove(c.fd.get());
      c.registered = false;
    }
    return;
  }
  uint32_t events = 0;
  if (c.sm.host_read_space() > 0) events |= EPOLLIN;
  if (want_out) events |= EPOLLOUT;
  if (!c.registered) {
    int fd = c.fd.get();
    auto st = loop_.add(fd, events, [this, key](uint32_t ev) { on_conn(key, ev); });
    if (!st.ok()) {
      c.sm.on_host_error();
      return;
    }
    c.registered = true;
    c.events = events;
  } else if (events != c.events) {
    if (loop_.modify(c.fd.get(), events).ok()) c.events = events;
  }
}

void VsockDevice::remove_conn(Key key) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  if (it->second->sm.protocol_error()) {
    counters_.add_error();
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: connection %u <-> guest port %u reset: the guest broke the protocol",
                   key.first, key.second);
  }
  if (it->second->registered) (void)loop_.remove(it->second->fd.get());
  conns_.erase(it);
}

// ---------------------------------------------------------------- guest side

void VsockDevice::queue_rst(const VsockHeader& reply) {
  if (rst_queue_.size() >= kMaxQueuedRsts) {
    counters_.add_error();
    return;
  }
  rst_queue_.push_back(reply);
}

void VsockDevice::connect_to_host(const VsockHeader& req) {
  Key key{req.dst_port, req.src_port};
  if (handshakes_.size() + conns_.size() >= config_.max_connections) {
    counters_.add_error();
    queue_rst(make_rst_reply(req));
    return;
  }
  // Hybrid vsock: guest connections to host port P go to "<uds_path>_<P>".
  auto addr = unix_address(config_.uds_path + "_" + std::to_string(req.dst_port));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!addr.ok() || !fd ||
      ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(sockaddr_un)) != 0) {
    // Nobody listening (or a full backlog): refuse the guest (virtio 1.2 §5.10.6.4).
    queue_rst(make_rst_reply(req));
    return;
  }
  auto c = std::make_unique<Conn>(
      std::move(fd), VsockConnection::guest_initiated(config_.guest_cid, req, config_.connection));
  conns_.emplace(key, std::move(c));
  dirty_.push_back(key);
}

void VsockDevice::handle_guest_packet(const VsockHeader& h, std::span<const uint8_t> payload) {
  Key key{h.dst_port, h.src_port};
  auto it = conns_.find(key);
  if (it == conns_.end()) {
    if (h.vsock_op() == VsockOp::kRequest) {
      connect_to_host(h);
    } else if (h.vsock_op() != VsockOp::kRst) {
      queue_rst(make_rst_reply(h));  // no such connection
    }
    return;
  }
  if (h.vsock_op() == VsockOp::kRst && it->second->sm.state() == VsockConnection::State::kConnecting) {
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: guest refused connection to port %u (%s)", key.second,
                   queue_diagnostics().c_str());
  }
  it->second->sm.on_guest_packet(h, payload);
  dirty_.push_back(key);
}

uint32_t VsockDevice::handle_tx_chain(const virtio::DescriptorChain& chain) {
  // tx buffers are device-readable only (virtio 1.2 §5.10.6.2).
  if (!chain.writable.empty()) {
    counters_.add_error();
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: tx packet with device-writable buffers");
    return 0;
  }
  virtio::ChainReader reader(chain.readable);
  std::array<uint8_t, kVsockHeaderSize> hb;
  if (!reader.read(hb).ok()) {
    counters_.add_error();
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: tx packet shorter than its header");
    return 0;
  }
  VsockHeader h = parse_vsock_header(hb).value();
  switch (classify_guest_packet(h, config_.guest_cid, reader.remaining())) {
    case GuestPacketVerdict::kDrop:
      counters_.add_error();
      KILN_LOG_GUEST(logging::LogLevel::kWarning,
                     "vsock: dropped malformed tx packet (op %u, type %u, len %u)", h.op, h.type,
                     h.len);
      return 0;
    case GuestPacketVerdict::kReplyRst:
      queue_rst(make_rst_reply(h));
      return 0;
    case GuestPacketVerdict::kAccept:
      break;
  }
  std::vector<uint8_t> payload;
  if (h.vsock_op() == VsockOp::kRw && h.len > 0) {
    payload.resize(h.len);
    (void)reader.read(payload);  // length checked by classify_guest_packet
    counters_.add_from_guest(h.len);
  }
  handle_guest_packet(h, payload);
  return 0;
}

Status VsockDevice::fill_rx() {
  if (!active_ || broken_) return ok_status();
  if (reset_hold_since_) {
    if (std::chrono::steady_clock::now() - *reset_hold_since_ < kResetHold) return ok_status();
    reset_hold_since_.reset();  // the driver never confirmed: deliver anyway
  }
  virtio::Queue& rxq = queues_[kRxQueue];
  std::vector<uint8_t> payload;
  for (uint32_t i = 0; i < rxq.size; ++i) {
    bool any = !rst_queue_.empty();
    for (auto it = conns_.begin(); !any && it != conns_.end(); ++it) {
      any = it->second->sm.has_guest_packet();
    }
    if (!any) break;

    KILN_ASSIGN_OR_RETURN(std::optional<virtio::AvailableChain> next, rxq.pop(*mem_));
    if (!next) break;  // the driver will notify when it adds rx buffers
    const virtio::DescriptorChain* chain = next->chain.ok() ? &next->chain.value() : nullptr;
    if (chain == nullptr || !chain->readable.empty() || chain->writable_len < kVsockHeaderSize) {
      counters_.add_error();
      KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: unusable rx buffer");
      KILN_TRY(rxq.add_used(*mem_, next->head, 0));
      continue;
    }
    const size_t max_payload = static_cast<size_t>(
        std::min<uint64_t>(chain->writable_len - kVsockHeaderSize, kVsockMaxPayload));

    std::optional<VsockHeader> pkt;
    std::optional<Key> from;
    if (!rst_queue_.empty()) {
      pkt = rst_queue_.front();
      rst_queue_.pop_front();
      payload.clear();
    } else {
      // Round-robin over connections, starting after the last one served.
      auto it = conns_.upper_bound(rr_cursor_);
      for (size_t n = 0; n < conns_.size() && !pkt; ++n, ++it) {
        if (it == conns_.end()) it = conns_.begin();
        if (!it->second->sm.has_guest_packet()) continue;
        pkt = it->second->sm.next_guest_packet(max_payload, payload);
        if (pkt) from = it->first;
      }
    }
    if (!pkt) {
      rxq.undo_pop();  // nothing fits this buffer
      break;
    }
    virtio::ChainWriter writer(chain->writable);
    auto hdr = encode_vsock_header(*pkt);
    KILN_TRY(writer.write(hdr));
    KILN_TRY(writer.write(payload));
    KILN_TRY(rxq.add_used(*mem_, next->head, static_cast<uint32_t>(writer.written())));
    counters_.add_request();
    counters_.add_to_guest(payload.size());
    if (from) {
      // The guest has connect_timeout to answer a REQUEST, counted from its delivery.
      if (pkt->vsock_op() == VsockOp::kRequest) {
        conns_[*from]->connect_deadline = std::chrono::steady_clock::now() + config_.connect_timeout;
        update_timer();
      }
      rr_cursor_ = *from;
      service_conn(*from);  // it may have closed, or have room to read again
    }
  }
  KILN_ASSIGN_OR_RETURN(bool notify, rxq.needs_notification(*mem_));
  if (notify) interrupt_->signal_used_queue();
  return ok_status();
}

Status VsockDevice::service_all() {
  std::vector<Key> dirty;
  dirty.swap(dirty_);
  std::sort(dirty.begin(), dirty.end());
  dirty.erase(std::unique(dirty.begin(), dirty.end()), dirty.end());
  for (const Key& k : dirty) service_conn(k);
  return fill_rx();
}

Status VsockDevice::process_queue(uint16_t index) {
  std::lock_guard lock(mu_);
  if (!active_ || broken_) return ok_status();
  switch (index) {
    case kRxQueue:
      return fill_rx();
    case kTxQueue: {
      KILN_ASSIGN_OR_RETURN(bool notify,
                            virtio::serve_queue(*mem_, queues_[kTxQueue], counters_,
                                                [this](const virtio::DescriptorChain& c) {
                                                  return handle_tx_chain(c);
                                                }));
      if (notify) interrupt_->signal_used_queue();
      return service_all();
    }
    default:
      // The driver re-posted an event buffer: it has handled the transport reset (virtio 1.2
      // §5.10.6.6); held rx packets may go now. Event buffers wait for send_transport_reset().
      if (reset_hold_since_) {
        reset_hold_since_.reset();
        return fill_rx();
      }
      return ok_status();
  }
}

Status VsockDevice::send_transport_reset() {
  std::lock_guard lock(mu_);
  if (!active_ || broken_) return make_error("vsock: device not active");
  drop_all_connections();
  virtio::Queue& evq = queues_[kEventQueue];
  auto next = evq.pop(*mem_);
  if (!next.ok()) {
    mark_broken(next.error());
    return next.error();
  }
  if (!*next) return make_error("vsock: no event buffer from the driver");
  const auto& chain = (*next)->chain;
  uint32_t used = 0;
  Status result = ok_status();
  if (!chain.ok() || !chain->readable.empty() || chain->writable_len < 4) {
    counters_.add_error();
    result = make_error("vsock: unusable event buffer");
  } else {
    virtio::ChainWriter writer(chain->writable);
    uint32_t id = kVsockEventTransportReset;
    KILN_TRY(writer.write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&id), 4)));
    used = 4;
  }
  auto st = evq.add_used(*mem_, (*next)->head, used);
  if (!st.ok()) {
    mark_broken(st.error());
    return st.error();
  }
  auto notify = evq.needs_notification(*mem_);
  if (notify.ok() && *notify) interrupt_->signal_used_queue();
  if (result.ok()) reset_hold_since_ = std::chrono::steady_clock::now();
  return result;
}

}  // namespace kiln::vmm::devices
