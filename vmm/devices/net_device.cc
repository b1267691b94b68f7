// NetDevice implementation. Receive: one frame at a time is read from the backend into a
// staging buffer, charged to the rx limiter, then copied into as many receive chains as it
// needs (mergeable buffers); while it waits for buffers or tokens the backend is not polled.
// Transmit: each chain's header is checked and a sanitised copy goes out in front of the
// guest's payload in one writev (a TAP write is one frame).
#include "vmm/devices/net_device.h"

#include <errno.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/clock.h"
#include "vmm/logging/logger.h"
#include "vmm/virtio/virtio_constants.h"

namespace kiln::vmm::devices {

using virtio::feature_bit;

Result<std::shared_ptr<NetDevice>> NetDevice::create(const NetDeviceConfig& config,
                                                     std::unique_ptr<NetBackend> backend, EventLoop& loop) {
  auto clock = config.clock ? config.clock : std::function<rate_limiter::Nanos()>(kiln::monotonic_ns);
  KILN_ASSIGN_OR_RETURN(auto rx, rate_limiter::RateLimiter::make(config.rx_limit, clock()));
  KILN_ASSIGN_OR_RETURN(auto tx, rate_limiter::RateLimiter::make(config.tx_limit, clock()));
  NetDeviceConfig c = config;
  c.clock = clock;
  std::shared_ptr<NetDevice> dev(new NetDevice(c, std::move(backend), loop, std::move(rx), std::move(tx)));
  NetDevice* raw = dev.get();
  // Registered unpolled (no events) so turning polling on and off is one epoll_ctl(MOD).
  KILN_TRY(loop.add(dev->backend_->fd(), 0, [raw](uint32_t events) { raw->on_backend_event(events); }));
  return dev;
}

NetDevice::NetDevice(const NetDeviceConfig& config, std::unique_ptr<NetBackend> backend, EventLoop& loop,
                     rate_limiter::RateLimiter rx, rate_limiter::RateLimiter tx)
    : ActivatedDevice("virtio-net", {kQueueSize, kQueueSize}),
      config_(config),
      clock_(config.clock),
      backend_(std::move(backend)),
      loop_(loop),
      wakeup_(loop, [this] { on_wakeup(); }),
      rx_limiter_(std::move(rx)),
      tx_limiter_(std::move(tx)),
      rx_frame_(kMaxNetBuffer) {}

NetDevice::~NetDevice() { loop_.remove_if_present(backend_->fd()); }

uint32_t NetDevice::device_id() const { return virtio::kDeviceIdNet; }

uint64_t NetDevice::device_features() const {
  uint64_t f = feature_bit(virtio::kFeatureVersion1) | feature_bit(virtio::kFeatureIndirectDesc) |
               feature_bit(virtio::kFeatureEventIdx) | feature_bit(kNetFeatureCsum) | feature_bit(kNetFeatureGuestCsum) |
               feature_bit(kNetFeatureGuestTso4) | feature_bit(kNetFeatureGuestTso6) |
               feature_bit(kNetFeatureGuestUfo) | feature_bit(kNetFeatureHostTso4) |
               feature_bit(kNetFeatureHostTso6) | feature_bit(kNetFeatureHostUfo) |
               feature_bit(kNetFeatureMrgRxbuf);
  if (config_.mac) f |= feature_bit(kNetFeatureMac);
  if (config_.mtu) f |= feature_bit(kNetFeatureMtu);
  return f;
}

void NetDevice::read_config(uint64_t offset, std::span<uint8_t> data) const {
  // struct virtio_net_config (virtio 1.2 §5.1.4): u8 mac[6], le16 status (VIRTIO_NET_F_STATUS
  // not offered), le16 max_virtqueue_pairs (no MQ), le16 mtu.
  std::array<uint8_t, 12> image{};
  if (config_.mac) std::memcpy(image.data(), config_.mac->data(), 6);
  uint16_t mtu = config_.mtu.value_or(0);
  std::memcpy(image.data() + 10, &mtu, 2);
  virtio::read_config_bytes(image, offset, data);
}

std::vector<std::pair<std::string, uint64_t>> NetDevice::extra_counters() const {
  NetCounters c = net_counters();
  return {{"rx_packets", c.rx_packets},   {"rx_bytes", c.rx_bytes},
          {"rx_dropped", c.rx_dropped},   {"rx_throttled", c.rx_throttled},
          {"rx_backend_errors", c.rx_backend_errors},
          {"tx_packets", c.tx_packets},   {"tx_bytes", c.tx_bytes},
          {"tx_dropped", c.tx_dropped},   {"tx_throttled", c.tx_throttled},
          {"tx_backend_errors", c.tx_backend_errors}};
}

NetCounters NetDevice::net_counters() const {
  const virtio::DeviceCounters common = counters_.snapshot();
  std::lock_guard lock(mu_);
  const PacketCounts& p = stats_;
  return NetCounters{p.rx_packets, common.bytes_to_guest,   p.rx_dropped, p.rx_throttled, p.rx_backend_errors,
                     p.tx_packets, common.bytes_from_guest, p.tx_dropped, p.tx_throttled, p.tx_backend_errors};
}

Status NetDevice::update_rate_limiters(const std::optional<rate_limiter::RateLimiterConfig>& rx,
                                       const std::optional<rate_limiter::RateLimiterConfig>& tx) {
  std::optional<rate_limiter::RateLimiter> new_rx, new_tx;
  if (rx) {
    KILN_ASSIGN_OR_RETURN(new_rx, rate_limiter::RateLimiter::make(*rx, now()));
  }
  if (tx) {
    KILN_ASSIGN_OR_RETURN(new_tx, rate_limiter::RateLimiter::make(*tx, now()));
  }
  std::lock_guard lock(mu_);
  if (new_rx) rx_limiter_ = std::move(*new_rx);
  if (new_tx) tx_limiter_ = std::move(*new_tx);
  wakeup_.soon();  // a throttled direction may go on now
  return ok_status();
}

// ---------------------------------------------------------------- activation and events

Status NetDevice::on_activate() {
  broken_ = false;
  offload_set_ = false;
  // The TAP's offloads follow what the driver accepted; set on the loop thread (activation
  // runs on a vCPU, whose seccomp filter has no TAP ioctls), before the first read.
  wakeup_.soon();
  return ok_status();
}

void NetDevice::apply_offload() {
  if (auto st = backend_->set_offload(tap_offload_flags(acked_features())); !st.ok()) {
    // The TAP keeps the offloads it was opened with (none): plain frames, which every driver takes.
    KILN_LOG_ERROR("virtio-net: %s", st.error().message.c_str());
  }
  offload_set_ = true;
  update_polling();
}

void NetDevice::on_reset() {
  rx_len_ = 0;
  rx_charged_ = false;
  broken_ = false;
  offload_set_ = false;
  if (polling_ && !backend_dead_) (void)loop_.modify(backend_->fd(), 0);
  polling_ = false;
}

void NetDevice::update_polling() {
  // Poll only when a read can be delivered: active with offloads set, nothing held, the
  // backend alive.
  bool want = active_locked() && offload_set_ && !broken_ && !backend_dead_ && rx_len_ == 0;
  if (want == polling_) return;
  if (auto st = loop_.modify(backend_->fd(), want ? uint32_t{EPOLLIN} : 0u); !st.ok()) {
    KILN_LOG_ERROR("virtio-net: %s", st.error().message.c_str());
    return;
  }
  polling_ = want;
}

void NetDevice::on_wakeup() {
  std::lock_guard lock(mu_);
  if (!active_locked() || broken_) return;
  if (!offload_set_) apply_offload();
  run_queues();
}

void NetDevice::on_backend_event(uint32_t events) {
  std::lock_guard lock(mu_);
  if (events & (EPOLLERR | EPOLLHUP)) {
    // The TAP went away under us: level-triggered HUP would spin the loop. Stop reading.
    KILN_LOG_ERROR("virtio-net: the host network device hung up; receive stops");
    backend_dead_ = true;
    loop_.remove_if_present(backend_->fd());
    polling_ = false;
    return;
  }
  if (!active_locked() || broken_) return;
  run_queues();
}

Status NetDevice::on_queue_notify(uint16_t index) {
  if (broken_) return ok_status();
  // New receive buffers may let a held frame through; new transmit chains go out.
  auto st = index == kRxQueue ? process_rx() : process_tx();
  if (!st.ok()) {
    broken_ = true;
    update_polling();
  }
  return st;
}

void NetDevice::run_queues() {
  Status st = process_rx();
  if (st.ok()) st = process_tx();
  if (!st.ok()) {
    KILN_LOG_GUEST(logging::LogLevel::kError, "virtio-net: device broken: %s", st.error().message.c_str());
    broken_ = true;
    interrupt().mark_needs_reset();
    update_polling();
  }
}

// ---------------------------------------------------------------- receive

Status NetDevice::process_rx() {
  virtio::Queue& q = queue(kRxQueue);
  // At most a queue's worth per call; the fd stays readable and the loop calls again.
  for (uint32_t n = 0; n < q.size; ++n) {
    if (rx_len_ == 0) {
      // Not before the TAP's offloads match this activation's features (apply_offload).
      if (backend_dead_ || !offload_set_) break;
      ssize_t got = ::read(backend_->fd(), rx_frame_.data(), rx_frame_.size());
      if (got < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          ++stats_.rx_backend_errors;
          KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-net: reading the host device failed: %s",
                         std::strerror(errno));
        }
        break;
      }
      if (static_cast<size_t>(got) < kNetHdrSize + kEthHeaderSize) {
        ++stats_.rx_dropped;  // a runt: nothing the guest could use
        continue;
      }
      rx_len_ = static_cast<size_t>(got);
      rx_charged_ = false;
    }
    if (!rx_charged_) {
      const uint64_t payload = rx_len_ - kNetHdrSize;
      if (!rx_limiter_.consume(payload, now())) {
        ++stats_.rx_throttled;
        wakeup_.after(std::max<rate_limiter::Nanos>(rx_limiter_.wait_for(payload, now()), 1));
        break;
      }
      rx_charged_ = true;
    }
    KILN_ASSIGN_OR_RETURN(bool delivered, deliver_rx_frame());
    if (!delivered) break;  // the guest posts buffers and notifies the rx queue
  }
  update_polling();
  // Also after chains returned unused (malformed, or a frame too big for them).
  KILN_ASSIGN_OR_RETURN(bool notify, q.needs_notification(mem()));
  if (notify) interrupt().signal_used_queue();
  return ok_status();
}

Result<bool> NetDevice::deliver_rx_frame() {
  virtio::Queue& q = queue(kRxQueue);
  const bool mergeable = (acked_features() & feature_bit(kNetFeatureMrgRxbuf)) != 0;
  std::vector<virtio::AvailableChain> chains;
  std::vector<uint64_t> room;
  uint32_t needed = 0;
  while (needed == 0) {
    KILN_ASSIGN_OR_RETURN(std::optional<virtio::AvailableChain> next, q.pop(mem()));
    if (!next) {
      q.undo_pop(static_cast<uint16_t>(chains.size()));  // all valid, consecutive: retaken later
      return false;
    }
    std::string bad;
    if (!next->chain.ok()) {
      bad = next->chain.error().message;
    } else if (next->chain->readable_len != 0) {
      bad = "device-readable buffer";
    } else if (chains.empty() && next->chain->writable_len < kNetHdrSize) {
      bad = "no room for the header";
    }
    if (!bad.empty()) {
      // A malformed receive chain: give back everything taken so far unused (length 0) so no
      // buffer is lost, count it, and start over with the next chains.
      counters_.add_error();
      KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-net: malformed receive chain: %s", bad.c_str());
      for (const auto& c : chains) KILN_TRY(q.add_used(mem(), c.head, 0));
      KILN_TRY(q.add_used(mem(), next->head, 0));
      chains.clear();
      room.clear();
      continue;
    }
    room.push_back(next->chain->writable_len);
    chains.push_back(std::move(*next));
    auto plan = rx_chains_needed(room, rx_len_, mergeable);
    if (!plan.ok()) {
      // The frame can never fit these buffers: drop it, return the buffers unused.
      ++stats_.rx_dropped;
      counters_.add_error();
      KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-net: %s", plan.error().message.c_str());
      for (const auto& c : chains) KILN_TRY(q.add_used(mem(), c.head, 0));
      rx_len_ = 0;
      return true;
    }
    needed = plan.value();
  }
  // num_buffers (the last header field) tells the driver how many chains the frame spans.
  uint16_t num_buffers = static_cast<uint16_t>(needed);
  std::memcpy(rx_frame_.data() + kNetHdrSize - 2, &num_buffers, 2);
  size_t off = 0;
  for (uint32_t i = 0; i < needed; ++i) {
    virtio::ChainWriter writer(chains[i].chain->writable);
    size_t n = static_cast<size_t>(std::min<uint64_t>(writer.remaining(), rx_len_ - off));
    KILN_TRY(writer.write(std::span<const uint8_t>(rx_frame_.data() + off, n)));
    off += n;
    KILN_TRY(q.add_used(mem(), chains[i].head, static_cast<uint32_t>(n)));
  }
  counters_.add_request();
  counters_.add_to_guest(rx_len_ - kNetHdrSize);
  ++stats_.rx_packets;
  rx_len_ = 0;
  return true;
}

// ---------------------------------------------------------------- transmit

Status NetDevice::process_tx() {
  auto admit = [this](const virtio::DescriptorChain& c) {
    const uint64_t payload = c.readable_len > kNetHdrSize ? c.readable_len - kNetHdrSize : 0;
    if (tx_limiter_.consume(payload, now())) return true;
    ++stats_.tx_throttled;
    wakeup_.after(std::max<rate_limiter::Nanos>(tx_limiter_.wait_for(payload, now()), 1));
    return false;
  };
  KILN_TRY(serve(kTxQueue, [this](const virtio::DescriptorChain& c) { return send_tx_chain(c); }, admit));
  // serve() takes at most a queue's worth: more waiting goes next, after other fds had a turn.
  KILN_ASSIGN_OR_RETURN(bool more, queue(kTxQueue).arm_kick(mem()));
  if (more) wakeup_.soon();
  return ok_status();
}

uint32_t NetDevice::send_tx_chain(const virtio::DescriptorChain& chain) {
  auto drop = [&](const char* why) -> uint32_t {
    counters_.add_error();
    ++stats_.tx_dropped;
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-net: transmit frame dropped: %s", why);
    return 0;
  };
  virtio::ChainReader reader(chain.readable);
  std::array<uint8_t, kNetHdrSize> hdr_bytes{};
  if (!reader.read(hdr_bytes).ok()) return drop("shorter than its header");
  // The header is checked on a private copy; the TAP gets that copy, so a vCPU rewriting the
  // guest's header meanwhile changes nothing.
  auto hdr = check_tx_frame(parse_net_hdr(hdr_bytes).value(), reader.remaining(), acked_features());
  if (!hdr.ok()) return drop(hdr.error().message.c_str());
  encode_net_hdr(hdr.value(), hdr_bytes);
  const uint64_t payload = reader.remaining();
  auto bufs = reader.take(payload);
  if (!bufs.ok() || bufs->size() + 1 > IOV_MAX) return drop("too many buffers");
  std::vector<iovec> iov;
  iov.reserve(bufs->size() + 1);
  iov.push_back({hdr_bytes.data(), hdr_bytes.size()});
  for (std::span<uint8_t> b : bufs.value()) iov.push_back({b.data(), b.size()});
  ssize_t put;
  do {
    put = ::writev(backend_->fd(), iov.data(), static_cast<int>(iov.size()));
  } while (put < 0 && errno == EINTR);
  if (put < 0) {
    // EAGAIN (queue full), EIO (link down): the frame is lost, as on a real wire.
    ++stats_.tx_backend_errors;
    ++stats_.tx_dropped;
    KILN_LOG_GUEST(logging::LogLevel::kWarning, "virtio-net: writing to the host device failed: %s",
                   std::strerror(errno));
    return 0;
  }
  counters_.add_from_guest(payload);
  ++stats_.tx_packets;
  return 0;  // nothing written into a transmit chain
}

}  // namespace kiln::vmm::devices
