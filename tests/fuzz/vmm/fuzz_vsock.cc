// Fuzz target: vsock packet parsing (vmm/devices/vsock_packet.h), the hybrid-vsock CONNECT line
// (common/protocol/hybrid_vsock.h) and the connection state machine (vsock_connection.h)
// driven by a fuzz-chosen sequence of guest and host events.
// Input: 44 header bytes (parse/encode round trip), a length-prefixed CONNECT line, a setup
// block, then ops (one selector byte each, operands following).
#include <cstdint>
#include <optional>
#include <vector>

#include "common/protocol/hybrid_vsock.h"
#include "tests/fuzz/support/fuzz_input.h"
#include "tests/fuzz/support/quiet_logs.h"
#include "vmm/devices/vsock_connection.h"
#include "vmm/devices/vsock_packet.h"

namespace kiln::fuzz {
namespace {

using vmm::devices::VsockConnection;
using vmm::devices::VsockHeader;
using vmm::devices::VsockOp;

constexpr uint64_t kGuestCid = 3;

void parsers(FuzzInput& in) {
  namespace dev = vmm::devices;
  auto raw = in.bytes(dev::kVsockHeaderSize);
  auto h = dev::parse_vsock_header(raw);
  KILN_FUZZ_CHECK(h.ok() == (raw.size() == dev::kVsockHeaderSize));
  if (h.ok()) {
    auto back = dev::encode_vsock_header(*h);
    KILN_FUZZ_CHECK(std::equal(back.begin(), back.end(), raw.begin()));
    auto verdict = dev::classify_guest_packet(*h, kGuestCid, in.remaining());
    if (verdict == dev::GuestPacketVerdict::kAccept) {
      KILN_FUZZ_CHECK(h->len <= dev::kVsockMaxPayload && h->len <= in.remaining());
    }
    VsockHeader rst = dev::make_rst_reply(*h);
    KILN_FUZZ_CHECK(rst.src_port == h->dst_port && rst.dst_port == h->src_port);
  }
  std::string_view line = in.text(in.u8());
  auto port = protocol::parse_hybrid_connect(line);
  if (port.ok()) {
    // The VMM's answer parses back on the host side, and the host's request on ours.
    auto reply = protocol::parse_hybrid_reply(protocol::hybrid_connect_reply(*port));
    KILN_FUZZ_CHECK(reply.ok() && reply->complete && reply->host_port == *port);
    auto again = protocol::parse_hybrid_connect(protocol::hybrid_connect_request(*port));
    KILN_FUZZ_CHECK(again.ok() && *again == *port);
  }
}

// A guest packet addressed to `c` (ports/CIDs as the device's routing guarantees), with
// the rest of the header from the input.
VsockHeader guest_header(FuzzInput& in, const VsockConnection& c) {
  VsockHeader h;
  h.src_cid = kGuestCid;
  h.dst_cid = vmm::devices::kVsockHostCid;
  h.src_port = c.peer_port();
  h.dst_port = c.local_port();
  h.type = vmm::devices::kVsockTypeStream;
  h.op = static_cast<uint16_t>(in.u8() % 9);
  h.len = in.u16() % 600;
  h.flags = in.u8() % 5;
  h.buf_alloc = in.u32();
  h.fwd_cnt = in.u32();
  return h;
}

void run_connection(FuzzInput& in) {
  namespace dev = vmm::devices;
  VsockConnection::Options opts;
  opts.buf_alloc = 1 + in.u16() % 4096;
  opts.host_buffer = 1 + in.u16() % 4096;
  uint8_t mode = in.u8();
  uint32_t local = in.u32(), peer = in.u32();
  std::optional<VsockConnection> conn;
  if (mode & 1) {
    conn = VsockConnection::host_initiated(kGuestCid, local, peer, opts);
  } else {
    VsockHeader req;
    req.src_cid = kGuestCid;
    req.dst_cid = dev::kVsockHostCid;
    req.src_port = peer;
    req.dst_port = local;
    req.type = dev::kVsockTypeStream;
    req.op = static_cast<uint16_t>(VsockOp::kRequest);
    req.buf_alloc = in.u32();
    req.fwd_cnt = in.u32();
    conn = VsockConnection::guest_initiated(kGuestCid, req, opts);
  }
  VsockConnection& c = *conn;
  std::vector<uint8_t> payload;
  for (int steps = 0; steps < 4096 && !in.empty() && !c.closed(); ++steps) {
    switch (in.u8() % 8) {
      case 0: {  // guest tx packet
        VsockHeader h = guest_header(in, c);
        auto body = in.bytes(h.len);
        if (dev::classify_guest_packet(h, kGuestCid, body.size()) ==
            dev::GuestPacketVerdict::kAccept) {
          c.on_guest_packet(h, body.first(h.len));
        }
        break;
      }
      case 1: {  // rx buffer available
        size_t max = 1 + in.u16() % 2048;
        bool expected = c.has_guest_packet();
        auto h = c.next_guest_packet(max, payload);
        KILN_FUZZ_CHECK(h.has_value() == expected);
        if (h) {
          KILN_FUZZ_CHECK(h->src_port == c.local_port() && h->dst_port == c.peer_port());
          KILN_FUZZ_CHECK(h->dst_cid == kGuestCid && h->src_cid == dev::kVsockHostCid);
          if (h->vsock_op() == VsockOp::kRw) {
            KILN_FUZZ_CHECK(payload.size() <= max && h->len == payload.size() && h->len > 0);
          } else {
            KILN_FUZZ_CHECK(h->len == 0);
          }
        }
        break;
      }
      case 2: {  // host socket readable
        size_t space = c.host_read_space();
        size_t n = std::min<size_t>(in.u16(), space);
        std::vector<uint8_t> bytes(n, 0x5a);
        c.on_host_data(bytes);
        break;
      }
      case 3:
        c.on_host_eof();
        break;
      case 4:
        if (in.u8() < 32) c.on_host_error();
        break;
      case 5: {  // host socket writable
        auto pending = c.host_write_pending();
        size_t n = std::min<size_t>(in.u16(), pending.size());
        c.on_host_written(n);
        break;
      }
      case 6:
        (void)c.take_host_shutdown_write();
        break;
      case 7:
        (void)c.peer_credit();
        break;
    }
  }
}

}  // namespace
}  // namespace kiln::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::fuzz;
  quiet_vmm_logs();
  FuzzInput in(data, size);
  parsers(in);
  run_connection(in);
  return 0;
}
