// RngDevice implementation.
#include "vmm/devices/rng_device.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vmm/logging/logger.h"
#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::devices {

uint32_t RngDevice::device_id() const { return virtio::kDeviceIdRng; }

uint64_t RngDevice::device_features() const {
  return virtio::feature_bit(virtio::kFeatureVersion1) |
         virtio::feature_bit(virtio::kFeatureIndirectDesc);
}

void RngDevice::read_config(uint64_t, std::span<uint8_t> data) const {
  std::memset(data.data(), 0, data.size());  // virtio-rng has no configuration (§5.4.4)
}

Status RngDevice::on_queue_notify(uint16_t) {
  return serve(0, [this](const virtio::DescriptorChain& c) { return handle(c); });
}

uint32_t RngDevice::handle(const virtio::DescriptorChain& chain) {
  // virtio 1.2 §5.4.6: requests are device-writable only.
  if (!chain.readable.empty()) {
    counters_.add_error();
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-rng: request with device-readable buffers");
    return 0;
  }
  uint64_t left = std::min(chain.writable_len, kMaxBytesPerRequest);
  uint64_t written = 0;
  for (auto buf : chain.writable) {
    if (left == 0) break;
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), left));
    size_t done = 0;
    while (done < want) {
      ssize_t n = ::getrandom(buf.data() + done, want - done, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        counters_.add_error();
        KILN_LOG_GUEST(logging::LogLevel::kError, "virtio-rng: getrandom: %s", std::strerror(errno));
        counters_.add_to_guest(written + done);
        return static_cast<uint32_t>(written + done);
      }
      done += static_cast<size_t>(n);
    }
    written += done;
    left -= done;
  }
  counters_.add_to_guest(written);
  return static_cast<uint32_t>(written);
}

}  // namespace kiln::vmm::devices
