// VsockConnection: one vsock stream between a guest port and a host Unix socket, as a pure
// state machine (virtio 1.2 §5.10.6.3-§5.10.6.6): connection setup, credit-based flow
// control, shutdown and reset. It never touches sockets; the device feeds it host bytes and
// guest packets and asks it for packets to put on the rx queue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vmm/devices/vsock_packet.h"

namespace kiln::vmm::devices {

class VsockConnection {
 public:
  enum class State {
    kConnecting,   // host-initiated: REQUEST queued or sent, waiting for the guest's RESPONSE
    kEstablished,  // data may flow (a guest-initiated connection starts here)
    kClosing,      // a final RST is queued; the connection ends once it is sent
    kClosed,       // over: the device closes the host socket and forgets the connection
  };

  struct Options {
    uint32_t buf_alloc = 256 * 1024;         // guest->host bytes we buffer (advertised credit)
    size_t host_buffer = 64 * 1024;          // host->guest bytes we buffer
  };

  // Host client sent "CONNECT <peer_port>": queue a REQUEST from local_port.
  static VsockConnection host_initiated(uint64_t guest_cid, uint32_t local_port,
                                        uint32_t peer_port, Options opts);
  // Guest sent REQUEST (dst_port = local port) and the host socket connected: queue RESPONSE.
  static VsockConnection guest_initiated(uint64_t guest_cid, const VsockHeader& request,
                                         Options opts);

  State state() const { return state_; }
  uint32_t local_port() const { return local_port_; }
  uint32_t peer_port() const { return peer_port_; }
  bool closed() const { return state_ == State::kClosed; }

  // ---- guest side ----
  // A packet from the guest for this connection (already classified kAccept).
  void on_guest_packet(const VsockHeader& h, std::span<const uint8_t> payload);
  // Whether next_guest_packet() would produce something.
  bool has_guest_packet() const;
  // The next packet for the rx queue; RW payload (at most max_payload bytes) goes into
  // `payload`. nullopt when nothing can be sent now (no data, no credit).
  std::optional<VsockHeader> next_guest_packet(size_t max_payload, std::vector<uint8_t>& payload);

  // ---- host side ----
  // How many bytes the device should read from the host socket now (0: stop reading).
  size_t host_read_space() const;
  // Bytes read from the host socket (at most host_read_space()).
  void on_host_data(std::span<const uint8_t> data);
  // The host socket reached end-of-file: no more host->guest data.
  void on_host_eof();
  // The host socket failed (reset, write error, hang-up with data pending): reset the stream.
  void on_host_error();
  // Bytes to write to the host socket: the hybrid-vsock "OK <port>\n" reply (host-initiated
  // streams; common/protocol/hybrid_vsock.h), then guest data.
  std::span<const uint8_t> host_write_pending() const;
  void on_host_written(size_t n);
  // True once: the guest will send no more and everything was written; the device then
  // shuts down the socket's write side.
  bool take_host_shutdown_write();

  // Counters for the device (payload bytes, not headers).
  uint64_t bytes_from_guest() const { return total_from_guest_; }
  uint64_t bytes_to_guest() const { return total_to_guest_; }
  // The guest broke the protocol (e.g. overran its credit) and the stream was reset.
  bool protocol_error() const { return protocol_error_; }
  // Credit the guest has granted us that we have not used.
  uint32_t peer_credit() const;

 private:
  VsockConnection(uint64_t guest_cid, uint32_t local_port, uint32_t peer_port, Options opts)
      : guest_cid_(guest_cid), local_port_(local_port), peer_port_(peer_port), opts_(opts) {}

  VsockHeader make_header(VsockOp op) const;
  void reset(bool send_rst);
  void update_peer_credit(const VsockHeader& h);
  void maybe_finish();
  void protocol_violation();
  bool can_send_data() const;
  bool shutdown_ready() const;
  bool credit_stalled() const;
  uint32_t guest_bytes_buffered() const { return static_cast<uint32_t>(to_host_.size() - to_host_off_); }

  uint64_t guest_cid_;
  uint32_t local_port_;
  uint32_t peer_port_;
  Options opts_;
  State state_ = State::kEstablished;

  // Control packets waiting for an rx buffer.
  bool pending_request_ = false;
  bool pending_response_ = false;
  bool pending_rst_ = false;
  bool pending_credit_update_ = false;
  bool pending_credit_request_ = false;
  bool credit_request_sent_ = false;  // one CREDIT_REQUEST per stall

  // host -> guest
  std::vector<uint8_t> to_guest_;
  bool host_eof_ = false;
  bool shutdown_sent_ = false;  // we sent SHUTDOWN(SEND)
  uint32_t tx_cnt_ = 0;         // payload bytes sent to the guest (wraps, as the spec's counters)
  uint32_t peer_buf_alloc_ = 0;
  uint32_t peer_fwd_cnt_ = 0;

  // guest -> host
  std::string ack_;               // "OK <port>\n" not yet written to the host client
  std::vector<uint8_t> to_host_;  // guest data not yet written, from to_host_off_
  size_t to_host_off_ = 0;
  uint32_t peer_shutdown_ = 0;  // kVsockShutdown* flags the guest sent
  bool host_shut_wr_done_ = false;
  uint32_t rx_cnt_ = 0;              // payload bytes received from the guest
  uint32_t fwd_cnt_ = 0;             // of those, bytes written to the host socket
  uint32_t last_fwd_cnt_sent_ = 0;   // fwd_cnt the guest last heard from us
  bool protocol_error_ = false;
  uint64_t total_from_guest_ = 0;
  uint64_t total_to_guest_ = 0;
};

}  // namespace kiln::vmm::devices
