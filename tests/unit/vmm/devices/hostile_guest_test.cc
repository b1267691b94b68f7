// Randomised hostile-guest tests with fixed seeds: random register traffic on the MMIO
// transport and random ring/descriptor contents under every device. Nothing may crash or
// hang; the state machine's invariants must hold throughout.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "tests/unit/vmm/virtio/virtq_builder.h"
#include "vmm/devices/block_device.h"
#include "vmm/devices/rng_device.h"
#include "vmm/devices/vsock_device.h"
#include "vmm/virtio/mmio_transport.h"

namespace kiln::vmm::devices {
namespace {

using virtio::testing::VirtqBuilder;

std::string temp_image(std::string* dir) {
  char tmpl[] = "/tmp/kiln-hostile-XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl), nullptr);
  *dir = tmpl;
  std::string path = *dir + "/disk.img";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  EXPECT_EQ(::ftruncate(fd.get(), 64 * 512), 0);
  return path;
}

TEST(HostileGuest, RandomRegisterTrafficKeepsInvariants) {
  std::string dir;
  std::string path = temp_image(&dir);
  GuestMemory mem = virtio::testing::make_memory(0x100000);
  auto blk = BlockDevice::open({path, false, "x", {}, {}});
  ASSERT_TRUE(blk.ok());
  virtio::VirtioMmioTransport t(mem, *blk);
  std::mt19937_64 rng(1234);
  // Offsets the driver would use, plus junk.
  const uint64_t offsets[] = {0x000, 0x004, 0x010, 0x014, 0x020, 0x024, 0x030, 0x034, 0x038, 0x044,
                              0x050, 0x060, 0x064, 0x070, 0x080, 0x084, 0x090, 0x094, 0x0a0, 0x0a4,
                              0x0fc, 0x100, 0x104, 0x0ff, 0x1000, 0x002};
  int activated_steps = 0;
  int features_ok_steps = 0;
  for (int i = 0; i < 200000; ++i) {
    uint64_t off = offsets[rng() % std::size(offsets)];
    uint32_t v = static_cast<uint32_t>(rng());
    if (rng() % 8 != 0) {
      // Most writes look like a driver's, so the walk gets deep into the handshake.
      const uint64_t offered = (*blk)->device_features();
      switch (off) {
        case virtio::mmio::kStatus:
          v = (rng() % 16 == 0) ? 0 : t.status() | (1u << (rng() % 8));
          break;
        case virtio::mmio::kDriverFeatures:
          v = static_cast<uint32_t>(rng() % 2 ? offered : offered >> 32) |
              static_cast<uint32_t>(rng() % 8 == 0 ? rng() : 0);
          break;
        case virtio::mmio::kDriverFeaturesSel:
        case virtio::mmio::kDeviceFeaturesSel:
        case virtio::mmio::kQueueSel:
          v = static_cast<uint32_t>(rng() % 3);
          break;
        case virtio::mmio::kQueueNum: v = 1u << (rng() % 9); break;
        case virtio::mmio::kQueueDescLow: v = 0x10000; break;
        case virtio::mmio::kQueueDriverLow: v = 0x11000; break;
        case virtio::mmio::kQueueDeviceLow: v = 0x12000; break;
        case virtio::mmio::kQueueDescHigh:
        case virtio::mmio::kQueueDriverHigh:
        case virtio::mmio::kQueueDeviceHigh: v = 0; break;
        case virtio::mmio::kQueueReady: v = 1; break;
        default: break;
      }
    }
    size_t width = (rng() % 8 == 0) ? (1 + rng() % 8) : 4;
    uint8_t buf[8] = {};
    std::memcpy(buf, &v, 4);
    if (rng() % 2) {
      t.mmio_write(off, std::span<const uint8_t>(buf, width));
    } else {
      t.mmio_read(off, std::span<uint8_t>(buf, width));
    }
    uint32_t s = t.status();
    // DRIVER_OK only ever follows FEATURES_OK, which follows DRIVER and ACKNOWLEDGE.
    ASSERT_TRUE(!(s & virtio::kStatusDriverOk) || (s & virtio::kStatusFeaturesOk)) << i;
    ASSERT_TRUE(!(s & virtio::kStatusFeaturesOk) || (s & virtio::kStatusDriver)) << i;
    ASSERT_TRUE(!(s & virtio::kStatusDriver) || (s & virtio::kStatusAcknowledge)) << i;
    ASSERT_TRUE(!t.activated() || (t.acked_features() & virtio::feature_bit(virtio::kFeatureVersion1)));
    activated_steps += t.activated();
    features_ok_steps += (s & virtio::kStatusFeaturesOk) != 0;
  }
  // The walk does get through the handshake.
  EXPECT_GT(features_ok_steps, 0);
  EXPECT_GT(activated_steps, 0);
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

// Fills the queue's rings and descriptor table (and some buffers) with random bytes, with a
// bias towards in-range values so walks get deep, then lets the device serve it.
void scramble(const GuestMemory& mem, const VirtqBuilder& q, std::mt19937_64& rng) {
  for (uint16_t i = 0; i < q.size(); ++i) {
    virtio::VirtqDesc d;
    d.addr = (rng() % 4 == 0) ? rng() : 0x40000 + rng() % 0x40000;
    d.len = (rng() % 4 == 0) ? static_cast<uint32_t>(rng()) : static_cast<uint32_t>(rng() % 0x2000);
    d.flags = static_cast<uint16_t>(rng() % 8);
    d.next = static_cast<uint16_t>((rng() % 4 == 0) ? rng() : rng() % q.size());
    ASSERT_TRUE(mem.write_obj(GuestAddress(q.desc().value() + 16 * uint64_t{i}), d).ok());
  }
  for (uint16_t i = 0; i < q.size(); ++i) {
    uint16_t head = static_cast<uint16_t>((rng() % 8 == 0) ? rng() : rng() % q.size());
    ASSERT_TRUE(mem.write_obj(GuestAddress(q.avail().value() + 4 + 2 * uint64_t{i}), head).ok());
  }
  // Indirect tables and vsock/blk headers live in the buffer area: random too.
  std::vector<uint8_t> junk(0x4000);
  for (auto& b : junk) b = static_cast<uint8_t>(rng());
  ASSERT_TRUE(mem.write(GuestAddress(0x40000 + (rng() % 0x3c000)), junk).ok());
}

template <typename Device>
void hammer(Device& dev, const GuestMemory& mem, std::vector<VirtqBuilder>& qs, uint64_t seed) {
  std::mt19937_64 rng(seed);
  virtio::Interrupt irq;
  for (int round = 0; round < 300; ++round) {
    std::vector<virtio::Queue> queues;
    for (auto& q : qs) {
      virtio::Queue vq = q.queue(256);
      vq.indirect_allowed = rng() % 2;
      queues.push_back(vq);
    }
    dev.reset();
    ASSERT_TRUE(dev.activate(mem, std::move(queues), 0, irq).ok());
    for (auto& q : qs) {
      scramble(mem, q, rng);
      // Mostly sane avail indices, sometimes absurd ones.
      q.set_avail_idx(static_cast<uint16_t>((rng() % 4 == 0) ? rng() : rng() % (q.size() + 1)));
    }
    for (uint16_t i = 0; i < qs.size(); ++i) (void)dev.process_queue(i);
  }
  // The rounds did exercise the device: requests were served and malformed ones counted.
  EXPECT_GT(dev.counters().requests, 0u);
  EXPECT_GT(dev.counters().errors, 0u);
}

TEST(HostileGuest, RandomRingsUnderBlockDevice) {
  std::string dir;
  std::string path = temp_image(&dir);
  GuestMemory mem = virtio::testing::make_memory(0x100000);
  auto blk = BlockDevice::open({path, false, "x", {}, {}});
  ASSERT_TRUE(blk.ok());
  std::vector<VirtqBuilder> qs{VirtqBuilder(mem, 0x1000, 64)};
  hammer(**blk, mem, qs, 7);
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

TEST(HostileGuest, RandomRingsUnderRngDevice) {
  GuestMemory mem = virtio::testing::make_memory(0x100000);
  RngDevice rng_dev;
  std::vector<VirtqBuilder> qs{VirtqBuilder(mem, 0x1000, 64)};
  hammer(rng_dev, mem, qs, 8);
}

TEST(HostileGuest, RandomRingsUnderVsockDevice) {
  char tmpl[] = "/tmp/kiln-hostile-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  VsockDeviceConfig cfg;
  cfg.uds_path = dir + "/v.sock";
  auto dev = VsockDevice::create(cfg, **loop);
  ASSERT_TRUE(dev.ok());
  GuestMemory mem = virtio::testing::make_memory(0x100000);
  std::vector<VirtqBuilder> qs{VirtqBuilder(mem, 0x1000, 64), VirtqBuilder(mem, 0x3000, 64),
                               VirtqBuilder(mem, 0x5000, 64)};
  hammer(**dev, mem, qs, 9);
  dev->reset();
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace kiln::vmm::devices
