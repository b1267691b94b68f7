// The snapshot state file: a fixed header (magic "KILNSNAP", format version, the architecture
// the snapshot was taken on, payload length, CRC-64 of the payload) followed by the payload. The
// format version is independent of kiln's version; a reader refuses any other version, and a
// snapshot of another architecture. Written atomically (io::write_file_atomic).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace kiln::vmm::snapshot {

inline constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'S', 'N', 'A', 'P'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint64_t kMaxPayloadBytes = 64ull << 20;

// The header's architecture field (its value 0 is x86_64, as every file written before the
// field existed says).
enum class Arch : uint32_t { kX86_64 = 0, kAarch64 = 1 };
#if defined(__aarch64__)
inline constexpr Arch kHostArch = Arch::kAarch64;
#else
inline constexpr Arch kHostArch = Arch::kX86_64;
#endif
const char* arch_name(Arch arch);

uint64_t crc64(std::string_view data);

// Header + payload as bytes (pure; the file functions below use it). decode_container refuses a
// file whose architecture is not `expected` ("snapshot taken on aarch64; this kiln-vmm runs
// x86_64 guests").
std::string encode_container(std::string_view payload, Arch arch = kHostArch);
Result<std::string> decode_container(std::string_view file_bytes, Arch expected = kHostArch);

Status write_state_file(const std::string& path, std::string_view payload);

Result<std::string> read_state_file(const std::string& path);

}  // namespace kiln::vmm::snapshot
