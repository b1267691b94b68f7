// A chunk source over a data blob in memory for the lazy disk tests: counts fetches, and can
// fail every fetch or corrupt the byte at one blob offset.
#pragma once

#include <atomic>
#include <string>

#include "rootfs-builder/chunks/chunk_source.h"

namespace kiln::kilnd::lazy::testing {

class MemorySource : public rootfs::chunks::ChunkSource {
 public:
  explicit MemorySource(std::string data) : data_(std::move(data)) {}
  Result<std::string> fetch_frame(const rootfs::chunks::ChunkEntry& e) override {
    fetches++;
    if (fail) return make_error("registry unreachable");
    std::string frame = data_.substr(e.offset, e.length);
    if (flip >= e.offset && flip < e.offset + e.length) frame[flip - e.offset] ^= 1;
    return frame;
  }
  std::string describe() const override { return "memory"; }

  std::string data_;
  uint64_t flip = ~0ull;
  bool fail = false;
  std::atomic<int> fetches{0};
};

}  // namespace kiln::kilnd::lazy::testing
