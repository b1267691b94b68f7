// virtio-blk request parsing.
#include "vmm/devices/block_request.h"

#include <cstring>

namespace kiln::vmm::devices {

Result<BlockRequestHeader> parse_block_request_header(std::span<const uint8_t> bytes) {
  if (bytes.size() < kBlkHeaderSize) return make_error("virtio-blk: request header too short");
  BlockRequestHeader h;
  std::memcpy(&h.type, bytes.data(), 4);  // little-endian host (x86_64)
  std::memcpy(&h.sector, bytes.data() + 8, 8);
  return h;
}

Status check_block_range(uint64_t sector, uint64_t len, uint64_t capacity) {
  if (len % kSectorSize != 0) return make_error("virtio-blk: length is not a multiple of 512");
  const uint64_t sectors = len / kSectorSize;
  if (sector > capacity || sectors > capacity - sector) {
    return make_error("virtio-blk: request beyond the end of the disk");
  }
  return ok_status();
}

}  // namespace kiln::vmm::devices
