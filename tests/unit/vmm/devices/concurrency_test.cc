// Threads as in kiln-vmm: a "vCPU" thread doing MMIO register traffic on the transport, the
// event-loop thread serving the vsock device's sockets, and host clients connecting. The
// test passes if nothing deadlocks or crashes and the device stays consistent.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "tests/unit/vmm/virtio/virtq_builder.h"
#include "vmm/devices/vsock_device.h"
#include "vmm/virtio/mmio_transport.h"

namespace kiln::vmm::devices {
namespace {

using virtio::testing::VirtqBuilder;

TEST(Concurrency, VcpuMmioEventLoopAndHostClients) {
  char tmpl[] = "/tmp/kiln-conc-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto loop_r = EventLoop::create();
  ASSERT_TRUE(loop_r.ok());
  EventLoop& loop = **loop_r;
  VsockDeviceConfig cfg;
  cfg.uds_path = dir + "/v.sock";
  cfg.connect_timeout = std::chrono::milliseconds(1);
  auto dev = VsockDevice::create(cfg, loop);
  ASSERT_TRUE(dev.ok());
  GuestMemory mem = virtio::testing::make_memory(0x200000);
  std::atomic<uint64_t> irqs{0};
  virtio::VirtioMmioTransport t(mem, *dev, [&] { irqs.fetch_add(1); });
  VirtqBuilder rx(mem, 0x1000, 256), tx(mem, 0x10000, 256), ev(mem, 0x20000, 256);

  auto wr = [&](uint64_t off, uint32_t v) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    t.mmio_write(off, b);
  };
  auto rd = [&](uint64_t off) {
    uint8_t b[4];
    t.mmio_read(off, b);
    uint32_t v;
    std::memcpy(&v, b, 4);
    return v;
  };
  // Driver handshake.
  wr(virtio::mmio::kStatus, 1);
  wr(virtio::mmio::kStatus, 3);
  wr(virtio::mmio::kDriverFeaturesSel, 1);
  wr(virtio::mmio::kDriverFeatures, 1);
  wr(virtio::mmio::kStatus, 11);
  const VirtqBuilder* qs[] = {&rx, &tx, &ev};
  for (uint32_t i = 0; i < 3; ++i) {
    wr(virtio::mmio::kQueueSel, i);
    wr(virtio::mmio::kQueueNum, 256);
    wr(virtio::mmio::kQueueDescLow, static_cast<uint32_t>(qs[i]->desc().value()));
    wr(virtio::mmio::kQueueDriverLow, static_cast<uint32_t>(qs[i]->avail().value()));
    wr(virtio::mmio::kQueueDeviceLow, static_cast<uint32_t>(qs[i]->used().value()));
    wr(virtio::mmio::kQueueReady, 1);
  }
  wr(virtio::mmio::kStatus, 15);
  ASSERT_TRUE(t.activated());

  std::thread loop_thread([&] { ASSERT_TRUE(loop.run().ok()); });
  std::atomic<bool> done{false};
  std::thread vcpu([&] {
    uint64_t n = 0;
    while (!done.load()) {
      uint32_t st = rd(virtio::mmio::kInterruptStatus);
      if (st) wr(virtio::mmio::kInterruptAck, st);
      // Keep the rx ring topped up (the guest's job) and notify, as a driver would.
      if (rx.used_idx() + 200 > static_cast<uint16_t>(n)) {
        rx.add_chain({{0x40000 + 0x1000 * (n % 64), 4096, true}});
        ++n;
        wr(virtio::mmio::kQueueNotify, 0);
      }
      wr(virtio::mmio::kQueueNotify, 2);
      (void)rd(virtio::mmio::kStatus);
    }
  });

  for (int i = 0; i < 200; ++i) {
    UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, cfg.uds_path.c_str(), sizeof(addr.sun_path) - 1);
    if (::connect(c.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) continue;
    std::string line = "CONNECT " + std::to_string(1000 + i) + "\n";
    (void)::send(c.get(), line.data(), line.size(), MSG_NOSIGNAL);
    if (i % 3 == 0) {
      // Wait for the device's verdict (EOF after the connect timeout) on some of them.
      char b;
      (void)::recv(c.get(), &b, 1, 0);
    }
  }
  done.store(true);
  vcpu.join();
  loop.stop();
  loop_thread.join();

  EXPECT_FALSE(t.status() & virtio::kStatusNeedsReset);
  EXPECT_GT(irqs.load(), 0u);
  EXPECT_EQ(dev->get()->counters().errors, 0u);
  dev->reset();  // after the loop stopped, as the device's contract requires
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace kiln::vmm::devices
