// The snapshot state file: a fixed header (magic "KILNSNAP", format version, payload length,
// CRC-64 of the payload) followed by the payload. The format version is independent of kiln's
// version; a reader refuses any other version. Written atomically (io::write_file_atomic).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace kiln::vmm::snapshot {

inline constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'S', 'N', 'A', 'P'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint64_t kMaxPayloadBytes = 64ull << 20;

uint64_t crc64(std::string_view data);

// Header + payload as bytes (pure; the file functions below use it).
std::string encode_container(std::string_view payload);
Result<std::string> decode_container(std::string_view file_bytes);

Status write_state_file(const std::string& path, std::string_view payload);

Result<std::string> read_state_file(const std::string& path);

}  // namespace kiln::vmm::snapshot
