// Test images for the chunk tests (chunk_test_image.h).
#include "tests/unit/rootfs/chunks/chunk_test_image.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include "common/unique_fd.h"
#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::rootfs::chunks::testing {

std::string random_bytes(uint64_t seed, size_t n) {
  std::string out(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x >> 32);
  }
  return out;
}

std::string mixed_image() {
  const std::string a = random_bytes(1, kSmallChunk);
  std::string text;
  while (text.size() < kSmallChunk) text += "kiln chunked images are read on demand. ";
  text.resize(kSmallChunk);
  const std::string zero(kSmallChunk, '\0');
  return a + zero + a + text + random_bytes(2, kSmallChunk) + zero + random_bytes(3, 1000);
}

Chunked chunk_bytes(const std::string& content, const ChunkOptions& options) {
  rootfs::testing::TempDir dir;
  const std::string path = dir / "image.ext4";
  rootfs::testing::write_file(path, content);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  Chunked out;
  auto r = chunk_image(fd.get(), options, [&](std::string_view f) {
    out.data.append(f);
    return ok_status();
  });
  if (!r.ok()) {
    ADD_FAILURE() << r.error().message;
    return out;
  }
  out.image = std::move(r).value();
  return out;
}

}  // namespace kiln::rootfs::chunks::testing
