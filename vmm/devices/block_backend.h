// BlockBackend: where a virtio-blk drive's bytes live (a file, an NBD export). The device parses
// and checks requests; a backend only moves data, inline or asynchronously on the event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "common/result.h"

namespace kiln::vmm::devices {

enum class BlockOp { kRead, kWrite, kFlush };

struct BlockIo {
  uint64_t tag = 0;  // the device's name for the request, given back with its completion
  BlockOp op = BlockOp::kRead;
  uint64_t offset = 0;                   // bytes, inside the disk (the device checked)
  std::vector<std::span<uint8_t>> bufs;  // read: filled; write: sent. Valid until completed.
};

struct BlockCompletion {
  uint64_t tag = 0;
  bool ok = false;
};

class BlockBackend {
 public:
  virtual ~BlockBackend() = default;

  virtual uint64_t size_bytes() const = 0;
  // The backend refuses writes (read-only file open, NBD server without write access).
  virtual bool read_only() const = 0;
  // Whether submit() always completes inline: bufs may then point into guest memory (zero copy);
  // otherwise they must stay valid until the completion arrives (bounce buffers).
  virtual bool synchronous() const = 0;
  // Largest data length of one submit() (0: no limit); the device splits longer requests.
  virtual uint64_t max_request_bytes() const { return 0; }

  // Starts `io`. Returns the result when it completed (or failed) inline; nullopt when it is in
  // progress: its completion then comes from take_completions().
  virtual std::optional<bool> submit(BlockIo io) = 0;
  // Completions that arrived since the last call, in the order they arrived.
  virtual std::vector<BlockCompletion> take_completions() { return {}; }
  // An asynchronous backend calls `ready` on the event-loop thread, with no lock held, after
  // completions arrived. Set once, before the first submit().
  virtual void set_ready_callback(std::function<void()> ready) { (void)ready; }
  // Backend-specific counters for /metrics (name, value).
  virtual std::vector<std::pair<std::string, uint64_t>> counters() const { return {}; }
};

}  // namespace kiln::vmm::devices
