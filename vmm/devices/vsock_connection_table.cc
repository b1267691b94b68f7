// VsockConnectionTable implementation: state machines on one side, backend streams on the
// other; nothing here knows how a stream reaches the host.
#include "vmm/devices/vsock_connection_table.h"

#include <algorithm>

#include "vmm/logging/logger.h"

namespace kiln::vmm::devices {

namespace {

constexpr size_t kMaxQueuedRsts = 256;
constexpr size_t kReadChunk = 64 * 1024;

}  // namespace

// ---------------------------------------------------------------- host side

uint32_t VsockConnectionTable::allocate_local_port() {
  for (size_t i = 0; i <= conns_.size(); ++i) {
    uint32_t p = next_local_port_;
    next_local_port_ = (next_local_port_ == UINT32_MAX) ? kFirstLocalPort : next_local_port_ + 1;
    auto it = conns_.lower_bound(Key{p, 0});
    if (it == conns_.end() || it->first.first != p) return p;
  }
  return next_local_port_++;  // unreachable: more ports than connections
}

void VsockConnectionTable::adopt_host_stream(std::unique_ptr<VsockHostStream> stream,
                                             uint32_t guest_port) {
  uint32_t local = allocate_local_port();
  Key key{local, guest_port};
  auto c = std::make_unique<Conn>(
      std::move(stream), VsockConnection::host_initiated(opts_.guest_cid, local, guest_port, opts_.connection));
  conns_.emplace(key, std::move(c));
  service_conn(key);
}

void VsockConnectionTable::read_host(Conn& c) {
  std::vector<uint8_t> buf;
  while (true) {
    size_t space = c.sm.host_read_space();
    if (space == 0) return;
    buf.resize(std::min(space, kReadChunk));
    StreamIoResult r = c.stream->read(buf);
    switch (r.status) {
      case StreamIo::kOk:
        c.sm.on_host_data(std::span<const uint8_t>(buf.data(), r.bytes));
        continue;
      case StreamIo::kEof:
        c.sm.on_host_eof();
        return;
      case StreamIo::kWouldBlock:
        return;
      case StreamIo::kError:
        c.sm.on_host_error();
        c.hup = true;
        return;
    }
  }
}

void VsockConnectionTable::on_stream_event(Key key, StreamEvents events) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (events.error) {
    c.sm.on_host_error();
    c.hup = true;
  } else {
    if (events.readable || events.hang_up) read_host(c);
    // Hang-up is level-triggered and cannot be masked: stop watching, read what is left.
    if (events.hang_up) c.hup = true;
  }
  service_conn(key);
}

void VsockConnectionTable::service_conn(Key key) {
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
    StreamIoResult r = c.stream->write(pending);
    if (r.status == StreamIo::kOk) {
      c.sm.on_host_written(r.bytes);
      continue;
    }
    if (r.status == StreamIo::kWouldBlock) {
      want_out = true;
      break;
    }
    c.sm.on_host_error();  // EPIPE, ECONNRESET, ...
    c.hup = true;
    break;
  }
  if (c.sm.take_host_shutdown_write()) c.stream->shutdown_write();

  if (c.sm.closed()) {
    remove_conn(key);
    return;
  }
  if (c.hup) {
    if (c.watching) {
      c.stream->stop_watching();
      c.watching = false;
    }
    return;
  }
  StreamInterest interest{c.sm.host_read_space() > 0, want_out};
  if (c.watching) {
    (void)c.stream->watch(interest, {});
    return;
  }
  auto st = c.stream->watch(interest, [router = on_ready_, key](StreamEvents ev) { router(key, ev); });
  if (!st.ok()) {
    c.sm.on_host_error();
    return;
  }
  c.watching = true;
}

void VsockConnectionTable::remove_conn(Key key) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  if (it->second->sm.protocol_error()) {
    counters_.add_error();
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: connection %u <-> guest port %u reset: the guest broke the protocol",
                   key.first, key.second);
  }
  conns_.erase(it);  // closes the stream, which stops watching it
}

void VsockConnectionTable::drop_all() {
  conns_.clear();
  rst_queue_.clear();
  dirty_.clear();
}

// ---------------------------------------------------------------- guest side

void VsockConnectionTable::queue_rst(const VsockHeader& reply) {
  if (rst_queue_.size() >= kMaxQueuedRsts) {
    counters_.add_error();
    return;
  }
  rst_queue_.push_back(reply);
}

void VsockConnectionTable::reply_rst(const VsockHeader& h) { queue_rst(make_rst_reply(h)); }

void VsockConnectionTable::connect_to_host(const VsockHeader& req) {
  Key key{req.dst_port, req.src_port};
  if (backend_.pending_count() + conns_.size() >= opts_.max_connections) {
    counters_.add_error();
    queue_rst(make_rst_reply(req));
    return;
  }
  auto stream = backend_.connect(req.dst_port);
  if (!stream.ok()) {
    // Nobody listening (or a full backlog): refuse the guest (virtio 1.2 §5.10.6.4).
    queue_rst(make_rst_reply(req));
    return;
  }
  auto c = std::make_unique<Conn>(std::move(*stream),
                                  VsockConnection::guest_initiated(opts_.guest_cid, req, opts_.connection));
  conns_.emplace(key, std::move(c));
  dirty_.push_back(key);
}

void VsockConnectionTable::on_guest_packet(const VsockHeader& h, std::span<const uint8_t> payload) {
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
                   describe_().c_str());
  }
  it->second->sm.on_guest_packet(h, payload);
  dirty_.push_back(key);
}

void VsockConnectionTable::service_touched() {
  std::vector<Key> dirty;
  dirty.swap(dirty_);
  std::sort(dirty.begin(), dirty.end());
  dirty.erase(std::unique(dirty.begin(), dirty.end()), dirty.end());
  for (const Key& k : dirty) service_conn(k);
}

// ---------------------------------------------------------------- rx queue

bool VsockConnectionTable::has_rx_packet() const {
  if (!rst_queue_.empty()) return true;
  for (const auto& [key, c] : conns_) {
    if (c->sm.has_guest_packet()) return true;
  }
  return false;
}

std::optional<VsockConnectionTable::RxPacket> VsockConnectionTable::next_rx_packet(
    size_t max_payload, std::vector<uint8_t>& payload) {
  if (!rst_queue_.empty()) {
    RxPacket p{rst_queue_.front(), std::nullopt};
    rst_queue_.pop_front();
    payload.clear();
    return p;
  }
  // Round-robin over connections, starting after the last one served.
  auto it = conns_.upper_bound(rr_cursor_);
  for (size_t n = 0; n < conns_.size(); ++n, ++it) {
    if (it == conns_.end()) it = conns_.begin();
    if (!it->second->sm.has_guest_packet()) continue;
    auto h = it->second->sm.next_guest_packet(max_payload, payload);
    if (h) return RxPacket{*h, it->first};
  }
  return std::nullopt;
}

bool VsockConnectionTable::delivered(const RxPacket& packet) {
  if (!packet.from) return false;
  bool deadline_started = false;
  // The guest has connect_timeout to answer a REQUEST, counted from its delivery.
  if (packet.header.vsock_op() == VsockOp::kRequest) {
    conns_[*packet.from]->connect_deadline = std::chrono::steady_clock::now() + opts_.connect_timeout;
    deadline_started = true;
  }
  rr_cursor_ = *packet.from;
  service_conn(*packet.from);  // it may have closed, or have room to read again
  return deadline_started;
}

// ---------------------------------------------------------------- deadlines

bool VsockConnectionTable::has_deadlines() const {
  for (const auto& [key, c] : conns_) {
    if (c->connect_deadline) return true;
  }
  return false;
}

void VsockConnectionTable::expire_deadlines(std::chrono::steady_clock::time_point now) {
  std::vector<Key> expired;
  for (auto& [key, c] : conns_) {
    if (c->connect_deadline && now >= *c->connect_deadline) expired.push_back(key);
  }
  for (const Key& key : expired) {
    Conn& c = *conns_[key];
    c.connect_deadline.reset();
    if (c.sm.state() == VsockConnection::State::kConnecting) {
      KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: guest did not answer connection to port %u (%s)",
                     key.second, describe_().c_str());
      c.sm.on_host_error();  // cancels the request (RST if it was sent) and closes the client
    }
    service_conn(key);
  }
}

}  // namespace kiln::vmm::devices
