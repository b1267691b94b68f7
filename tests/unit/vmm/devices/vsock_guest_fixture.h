// Test fixture: the guest's side of a virtio-vsock device (rx/tx/event queues in fake guest
// RAM, sending and receiving packets as a driver would). Shared by the vsock device tests with
// Unix sockets and with a fake backend; a derived fixture creates dev_.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/unit/vmm/virtio/virtq_builder.h"
#include "vmm/devices/vsock_device.h"

namespace kiln::vmm::devices::testing {

using virtio::testing::VirtqBuilder;

inline constexpr uint64_t kCid = 3;
inline constexpr uint64_t kRxBufs = 0x40000;   // rx buffers, 0x2000 apart
inline constexpr uint64_t kTxBufs = 0x80000;   // tx header + payload area
inline constexpr uint32_t kRxBufSize = 4096;

struct Packet {
  VsockHeader hdr;
  std::string payload;
};

class VsockGuestFixture : public ::testing::Test {
 protected:
  void activate(int rx_buffers = 8) {
    std::vector<virtio::Queue> qs{rx_.queue(256), tx_.queue(256), ev_.queue(256)};
    ASSERT_TRUE(dev_->activate(mem_, std::move(qs), 0, irq_).ok());
    add_rx_buffers(rx_buffers);
  }
  void add_rx_buffers(int n, uint32_t size = kRxBufSize) {
    for (int i = 0; i < n; ++i) {
      uint64_t addr = kRxBufs + 0x2000 * static_cast<uint64_t>(rx_slot_++ % 16);
      rx_.add_chain({{addr, size, true}});
    }
    ASSERT_TRUE(dev_->process_queue(VsockDevice::kRxQueue).ok());
  }

  // Guest -> device: header and payload in two descriptors (as Linux 6.1 does).
  void guest_send(VsockHeader h, const std::string& payload = "") {
    if (h.len == 0) h.len = static_cast<uint32_t>(payload.size());
    auto hb = encode_vsock_header(h);
    uint64_t at = kTxBufs + 0x20000 * static_cast<uint64_t>(tx_slot_++ % 2);
    virtio::testing::write_bytes(mem_, at, std::vector<uint8_t>(hb.begin(), hb.end()));
    if (payload.empty()) {
      tx_.add_chain({{at, kVsockHeaderSize, false}});
    } else {
      virtio::testing::write_bytes(mem_, at + 0x100, std::vector<uint8_t>(payload.begin(), payload.end()));
      tx_.add_chain({{at, kVsockHeaderSize, false}, {at + 0x100, static_cast<uint32_t>(payload.size()), false}});
    }
    ASSERT_TRUE(dev_->process_queue(VsockDevice::kTxQueue).ok());
  }
  VsockHeader guest_hdr(VsockOp op, uint32_t src_port, uint32_t dst_port) {
    VsockHeader h;
    h.src_cid = kCid;
    h.dst_cid = kVsockHostCid;
    h.src_port = src_port;
    h.dst_port = dst_port;
    h.type = kVsockTypeStream;
    h.op = static_cast<uint16_t>(op);
    h.buf_alloc = 64 * 1024;
    h.fwd_cnt = guest_fwd_cnt_;
    return h;
  }

  // Packets the device put in the rx queue since the last call.
  std::vector<Packet> guest_recv() {
    std::vector<Packet> out;
    uint16_t used = rx_.used_idx();
    while (rx_seen_ != used) {
      auto [id, len] = rx_.used_elem(rx_seen_);
      ++rx_seen_;
      if (len < kVsockHeaderSize) {
        out.push_back(Packet{VsockHeader{}, "<short>"});
        continue;
      }
      // Each chain is one descriptor; find its address from the descriptor table.
      uint64_t addr = *mem_.read_obj<uint64_t>(GuestAddress(rx_.desc().value() + 16 * id));
      auto bytes = virtio::testing::read_bytes(mem_, addr, len);
      Packet p{parse_vsock_header(bytes).value(), std::string(bytes.begin() + kVsockHeaderSize, bytes.end())};
      EXPECT_EQ(p.hdr.len, p.payload.size());
      if (p.hdr.vsock_op() == VsockOp::kRw) guest_fwd_cnt_ += p.hdr.len;
      out.push_back(std::move(p));
      add_rx_buffers_no_kick(1);
    }
    if (!out.empty()) {
      EXPECT_TRUE(dev_->process_queue(VsockDevice::kRxQueue).ok());
    }
    return out;
  }
  void add_rx_buffers_no_kick(int n) {
    for (int i = 0; i < n; ++i) {
      uint64_t addr = kRxBufs + 0x2000 * static_cast<uint64_t>(rx_slot_++ % 16);
      rx_.add_chain({{addr, kRxBufSize, true}});
    }
  }


  std::shared_ptr<VsockDevice> dev_;
  GuestMemory mem_ = virtio::testing::make_memory(0x200000);
  VirtqBuilder rx_{mem_, 0x1000, 256};
  VirtqBuilder tx_{mem_, 0x10000, 256};
  VirtqBuilder ev_{mem_, 0x20000, 256};
  int irqs_ = 0;
  virtio::Interrupt irq_{[this] { ++irqs_; }};
  uint16_t rx_seen_ = 0;
  int rx_slot_ = 0;
  int tx_slot_ = 0;
  uint32_t guest_fwd_cnt_ = 0;
};

}  // namespace kiln::vmm::devices::testing
