// Fuzz target: virtio-mmio register accesses (vmm/virtio/mmio_transport.h) in front of a real
// device (virtio-rng, or virtio-blk over a memfd), with fuzz bytes as guest RAM.
// Input: device byte, op count (u16), that many 8-byte ops, then the guest RAM image.
// Op: u8 kind (bits 0-1: 0 read, 1 write, 2 queue notify via ioeventfd, 3 snapshot round
// trip; bits 2-3: width 1/2/4/8), u8 unused, u16 offset (within the 4 KiB window), u32 value.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "tests/fuzz/support/fuzz_guest_memory.h"
#include "tests/fuzz/support/fuzz_input.h"
#include "tests/fuzz/support/quiet_logs.h"
#include "vmm/devices/block_device.h"
#include "vmm/devices/rng_device.h"
#include "vmm/virtio/mmio_transport.h"

namespace kiln::fuzz {
namespace {

namespace mmio = vmm::virtio::mmio;
using vmm::virtio::VirtioDevice;
using vmm::virtio::VirtioMmioTransport;

std::shared_ptr<vmm::devices::BlockDevice> block_device() {
  static std::shared_ptr<vmm::devices::BlockDevice> dev = [] {
    UniqueFd fd(::memfd_create("kiln-fuzz-mmio-blk", MFD_CLOEXEC));
    if (!fd || ::ftruncate(fd.get(), 16 * 512) != 0) fuzz_fail(__FILE__, __LINE__, "memfd");
    auto d = vmm::devices::BlockDevice::open({"/proc/self/fd/" + std::to_string(fd.get()), false, "fuzz", {}, {}});
    if (!d.ok()) fuzz_fail(__FILE__, __LINE__, "BlockDevice::open");
    return *d;  // the device holds its own fd; the memfd stays alive through it
  }();
  return dev;
}

std::shared_ptr<VirtioDevice> make_device(uint8_t which) {
  if (which & 1) {
    auto b = block_device();
    b->reset();
    return b;
  }
  return std::make_shared<vmm::devices::RngDevice>();
}

}  // namespace
}  // namespace kiln::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::fuzz;
  quiet_vmm_logs();
  FuzzInput in(data, size);
  uint8_t which = in.u8();
  size_t nops = in.u16() % 512;
  auto ops = in.bytes(nops * 8);
  FuzzGuestMemory& fm = FuzzGuestMemory::instance();
  fm.load(in.rest());
  const kiln::vmm::GuestMemory& mem = fm.mem();

  auto device = make_device(which);
  auto transport = std::make_unique<VirtioMmioTransport>(mem, device);
  FuzzInput op_in(ops.data(), ops.size());
  while (op_in.remaining() >= 8) {
    uint8_t kind = op_in.u8();
    (void)op_in.u8();
    uint64_t offset = op_in.u16() % mmio::kWindowSize;
    uint32_t value = op_in.u32();
    size_t width = size_t{1} << ((kind >> 2) & 3);
    uint8_t buf[8] = {};
    std::memcpy(buf, &value, 4);
    std::memcpy(buf + 4, &value, 4);
    switch (kind & 3) {
      case 0: {
        transport->mmio_read(offset, std::span<uint8_t>(buf, width));
        if (offset == mmio::kMagicValue && width == 4) {
          uint32_t magic;
          std::memcpy(&magic, buf, 4);
          KILN_FUZZ_CHECK(magic == mmio::kMagic);
        }
        break;
      }
      case 1:
        transport->mmio_write(offset, std::span<const uint8_t>(buf, width));
        break;
      case 2:
        transport->notify_queue(value % 4);
        break;
      case 3: {
        // Snapshot: save, then restore into a fresh transport (a new kiln-vmm process).
        kiln::vmm::virtio::MmioTransportState st = transport->save_state();
        transport.reset();
        device->reset();
        device = make_device(which);
        transport = std::make_unique<VirtioMmioTransport>(mem, device);
        if (!transport->restore_state(st).ok()) {
          transport = std::make_unique<VirtioMmioTransport>(mem, device);
        }
        break;
      }
    }
  }
  transport.reset();
  device->reset();
  return 0;
}
