// VsockDevice implementation: the rx/tx/event queues. Every guest packet is validated
// (vsock_packet.h) before it reaches a connection's state machine.
#include "vmm/devices/vsock_device.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "vmm/devices/vsock_unix_muxer.h"
#include "vmm/logging/logger.h"
#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::devices {

namespace {

Status check_guest_cid(uint64_t cid) {
  // virtio 1.2 §5.10.4: CIDs 0-2 are reserved; the upper 32 bits are reserved as well.
  if (cid < 3 || cid > UINT32_MAX - 1) return make_error("vsock: guest_cid must be in [3, 2^32-2]");
  return ok_status();
}

}  // namespace

Result<std::shared_ptr<VsockDevice>> VsockDevice::create(const VsockDeviceConfig& config, EventLoop& loop) {
  KILN_TRY(check_guest_cid(config.guest_cid));  // before the socket file is created
  KILN_ASSIGN_OR_RETURN(
      auto muxer, VsockUnixMuxer::create({config.uds_path, config.max_connections, config.handshake_timeout}, loop));
  return create(config, loop, std::move(muxer));
}

Result<std::shared_ptr<VsockDevice>> VsockDevice::create(const VsockDeviceConfig& config, EventLoop& loop,
                                                         std::unique_ptr<VsockBackend> backend) {
  KILN_TRY(check_guest_cid(config.guest_cid));
  KILN_ASSIGN_OR_RETURN(auto timer, TickTimer::create(loop, config.connect_timeout));
  std::shared_ptr<VsockDevice> dev(new VsockDevice(config, std::move(timer), std::move(backend)));
  VsockDevice* raw = dev.get();
  // On failure the destructors unregister what was added.
  KILN_TRY(dev->timer_->start([raw] { raw->on_timer(); }));
  KILN_TRY(dev->backend_->start(*dev));
  return dev;
}

VsockDevice::VsockDevice(const VsockDeviceConfig& config, std::unique_ptr<TickTimer> timer,
                         std::unique_ptr<VsockBackend> backend)
    : ActivatedDevice("vsock", {kQueueSize, kQueueSize, kQueueSize}),
      config_(config),
      timer_(std::move(timer)),
      backend_(std::move(backend)),
      table_({config.guest_cid, config.connection, config.max_connections, config.connect_timeout}, *backend_,
             counters_, [this](VsockConnectionTable::Key key, StreamEvents ev) { on_stream_ready(key, ev); },
             [this] { return queue_diagnostics(); }) {}

VsockDevice::~VsockDevice() {
  {
    std::lock_guard lock(mu_);
    table_.drop_all();
  }
  backend_.reset();  // stops host connections (and unlinks the Unix socket) before we go
}

uint32_t VsockDevice::device_id() const { return virtio::kDeviceIdVsock; }

uint64_t VsockDevice::device_features() const {
  return virtio::feature_bit(virtio::kFeatureVersion1) |
         virtio::feature_bit(virtio::kFeatureIndirectDesc);
}

void VsockDevice::read_config(uint64_t offset, std::span<uint8_t> data) const {
  // struct virtio_vsock_config { le64 guest_cid; } (virtio 1.2 §5.10.4)
  std::array<uint8_t, 8> image;
  uint64_t cid = config_.guest_cid;
  std::memcpy(image.data(), &cid, 8);
  virtio::read_config_bytes(image, offset, data);
}

size_t VsockDevice::connection_count() const {
  std::lock_guard lock(mu_);
  return table_.size();
}

// ---------------------------------------------------------------- activation, timer, events

Status VsockDevice::on_activate() {
  broken_ = false;
  // Host clients may have asked for connections before the driver was up.
  return fill_rx();
}

void VsockDevice::on_reset() {
  table_.drop_all();
  reset_hold_since_.reset();
  broken_ = false;
}

void VsockDevice::mark_broken(const Error& e) {
  KILN_LOG_GUEST(logging::LogLevel::kError, "vsock: device broken: %s", e.message.c_str());
  broken_ = true;
  if (active_locked()) interrupt().mark_needs_reset();
}

void VsockDevice::flush_rx() {
  if (!active_locked() || broken_) return;
  auto st = fill_rx();
  if (!st.ok()) mark_broken(st.error());
}

void VsockDevice::on_host_connect(std::unique_ptr<VsockHostStream> stream, uint32_t guest_port) {
  std::lock_guard lock(mu_);
  table_.adopt_host_stream(std::move(stream), guest_port);
  flush_rx();
}

void VsockDevice::on_stream_ready(VsockConnectionTable::Key key, StreamEvents events) {
  std::lock_guard lock(mu_);
  table_.on_stream_event(key, events);
  flush_rx();
}

void VsockDevice::update_timer() {
  timer_->set_armed(table_.has_deadlines() || (reset_hold_since_ && table_.has_rx_packet()));
}

void VsockDevice::on_timer() {
  std::lock_guard lock(mu_);
  timer_->drain();
  table_.expire_deadlines(std::chrono::steady_clock::now());
  flush_rx();
  update_timer();
}

std::string VsockDevice::queue_diagnostics() {
  // The driver's side as the device sees it: pending interrupt bits (set and never acknowledged
  // means the guest takes no interrupts), rx buffers posted, ring positions.
  const bool active = active_locked();
  std::string out = "interrupt status " + std::to_string(active ? interrupt().status() : 0) + ", raised " +
                    std::to_string(active ? interrupt().triggered_count() : 0);
  if (active) {
    const char* names[] = {"rx", "tx", "event"};
    for (uint16_t q = 0; q < queue_count() && q < 3; ++q) {
      auto avail = queue(q).has_available(mem());
      out += std::string(", ") + names[q] + " next avail " + std::to_string(queue(q).next_avail()) + " used " +
             std::to_string(queue(q).next_used()) + (avail.ok() && *avail ? " (more posted)" : "");
    }
  }
  if (reset_hold_since_) out += ", rx held for a transport reset";
  if (diagnostics_) out += ", " + diagnostics_();
  return out;
}

// ---------------------------------------------------------------- queues

uint32_t VsockDevice::handle_tx_chain(const virtio::DescriptorChain& chain) {
  // tx buffers are device-readable only (virtio 1.2 §5.10.6.2).
  if (!chain.writable.empty()) {
    counters_.add_error();
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: tx packet with device-writable buffers");
    return 0;
  }
  virtio::ChainReader reader(chain.readable);
  std::array<uint8_t, kVsockHeaderSize> hb;
  if (!reader.read(hb).ok()) {
    counters_.add_error();
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: tx packet shorter than its header");
    return 0;
  }
  VsockHeader h = parse_vsock_header(hb).value();
  switch (classify_guest_packet(h, config_.guest_cid, reader.remaining())) {
    case GuestPacketVerdict::kDrop:
      counters_.add_error();
      KILN_LOG_GUEST(logging::LogLevel::kWarning,
                     "vsock: dropped malformed tx packet (op %u, type %u, len %u)", h.op, h.type,
                     h.len);
      return 0;
    case GuestPacketVerdict::kReplyRst:
      table_.reply_rst(h);
      return 0;
    case GuestPacketVerdict::kAccept:
      break;
  }
  std::vector<uint8_t> payload;
  if (h.vsock_op() == VsockOp::kRw && h.len > 0) {
    payload.resize(h.len);
    (void)reader.read(payload);  // length checked by classify_guest_packet
    counters_.add_from_guest(h.len);
  }
  table_.on_guest_packet(h, payload);
  return 0;
}

Status VsockDevice::fill_rx() {
  if (!active_locked() || broken_) return ok_status();
  if (reset_hold_since_) {
    if (std::chrono::steady_clock::now() - *reset_hold_since_ < kResetHold) {
      update_timer();  // so the hold ends on time even if nothing else happens
      return ok_status();
    }
    reset_hold_since_.reset();  // the driver never confirmed: deliver anyway
  }
  virtio::Queue& rxq = queue(kRxQueue);
  std::vector<uint8_t> payload;
  for (uint32_t i = 0; i < rxq.size; ++i) {
    if (!table_.has_rx_packet()) break;

    KILN_ASSIGN_OR_RETURN(std::optional<virtio::AvailableChain> next, rxq.pop(mem()));
    if (!next) break;  // the driver will notify when it adds rx buffers
    const virtio::DescriptorChain* chain = next->chain.ok() ? &next->chain.value() : nullptr;
    if (chain == nullptr || !chain->readable.empty() || chain->writable_len < kVsockHeaderSize) {
      counters_.add_error();
      KILN_LOG_GUEST(logging::LogLevel::kWarning, "vsock: unusable rx buffer");
      KILN_TRY(rxq.add_used(mem(), next->head, 0));
      continue;
    }
    const size_t max_payload = static_cast<size_t>(
        std::min<uint64_t>(chain->writable_len - kVsockHeaderSize, kVsockMaxPayload));
    auto pkt = table_.next_rx_packet(max_payload, payload);
    if (!pkt) {
      rxq.undo_pop();  // nothing fits this buffer
      break;
    }
    virtio::ChainWriter writer(chain->writable);
    auto hdr = encode_vsock_header(pkt->header);
    KILN_TRY(writer.write(hdr));
    KILN_TRY(writer.write(payload));
    KILN_TRY(rxq.add_used(mem(), next->head, static_cast<uint32_t>(writer.written())));
    counters_.add_request();
    counters_.add_to_guest(payload.size());
    if (table_.delivered(*pkt)) update_timer();
  }
  KILN_ASSIGN_OR_RETURN(bool notify, rxq.needs_notification(mem()));
  if (notify) interrupt().signal_used_queue();
  return ok_status();
}

Status VsockDevice::on_queue_notify(uint16_t index) {
  if (broken_) return ok_status();
  switch (index) {
    case kRxQueue:
      return fill_rx();
    case kTxQueue:
      KILN_TRY(serve(kTxQueue, [this](const virtio::DescriptorChain& c) { return handle_tx_chain(c); }));
      table_.service_touched();
      return fill_rx();
    default:
      // The driver re-posted an event buffer: it has handled the transport reset (virtio 1.2
      // §5.10.6.6); held rx packets may go now. Event buffers wait for send_transport_reset().
      if (reset_hold_since_) {
        reset_hold_since_.reset();
        return fill_rx();
      }
      return ok_status();
  }
}

Status VsockDevice::send_transport_reset() {
  std::lock_guard lock(mu_);
  if (!active_locked() || broken_) return make_error("vsock: device not active");
  table_.drop_all();
  virtio::Queue& evq = queue(kEventQueue);
  auto next = evq.pop(mem());
  if (!next.ok()) {
    mark_broken(next.error());
    return next.error();
  }
  if (!*next) return make_error("vsock: no event buffer from the driver");
  const auto& chain = (*next)->chain;
  uint32_t used = 0;
  Status result = ok_status();
  if (!chain.ok() || !chain->readable.empty() || chain->writable_len < 4) {
    counters_.add_error();
    result = make_error("vsock: unusable event buffer");
  } else {
    virtio::ChainWriter writer(chain->writable);
    uint32_t id = kVsockEventTransportReset;
    KILN_TRY(writer.write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&id), 4)));
    used = 4;
  }
  auto st = evq.add_used(mem(), (*next)->head, used);
  if (!st.ok()) {
    mark_broken(st.error());
    return st.error();
  }
  auto notify = evq.needs_notification(mem());
  if (notify.ok() && *notify) interrupt().signal_used_queue();
  if (result.ok()) reset_hold_since_ = std::chrono::steady_clock::now();
  return result;
}

}  // namespace kiln::vmm::devices
