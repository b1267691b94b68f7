// Numbers from the virtio 1.2 specification shared by the transport, queues and devices.
#pragma once

#include <cstdint>

namespace kiln::vmm::virtio {

// Device status bits (virtio 1.2 §2.1).
inline constexpr uint32_t kStatusAcknowledge = 1;
inline constexpr uint32_t kStatusDriver = 2;
inline constexpr uint32_t kStatusDriverOk = 4;
inline constexpr uint32_t kStatusFeaturesOk = 8;
inline constexpr uint32_t kStatusNeedsReset = 64;
inline constexpr uint32_t kStatusFailed = 128;

// Reserved feature bits (virtio 1.2 §6).
inline constexpr unsigned kFeatureIndirectDesc = 28;  // VIRTIO_F_INDIRECT_DESC
inline constexpr unsigned kFeatureEventIdx = 29;      // VIRTIO_F_EVENT_IDX
inline constexpr unsigned kFeatureVersion1 = 32;      // VIRTIO_F_VERSION_1

constexpr uint64_t feature_bit(unsigned bit) { return uint64_t{1} << bit; }

// Device IDs (virtio 1.2 §5).
inline constexpr uint32_t kDeviceIdNet = 1;
inline constexpr uint32_t kDeviceIdBlock = 2;
inline constexpr uint32_t kDeviceIdRng = 4;
inline constexpr uint32_t kDeviceIdVsock = 19;

// Split virtqueue descriptor flags (virtio 1.2 §2.7.5).
inline constexpr uint16_t kDescFlagNext = 1;
inline constexpr uint16_t kDescFlagWrite = 2;
inline constexpr uint16_t kDescFlagIndirect = 4;
// Avail ring flags (virtio 1.2 §2.7.6).
inline constexpr uint16_t kAvailFlagNoInterrupt = 1;

// Largest queue size a split virtqueue may have (virtio 1.2 §2.7).
inline constexpr uint16_t kMaxQueueSize = 32768;

// InterruptStatus bits (virtio 1.2 §4.2.2).
inline constexpr uint32_t kInterruptUsedBuffer = 1;
inline constexpr uint32_t kInterruptConfigChange = 2;

}  // namespace kiln::vmm::virtio
