// virtio-blk request parsing (virtio 1.2 §5.2.6): pure functions over bytes and numbers so
// they can be fuzzed without a device.
#pragma once

#include <cstdint>
#include <span>

#include "common/result.h"

namespace kiln::vmm::devices {

// Request types and status values (virtio 1.2 §5.2.6).
inline constexpr uint32_t kBlkTypeIn = 0;
inline constexpr uint32_t kBlkTypeOut = 1;
inline constexpr uint32_t kBlkTypeFlush = 4;
inline constexpr uint32_t kBlkTypeGetId = 8;
inline constexpr uint8_t kBlkStatusOk = 0;
inline constexpr uint8_t kBlkStatusIoErr = 1;
inline constexpr uint8_t kBlkStatusUnsupp = 2;

// Feature bits (virtio 1.2 §5.2.3).
inline constexpr unsigned kBlkFeatureSegMax = 2;
inline constexpr unsigned kBlkFeatureRo = 5;
inline constexpr unsigned kBlkFeatureFlush = 9;

inline constexpr uint64_t kSectorSize = 512;
inline constexpr size_t kBlkHeaderSize = 16;  // le32 type, le32 reserved, le64 sector
inline constexpr size_t kBlkIdBytes = 20;     // VIRTIO_BLK_ID_BYTES

struct BlockRequestHeader {
  uint32_t type = 0;
  uint64_t sector = 0;
};

// Decodes the 16-byte request header; fails if fewer bytes are given.
Result<BlockRequestHeader> parse_block_request_header(std::span<const uint8_t> bytes);

// Checks a data transfer of `len` bytes at `sector` against a disk of `capacity` sectors:
// len must be a whole number of sectors and [sector, sector + len/512) inside the disk.
// Overflow-safe for any inputs.
Status check_block_range(uint64_t sector, uint64_t len, uint64_t capacity);

}  // namespace kiln::vmm::devices
