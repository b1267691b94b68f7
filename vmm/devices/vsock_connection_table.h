// VsockConnectionTable: the vsock device's streams, each a VsockConnection joined to a backend
// host stream: routes guest packets, moves bytes, queues connectionless RSTs, picks rx packets
// round-robin, times out unanswered REQUESTs. Every call is made with the device's lock held.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "vmm/devices/vsock_backend.h"
#include "vmm/devices/vsock_connection.h"
#include "vmm/devices/vsock_packet.h"
#include "vmm/virtio/device_counters.h"

namespace kiln::vmm::devices {

class VsockConnectionTable {
 public:
  using Key = std::pair<uint32_t, uint32_t>;  // (local/host port, peer/guest port)
  // First port handed to host-initiated connections (as Firecracker: "OK 1073741824").
  static inline constexpr uint32_t kFirstLocalPort = 1u << 30;

  struct Options {
    uint64_t guest_cid = 3;
    VsockConnection::Options connection;
    size_t max_connections = 1024;  // with the backend's pending ones
    std::chrono::milliseconds connect_timeout{10000};
  };
  // Stream readiness, routed back by key: the device takes its lock, then on_stream_event().
  using ReadyRouter = std::function<void(Key, StreamEvents)>;
  // A packet for an rx buffer; `from` names its connection (none for a queued RST).
  struct RxPacket {
    VsockHeader header;
    std::optional<Key> from;
  };

  // backend and counters outlive the table. `describe` adds the device's queue state to the
  // warnings about a guest that refuses or does not answer connections.
  VsockConnectionTable(Options opts, VsockBackend& backend, virtio::AtomicDeviceCounters& counters,
                       ReadyRouter on_ready, std::function<std::string()> describe)
      : opts_(opts),
        backend_(backend),
        counters_(counters),
        on_ready_(std::move(on_ready)),
        describe_(std::move(describe)) {}

  size_t size() const { return conns_.size(); }

  // ---- host side ----
  // A host program asked for guest port `guest_port`: queue a REQUEST from a fresh local port.
  void adopt_host_stream(std::unique_ptr<VsockHostStream> stream, uint32_t guest_port);
  void on_stream_event(Key key, StreamEvents events);

  // ---- guest side ----
  // A packet classified kAccept: to its connection, or opens/refuses one.
  void on_guest_packet(const VsockHeader& h, std::span<const uint8_t> payload);
  // Answers `h` with a RST (no connection, or a packet the device cannot serve).
  void reply_rst(const VsockHeader& h);
  // Flushes the connections guest packets touched since the last call.
  void service_touched();

  // ---- rx queue ----
  bool has_rx_packet() const;
  // The next packet (queued RSTs first, then connections round-robin); RW payload of at most
  // max_payload bytes goes into `payload`. nullopt: nothing fits.
  std::optional<RxPacket> next_rx_packet(size_t max_payload, std::vector<uint8_t>& payload);
  // The packet is in the guest's buffer. Returns true when a connection deadline started.
  bool delivered(const RxPacket& packet);

  // ---- deadlines, teardown ----
  bool has_deadlines() const;
  // Resets the connections whose REQUEST the guest left unanswered until `now`.
  void expire_deadlines(std::chrono::steady_clock::time_point now);
  // Closes every stream (device reset, transport reset, teardown).
  void drop_all();

 private:
  struct Conn {
    Conn(std::unique_ptr<VsockHostStream> s, VsockConnection c) : stream(std::move(s)), sm(std::move(c)) {}
    std::unique_ptr<VsockHostStream> stream;
    VsockConnection sm;
    bool watching = false;
    bool hup = false;  // the stream hung up: no more reads or writes
    std::optional<std::chrono::steady_clock::time_point> connect_deadline;  // host-initiated
  };

  void connect_to_host(const VsockHeader& request);
  void queue_rst(const VsockHeader& reply);
  void read_host(Conn& c);
  void service_conn(Key key);  // flush to host, shutdown, interest, reap
  void remove_conn(Key key);
  uint32_t allocate_local_port();

  const Options opts_;
  VsockBackend& backend_;
  virtio::AtomicDeviceCounters& counters_;
  const ReadyRouter on_ready_;
  const std::function<std::string()> describe_;

  std::map<Key, std::unique_ptr<Conn>> conns_;
  std::deque<VsockHeader> rst_queue_;  // connectionless RSTs waiting for rx buffers
  std::vector<Key> dirty_;             // connections touched by guest packets
  Key rr_cursor_{0, 0};                // round-robin position among connections
  uint32_t next_local_port_ = kFirstLocalPort;
};

}  // namespace kiln::vmm::devices
