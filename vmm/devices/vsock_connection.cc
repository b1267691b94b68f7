// VsockConnection implementation. Counters (tx_cnt, fwd_cnt, buf_alloc) are 32-bit and wrap,
// exactly as the credit arithmetic in virtio 1.2 §5.10.6.3 expects.
#include "vmm/devices/vsock_connection.h"

#include <algorithm>
#include <cstring>

#include "common/protocol/hybrid_vsock.h"

namespace kiln::vmm::devices {

VsockConnection VsockConnection::host_initiated(uint64_t guest_cid, uint32_t local_port,
                                                uint32_t peer_port, Options opts) {
  VsockConnection c(guest_cid, local_port, peer_port, opts);
  c.state_ = State::kConnecting;
  c.pending_request_ = true;
  return c;
}

VsockConnection VsockConnection::guest_initiated(uint64_t guest_cid, const VsockHeader& request,
                                                 Options opts) {
  VsockConnection c(guest_cid, request.dst_port, request.src_port, opts);
  c.state_ = State::kEstablished;
  c.update_peer_credit(request);
  c.pending_response_ = true;
  return c;
}

VsockHeader VsockConnection::make_header(VsockOp op) const {
  VsockHeader h;
  h.src_cid = kVsockHostCid;
  h.dst_cid = guest_cid_;
  h.src_port = local_port_;
  h.dst_port = peer_port_;
  h.type = kVsockTypeStream;
  h.op = static_cast<uint16_t>(op);
  h.buf_alloc = opts_.buf_alloc;
  h.fwd_cnt = fwd_cnt_;
  return h;
}

uint32_t VsockConnection::peer_credit() const {
  uint32_t in_flight = tx_cnt_ - peer_fwd_cnt_;  // wraps by design
  if (in_flight > peer_buf_alloc_) return 0;      // the guest shrank its buffer
  return peer_buf_alloc_ - in_flight;
}

void VsockConnection::update_peer_credit(const VsockHeader& h) {
  peer_buf_alloc_ = h.buf_alloc;
  peer_fwd_cnt_ = h.fwd_cnt;
  if (peer_credit() > 0) credit_request_sent_ = false;
}

void VsockConnection::reset(bool send_rst) {
  to_guest_.clear();
  to_host_.clear();
  to_host_off_ = 0;
  ack_.clear();
  pending_request_ = pending_response_ = pending_credit_update_ = pending_credit_request_ = false;
  pending_rst_ = send_rst;
  state_ = send_rst ? State::kClosing : State::kClosed;
}

void VsockConnection::protocol_violation() {
  protocol_error_ = true;
  reset(true);
}

void VsockConnection::on_guest_packet(const VsockHeader& h, std::span<const uint8_t> payload) {
  const VsockOp op = h.vsock_op();
  if (state_ == State::kClosed) return;
  if (state_ == State::kClosing) {
    // The guest reset first: nothing left to say.
    if (op == VsockOp::kRst) reset(false);
    return;
  }
  update_peer_credit(h);
  if (op == VsockOp::kRst) {
    reset(false);
    return;
  }
  if (state_ == State::kConnecting) {
    // Only the answer to our REQUEST is valid here (virtio 1.2 §5.10.6.4).
    if (op == VsockOp::kResponse && !pending_request_) {
      state_ = State::kEstablished;
      ack_ = protocol::hybrid_connect_reply(local_port_);
      return;
    }
    protocol_violation();
    return;
  }
  switch (op) {
    case VsockOp::kRw: {
      if (peer_shutdown_ & kVsockShutdownSend) return protocol_violation();
      // The guest may send at most the credit we advertised (virtio 1.2 §5.10.6.3).
      if (payload.size() > opts_.buf_alloc - guest_bytes_buffered()) return protocol_violation();
      to_host_.insert(to_host_.end(), payload.begin(), payload.end());
      rx_cnt_ += static_cast<uint32_t>(payload.size());
      total_from_guest_ += payload.size();
      break;
    }
    case VsockOp::kCreditUpdate:
      break;  // credit already taken from the header
    case VsockOp::kCreditRequest:
      pending_credit_update_ = true;
      break;
    case VsockOp::kShutdown:
      peer_shutdown_ |= h.flags & (kVsockShutdownRcv | kVsockShutdownSend);
      if (peer_shutdown_ & kVsockShutdownRcv) to_guest_.clear();  // it will not read them
      break;
    case VsockOp::kRequest:
    case VsockOp::kResponse:
    default:
      return protocol_violation();
  }
  maybe_finish();
}

void VsockConnection::maybe_finish() {
  if (state_ != State::kEstablished) return;
  const bool guest_done_sending = (peer_shutdown_ & kVsockShutdownSend) != 0;
  const bool guest_done_receiving = (peer_shutdown_ & kVsockShutdownRcv) != 0 || shutdown_sent_;
  const bool flushed_to_host = ack_.empty() && guest_bytes_buffered() == 0;
  // Both directions are over and everything reached the host: end with a RST, which is
  // also the reply a driver waits for after SHUTDOWN (virtio 1.2 §5.10.6.6).
  if (guest_done_sending && guest_done_receiving && flushed_to_host) reset(true);
}

bool VsockConnection::can_send_data() const {
  return state_ == State::kEstablished && !pending_response_ && !to_guest_.empty() &&
         !(peer_shutdown_ & kVsockShutdownRcv) && peer_credit() > 0;
}

bool VsockConnection::shutdown_ready() const {
  return state_ == State::kEstablished && !pending_response_ && host_eof_ && to_guest_.empty() &&
         !shutdown_sent_;
}

bool VsockConnection::credit_stalled() const {
  return state_ == State::kEstablished && !to_guest_.empty() &&
         !(peer_shutdown_ & kVsockShutdownRcv) && peer_credit() == 0 && !credit_request_sent_;
}

bool VsockConnection::has_guest_packet() const {
  if (pending_rst_ || pending_request_) return true;
  if (state_ != State::kEstablished) return false;
  return pending_response_ || can_send_data() || shutdown_ready() || pending_credit_update_ ||
         credit_stalled();
}

std::optional<VsockHeader> VsockConnection::next_guest_packet(size_t max_payload,
                                                              std::vector<uint8_t>& payload) {
  payload.clear();
  std::optional<VsockHeader> out;
  if (pending_rst_) {
    out = make_header(VsockOp::kRst);
    pending_rst_ = false;
    state_ = State::kClosed;
    return out;
  }
  if (pending_request_) {
    pending_request_ = false;
    out = make_header(VsockOp::kRequest);
  } else if (state_ != State::kEstablished) {
    return std::nullopt;
  } else if (pending_response_) {
    pending_response_ = false;
    out = make_header(VsockOp::kResponse);
  } else if (can_send_data() && max_payload > 0) {
    size_t n = std::min({to_guest_.size(), static_cast<size_t>(peer_credit()), max_payload,
                         static_cast<size_t>(kVsockMaxPayload)});
    payload.assign(to_guest_.begin(), to_guest_.begin() + static_cast<std::ptrdiff_t>(n));
    to_guest_.erase(to_guest_.begin(), to_guest_.begin() + static_cast<std::ptrdiff_t>(n));
    tx_cnt_ += static_cast<uint32_t>(n);
    total_to_guest_ += n;
    out = make_header(VsockOp::kRw);
    out->len = static_cast<uint32_t>(n);
  } else if (shutdown_ready()) {
    // The host will send nothing more (its socket hit EOF).
    shutdown_sent_ = true;
    out = make_header(VsockOp::kShutdown);
    out->flags = kVsockShutdownSend;
  } else if (pending_credit_update_) {
    out = make_header(VsockOp::kCreditUpdate);
  } else if (credit_stalled()) {
    credit_request_sent_ = true;
    out = make_header(VsockOp::kCreditRequest);
  } else {
    return std::nullopt;
  }
  // Every header carries our fwd_cnt, so the guest's view of our credit is now current.
  last_fwd_cnt_sent_ = fwd_cnt_;
  pending_credit_update_ = false;
  maybe_finish();
  return out;
}

size_t VsockConnection::host_read_space() const {
  if (state_ != State::kEstablished && state_ != State::kConnecting) return 0;
  if (host_eof_ || (peer_shutdown_ & kVsockShutdownRcv)) return 0;
  return to_guest_.size() >= opts_.host_buffer ? 0 : opts_.host_buffer - to_guest_.size();
}

void VsockConnection::on_host_data(std::span<const uint8_t> data) {
  size_t n = std::min(data.size(), host_read_space());
  to_guest_.insert(to_guest_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
}

void VsockConnection::on_host_eof() {
  if (state_ == State::kConnecting) {
    // The client gave up before the guest answered: cancel the request if it went out.
    if (pending_request_) {
      reset(false);
    } else {
      reset(true);
    }
    return;
  }
  host_eof_ = true;
  maybe_finish();
}

void VsockConnection::on_host_error() {
  if (state_ == State::kClosed || state_ == State::kClosing) return;
  reset(!(state_ == State::kConnecting && pending_request_));
}

std::span<const uint8_t> VsockConnection::host_write_pending() const {
  if (state_ != State::kEstablished) return {};
  if (!ack_.empty()) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(ack_.data()), ack_.size());
  }
  return std::span<const uint8_t>(to_host_.data() + to_host_off_, to_host_.size() - to_host_off_);
}

void VsockConnection::on_host_written(size_t n) {
  if (n == 0 || state_ != State::kEstablished) return;
  if (!ack_.empty()) {
    ack_.erase(0, std::min(n, ack_.size()));
    maybe_finish();
    return;
  }
  n = std::min(n, to_host_.size() - to_host_off_);
  to_host_off_ += n;
  fwd_cnt_ += static_cast<uint32_t>(n);
  if (to_host_off_ == to_host_.size()) {
    to_host_.clear();
    to_host_off_ = 0;
  } else if (to_host_off_ >= 64 * 1024) {
    to_host_.erase(to_host_.begin(), to_host_.begin() + static_cast<std::ptrdiff_t>(to_host_off_));
    to_host_off_ = 0;
  }
  // Tell the guest about freed space before it can run dry (it blocks at zero credit and
  // Linux does not ask by itself).
  if (fwd_cnt_ - last_fwd_cnt_sent_ >= opts_.buf_alloc / 2) pending_credit_update_ = true;
  maybe_finish();
}

bool VsockConnection::take_host_shutdown_write() {
  if (state_ != State::kEstablished || host_shut_wr_done_) return false;
  if (!(peer_shutdown_ & kVsockShutdownSend) || !ack_.empty() || guest_bytes_buffered() != 0) {
    return false;
  }
  host_shut_wr_done_ = true;
  return true;
}

}  // namespace kiln::vmm::devices
