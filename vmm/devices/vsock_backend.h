// The seam between the vsock device and where its streams end on the host (Firecracker's
// VsockBackend): the device owns queues, packets, credit and each stream's state machine; a
// backend (kiln-vmm's: VsockUnixMuxer) supplies host byte streams.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "common/result.h"

namespace kiln::vmm::devices {

// Readiness of a host stream, as reported by the backend's event loop.
struct StreamEvents {
  bool readable = false;
  bool writable = false;
  bool hang_up = false;  // the peer is gone; what it sent may still be read
  bool error = false;    // the stream failed
};

// Which readiness the device wants reported (hang-ups and errors always are).
struct StreamInterest {
  bool readable = false;
  bool writable = false;
  bool operator==(const StreamInterest&) const = default;
};

enum class StreamIo {
  kOk,          // `bytes` moved (> 0)
  kWouldBlock,  // try again after the next readiness event
  kEof,         // read only: the peer will send nothing more
  kError,       // the stream is broken
};

struct StreamIoResult {
  StreamIo status = StreamIo::kError;
  size_t bytes = 0;
};

// One host byte stream of a vsock connection. Non-blocking; every call is made with the
// device's lock held. Destroying it closes it.
class VsockHostStream {
 public:
  using ReadyCallback = std::function<void(StreamEvents)>;

  virtual ~VsockHostStream() = default;

  virtual StreamIoResult read(std::span<uint8_t> buf) = 0;
  virtual StreamIoResult write(std::span<const uint8_t> data) = 0;
  // No more bytes towards the host (the guest sent SHUTDOWN(SEND) and all was written).
  virtual void shutdown_write() = 0;
  // Reports readiness to `on_ready` (on the event-loop thread, without the device lock) for
  // what `interest` asks. The first call starts watching (an error: the stream cannot be
  // served); later calls change the interest; the callback of the first call stays.
  virtual Status watch(StreamInterest interest, ReadyCallback on_ready) = 0;
  // No more readiness reports (the peer hung up).
  virtual void stop_watching() = 0;
};

// What a backend tells the device; implemented by the device. The first two take the device's
// lock: never call them with the backend's own lock held.
class VsockBackendSink {
 public:
  virtual ~VsockBackendSink() = default;
  // Connections the device holds (for the backend's share of the connection limit).
  virtual size_t connection_count() const = 0;
  // A host program asked for guest port `guest_port` (hybrid vsock: "CONNECT <port>").
  virtual void on_host_connect(std::unique_ptr<VsockHostStream> stream, uint32_t guest_port) = 0;
  // A host connection was refused (limit reached, or it could not be served): counted as a
  // device error. Lock-free.
  virtual void on_host_refused() = 0;
};

class VsockBackend {
 public:
  virtual ~VsockBackend() = default;
  // Starts taking host connections and handing them to `sink`, which outlives the backend.
  virtual Status start(VsockBackendSink& sink) = 0;
  // The guest connects to host port `port`: an open stream, or an error (nobody listening),
  // which the device answers with a RST. Device lock held.
  virtual Result<std::unique_ptr<VsockHostStream>> connect(uint32_t port) = 0;
  // Host connections not handed to the sink yet; they count against the connection limit.
  virtual size_t pending_count() const = 0;
};

}  // namespace kiln::vmm::devices
