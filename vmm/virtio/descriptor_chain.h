// Descriptor-chain walking for split virtqueues (virtio 1.2 §2.7.5, §2.7.5.3): a bounded walk
// that validates every buffer against guest memory and splits it into readable and
// writable parts, plus cursor helpers that copy across a chain's buffers.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "vmm/memory/guest_address.h"
#include "vmm/memory/guest_memory.h"

namespace kiln::vmm::virtio {

// One descriptor as laid out in guest memory (virtio 1.2 §2.7.5), little-endian.
struct __attribute__((packed)) VirtqDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(VirtqDesc) == 16);

// A validated chain. Buffers are host views of guest RAM obtained via GuestMemory::slice.
struct DescriptorChain {
  uint16_t head = 0;  // index reported back in the used ring
  std::vector<std::span<uint8_t>> readable;  // device-readable, in chain order
  std::vector<std::span<uint8_t>> writable;  // device-writable, in chain order
  uint64_t readable_len = 0;
  uint64_t writable_len = 0;
};

struct ChainWalkOptions {
  bool indirect_allowed = false;  // VIRTIO_F_INDIRECT_DESC negotiated
};

// Walks the chain starting at `head` in the descriptor table at `desc_table` of a queue of
// `queue_size` entries. Errors: head or next out of range, more hops than the queue size
// (covers loops), an address/length outside guest RAM or crossing a region, a readable
// buffer after a writable one, bad or nested indirect tables, total lengths above 4 GiB.
Result<DescriptorChain> walk_descriptor_chain(const GuestMemory& mem, GuestAddress desc_table,
                                              uint16_t queue_size, uint16_t head,
                                              ChainWalkOptions opts = {});

// Sequential reader over a chain's readable buffers.
class ChainReader {
 public:
  explicit ChainReader(const std::vector<std::span<uint8_t>>& bufs);
  uint64_t remaining() const { return remaining_; }
  // Copies exactly out.size() bytes or fails without consuming anything.
  Status read(std::span<uint8_t> out);
  // Skips n bytes (fails if fewer remain).
  Status skip(uint64_t n);
  // Host views covering the next n bytes (for zero-copy I/O); consumes them.
  Result<std::vector<std::span<uint8_t>>> take(uint64_t n);

 private:
  const std::vector<std::span<uint8_t>>& bufs_;
  size_t idx_ = 0;
  size_t off_ = 0;
  uint64_t remaining_ = 0;
};

// Sequential writer over a chain's writable buffers; counts bytes written for the used ring.
class ChainWriter {
 public:
  explicit ChainWriter(const std::vector<std::span<uint8_t>>& bufs);
  uint64_t remaining() const { return remaining_; }
  uint64_t written() const { return written_; }
  // Copies all of in or fails without writing anything.
  Status write(std::span<const uint8_t> in);
  // Host views covering the next n bytes; they count as written once taken.
  Result<std::vector<std::span<uint8_t>>> take(uint64_t n);

 private:
  const std::vector<std::span<uint8_t>>& bufs_;
  size_t idx_ = 0;
  size_t off_ = 0;
  uint64_t remaining_ = 0;
  uint64_t written_ = 0;
};

}  // namespace kiln::vmm::virtio
