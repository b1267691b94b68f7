// Per-device counters: updated lock-free on the data path, read as a plain struct.
#pragma once

#include <atomic>
#include <cstdint>

namespace kiln::vmm::virtio {

struct DeviceCounters {
  uint64_t requests = 0;          // chains/packets handled
  uint64_t bytes_from_guest = 0;  // payload the device consumed from guest buffers
  uint64_t bytes_to_guest = 0;    // payload the device wrote into guest buffers
  uint64_t errors = 0;            // malformed requests, I/O errors, refused register writes
};

class AtomicDeviceCounters {
 public:
  void add_request() { requests_.fetch_add(1, std::memory_order_relaxed); }
  void add_from_guest(uint64_t n) { from_.fetch_add(n, std::memory_order_relaxed); }
  void add_to_guest(uint64_t n) { to_.fetch_add(n, std::memory_order_relaxed); }
  void add_error() { errors_.fetch_add(1, std::memory_order_relaxed); }

  DeviceCounters snapshot() const {
    return DeviceCounters{requests_.load(std::memory_order_relaxed),
                          from_.load(std::memory_order_relaxed),
                          to_.load(std::memory_order_relaxed),
                          errors_.load(std::memory_order_relaxed)};
  }

 private:
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> from_{0};
  std::atomic<uint64_t> to_{0};
  std::atomic<uint64_t> errors_{0};
};

}  // namespace kiln::vmm::virtio
