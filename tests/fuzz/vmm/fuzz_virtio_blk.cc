// Fuzz target: virtio-blk request parsing (vmm/devices/block_request.h) and request handling
// by BlockDevice over a memfd-backed disk, with fuzz bytes as guest RAM holding the queue.
// Input: flags byte, 24 bytes for check_block_range, then the guest RAM image; the queue sits
// at the seed layout (desc 0x0, avail 0x400, used 0x800, size 16).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>

#include "tests/fuzz/support/fuzz_guest_memory.h"
#include "tests/fuzz/support/fuzz_input.h"
#include "tests/fuzz/support/quiet_logs.h"
#include "vmm/devices/block_device.h"
#include "vmm/devices/block_request.h"
#include "vmm/virtio/interrupt.h"

namespace kiln::fuzz {
namespace {

constexpr uint64_t kDiskSectors = 64;

// One memfd disk shared by a read-only and a read-write device; re-zeroed per input.
struct Disk {
  Disk() {
    fd = UniqueFd(::memfd_create("kiln-fuzz-blk", MFD_CLOEXEC));
    if (!fd) fuzz_fail(__FILE__, __LINE__, "memfd_create");
    rezero();
    std::string path = "/proc/self/fd/" + std::to_string(fd.get());
    auto r = vmm::devices::BlockDevice::open({path, true, "fuzz-ro", {}, {}});
    auto w = vmm::devices::BlockDevice::open({path, false, "fuzz-rw-drive-id-longer-than-20", {}, {}});
    if (!r.ok() || !w.ok()) fuzz_fail(__FILE__, __LINE__, "BlockDevice::open");
    ro = *r;
    rw = *w;
  }
  void rezero() {
    if (::ftruncate(fd.get(), 0) != 0 || ::ftruncate(fd.get(), kDiskSectors * 512) != 0) {
      fuzz_fail(__FILE__, __LINE__, "ftruncate");
    }
  }
  UniqueFd fd;
  std::shared_ptr<vmm::devices::BlockDevice> ro, rw;
};

}  // namespace
}  // namespace kiln::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::fuzz;
  namespace dev = kiln::vmm::devices;
  quiet_vmm_logs();
  static Disk disk;
  FuzzInput in(data, size);
  uint8_t flags = in.u8();
  uint64_t sector = in.u64(), len = in.u64(), capacity = in.u64();

  // Pure helpers: the range check must agree with exact arithmetic.
  bool in_range = dev::check_block_range(sector, len, capacity).ok();
  unsigned __int128 end = static_cast<unsigned __int128>(sector) + len / dev::kSectorSize;
  bool expect = len % dev::kSectorSize == 0 && end <= capacity;
  KILN_FUZZ_CHECK(in_range == expect);

  std::span<const uint8_t> image = in.rest();
  auto hdr = dev::parse_block_request_header(image);
  KILN_FUZZ_CHECK(hdr.ok() == (image.size() >= dev::kBlkHeaderSize));

  FuzzGuestMemory& fm = FuzzGuestMemory::instance();
  fm.load(image);
  const kiln::vmm::GuestMemory& mem = fm.mem();
  disk.rezero();
  auto& device = (flags & 1) ? disk.rw : disk.ro;
  KILN_FUZZ_CHECK(device->capacity_sectors() == kDiskSectors);

  kiln::vmm::virtio::Queue q(dev::BlockDevice::kQueueSize);
  q.size = kSeedQueueSize;
  q.desc_table = kiln::vmm::GuestAddress(kSeedDescTable);
  q.avail_ring = kiln::vmm::GuestAddress(kSeedAvailRing);
  q.used_ring = kiln::vmm::GuestAddress(kSeedUsedRing);
  q.indirect_allowed = (flags & 2) != 0;
  q.ready = true;
  KILN_FUZZ_CHECK(q.validate(mem).ok());
  uint64_t features = device->device_features();
  uint8_t cfg[24];
  device->read_config(0, cfg);

  kiln::vmm::virtio::Interrupt irq;
  std::vector<kiln::vmm::virtio::Queue> queues{q};
  if (device->activate(mem, std::move(queues), features, irq).ok()) {
    (void)device->process_queue(0);
    (void)device->process_queue(1);  // no such queue: ignored
    (void)device->process_queue(0);  // nothing new (or a corrupt ring)
  }
  device->reset();
  return 0;
}
