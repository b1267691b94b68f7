// Snapshot container format and the state file's reading and writing.
#include "vmm/snapshot/snapshot_file.h"

#include <array>
#include <cstring>

#include "common/io.h"

namespace kiln::vmm::snapshot {
namespace {

constexpr size_t kHeaderSize = 8 + 4 + 4 + 8 + 8;

// CRC-64/XZ (ECMA-182 polynomial, reflected).
std::array<uint64_t, 256> make_table() {
  std::array<uint64_t, 256> t{};
  for (uint64_t i = 0; i < 256; ++i) {
    uint64_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0xc96c5795d7870f42ull : c >> 1;
    t[i] = c;
  }
  return t;
}

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
T get(std::string_view in, size_t off) {
  T v;
  std::memcpy(&v, in.data() + off, sizeof v);
  return v;
}

}  // namespace

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::kX86_64: return "x86_64";
    case Arch::kAarch64: return "aarch64";
  }
  return "an unknown architecture";
}

uint64_t crc64(std::string_view data) {
  static const std::array<uint64_t, 256> table = make_table();
  uint64_t c = ~0ull;
  for (unsigned char b : data) c = table[(c ^ b) & 0xff] ^ (c >> 8);
  return ~c;
}

std::string encode_container(std::string_view payload, Arch arch) {
  std::string out(kMagic, sizeof kMagic);
  put<uint32_t>(out, kFormatVersion);
  put<uint32_t>(out, static_cast<uint32_t>(arch));
  put<uint64_t>(out, payload.size());
  put<uint64_t>(out, crc64(payload));
  out.append(payload);
  return out;
}

Result<std::string> decode_container(std::string_view in, Arch expected) {
  if (in.size() < kHeaderSize) return make_error("snapshot file is truncated (no complete header)");
  if (std::memcmp(in.data(), kMagic, sizeof kMagic) != 0) return make_error("not a kiln snapshot file (bad magic)");
  uint32_t version = get<uint32_t>(in, 8);
  if (version != kFormatVersion) {
    return make_error("snapshot format version " + std::to_string(version) + " is not supported (this kiln-vmm reads version " +
                      std::to_string(kFormatVersion) + ")");
  }
  const uint32_t arch = get<uint32_t>(in, 12);
  if (arch != static_cast<uint32_t>(expected)) {
    const bool known = arch == static_cast<uint32_t>(Arch::kX86_64) || arch == static_cast<uint32_t>(Arch::kAarch64);
    return make_error(std::string("snapshot taken on ") +
                      (known ? arch_name(static_cast<Arch>(arch)) : "an unknown architecture (" + std::to_string(arch) + ")") +
                      "; this kiln-vmm runs " + arch_name(expected) + " guests");
  }
  uint64_t len = get<uint64_t>(in, 16);
  if (len > kMaxPayloadBytes) return make_error("snapshot payload length " + std::to_string(len) + " is implausible");
  if (in.size() - kHeaderSize != len) {
    return make_error("snapshot file is " + std::to_string(in.size()) + " bytes; its header announces " +
                      std::to_string(len + kHeaderSize) + " (truncated or padded)");
  }
  std::string_view payload = in.substr(kHeaderSize);
  if (crc64(payload) != get<uint64_t>(in, 24)) return make_error("snapshot checksum mismatch (the file is corrupt)");
  return std::string(payload);
}

Status write_state_file(const std::string& path, std::string_view payload) {
  std::string bytes = encode_container(payload);
  return io::write_file_atomic(path, bytes);
}

Result<std::string> read_state_file(const std::string& path) {
  auto bytes = io::read_file(path, kMaxPayloadBytes + kHeaderSize);
  if (!bytes.ok()) return bytes.error().wrap("snapshot");
  auto payload = decode_container(*bytes);
  if (!payload.ok()) return payload.error().wrap("snapshot " + path);
  return payload;
}

}  // namespace kiln::vmm::snapshot
