// Fuzz target: virtio-net frame checks (vmm/devices/net_frame.h) and NetDevice's transmit and
// receive paths over a datagram socket pair standing in for the TAP, with fuzz bytes as guest
// RAM holding the queue (both queues use the seed layout) and as frames from the host.
// Input: u16 feature bits (features_from: offloads, mergeable, indirect, event_idx), 12 header
// bytes + u32 frame length (check_tx_frame), mergeable flag + 4 u16 chain lengths + u32 frame
// length (rx_chains_needed), host frame count (u8 % 4) with a u16-length-prefixed frame each,
// then the guest RAM image.
#include <sys/socket.h>

#include <cstdint>
#include <iterator>
#include <memory>
#include <vector>

#include "common/event_loop/event_loop.h"
#include "tests/fuzz/support/fuzz_guest_memory.h"
#include "tests/fuzz/support/fuzz_input.h"
#include "tests/fuzz/support/quiet_logs.h"
#include "vmm/devices/net_device.h"
#include "vmm/devices/net_frame.h"
#include "vmm/virtio/interrupt.h"
#include "vmm/virtio/virtio_constants.h"

namespace kiln::fuzz {
namespace {

namespace dev = vmm::devices;
using vmm::virtio::feature_bit;

// Fuzz byte -> a subset of the features the device offers (VERSION_1 always).
uint64_t features_from(uint16_t b) {
  static constexpr unsigned kBits[] = {dev::kNetFeatureCsum,      dev::kNetFeatureGuestCsum,
                                       dev::kNetFeatureGuestTso4, dev::kNetFeatureHostTso4,
                                       dev::kNetFeatureHostTso6,  dev::kNetFeatureHostUfo,
                                       dev::kNetFeatureMrgRxbuf,  vmm::virtio::kFeatureIndirectDesc,
                                       vmm::virtio::kFeatureEventIdx};
  uint64_t f = feature_bit(vmm::virtio::kFeatureVersion1);
  for (unsigned i = 0; i < std::size(kBits); ++i) {
    if (b & (1u << i)) f |= feature_bit(kBits[i]);
  }
  return f;
}

void pure_checks(FuzzInput& in, uint64_t features) {
  auto raw = in.bytes(dev::kNetHdrSize);
  auto h = dev::parse_net_hdr(raw);
  KILN_FUZZ_CHECK(h.ok() == (raw.size() == dev::kNetHdrSize));
  uint32_t frame_len = in.u32();
  if (h.ok()) {
    std::array<uint8_t, dev::kNetHdrSize> back{};
    dev::encode_net_hdr(*h, back);
    KILN_FUZZ_CHECK(std::equal(back.begin(), back.end(), raw.begin()));
    auto ok = dev::check_tx_frame(*h, frame_len, features);
    if (ok.ok()) {
      KILN_FUZZ_CHECK(frame_len >= dev::kEthHeaderSize && frame_len <= dev::kMaxNetFrame);
      KILN_FUZZ_CHECK(ok->num_buffers == 0 && (ok->flags & ~dev::kNetHdrFNeedsCsum) == 0);
      if (ok->flags & dev::kNetHdrFNeedsCsum) {
        KILN_FUZZ_CHECK(uint64_t{ok->csum_start} + ok->csum_offset + 2 <= frame_len);
      }
    }
  }
  bool mergeable = in.u8() & 1;
  std::vector<uint64_t> room;
  for (int i = 0; i < 4; ++i) room.push_back(in.u16());
  uint32_t len = in.u32();
  auto n = dev::rx_chains_needed(room, len, mergeable);
  if (n.ok() && n.value() > 0) {
    uint64_t total = 0;
    for (uint32_t i = 0; i < n.value(); ++i) total += room[i];
    KILN_FUZZ_CHECK(n.value() <= room.size() && total >= len);
    KILN_FUZZ_CHECK(mergeable || n.value() == 1);
  }
}

}  // namespace
}  // namespace kiln::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::fuzz;
  quiet_vmm_logs();
  static std::unique_ptr<kiln::EventLoop> loop = std::move(kiln::EventLoop::create().value());
  FuzzInput in(data, size);
  const uint64_t features = features_from(in.u16());
  pure_checks(in, features);

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    fuzz_fail(__FILE__, __LINE__, "socketpair");
  }
  kiln::UniqueFd peer(sv[1]);
  unsigned frames = in.u8() % 4;
  for (unsigned i = 0; i < frames; ++i) {
    auto f = in.bytes(in.u16() % 4096);
    (void)::send(peer.get(), f.data(), f.size(), 0);
  }
  auto made = dev::NetDevice::create({}, std::make_unique<dev::FdNetBackend>(kiln::UniqueFd(sv[0])), *loop);
  KILN_FUZZ_CHECK(made.ok());
  auto& device = *made;

  FuzzGuestMemory& fm = FuzzGuestMemory::instance();
  fm.load(in.rest());
  const kiln::vmm::GuestMemory& mem = fm.mem();
  kiln::vmm::virtio::Queue q(dev::NetDevice::kQueueSize);
  q.size = kSeedQueueSize;
  q.desc_table = kiln::vmm::GuestAddress(kSeedDescTable);
  q.avail_ring = kiln::vmm::GuestAddress(kSeedAvailRing);
  q.used_ring = kiln::vmm::GuestAddress(kSeedUsedRing);
  q.indirect_allowed = (features & feature_bit(kiln::vmm::virtio::kFeatureIndirectDesc)) != 0;
  q.event_idx = (features & feature_bit(kiln::vmm::virtio::kFeatureEventIdx)) != 0;
  q.ready = true;
  KILN_FUZZ_CHECK(q.validate(mem).ok());

  kiln::vmm::virtio::Interrupt irq;
  std::vector<kiln::vmm::virtio::Queue> queues{q, q};
  if (device->activate(mem, std::move(queues), features, irq).ok()) {
    (void)loop->run_once(0);  // offloads set, the backend polled: host frames go to the guest
    (void)device->process_queue(dev::NetDevice::kTxQueue);
    (void)device->process_queue(dev::NetDevice::kRxQueue);
    (void)loop->run_once(0);
  }
  // Whatever reached the host passed the transmit checks.
  std::vector<uint8_t> buf(dev::kMaxNetBuffer + 1);
  for (ssize_t n; (n = ::recv(peer.get(), buf.data(), buf.size(), 0)) >= 0;) {
    KILN_FUZZ_CHECK(static_cast<size_t>(n) >= dev::kNetHdrSize + dev::kEthHeaderSize);
    auto h = dev::parse_net_hdr(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
    KILN_FUZZ_CHECK(h.ok() && dev::check_tx_frame(*h, static_cast<uint64_t>(n) - dev::kNetHdrSize, features).ok());
  }
  device->reset();
  return 0;
}
