// Eventfd plumbing between a VirtioMmioTransport and KVM, without KVM calls: one eventfd per
// queue for KVM_IOEVENTFD (served on the event loop) and an eventfd trigger for KVM_IRQFD.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "common/event_loop/event_loop.h"
#include "vmm/virtio/interrupt.h"
#include "vmm/virtio/mmio_transport.h"

namespace kiln::vmm::virtio {

class QueueNotifiers {
 public:
  // One non-blocking eventfd per queue of `transport`, registered on `loop`: a readable
  // eventfd i becomes transport.notify_queue(i). Register fd(i) with KVM_IOEVENTFD at
  // window base + mmio::kQueueNotify, 4 bytes, datamatch i. transport and loop must
  // outlive this object; destroy it on the loop thread or after the loop stopped.
  static Result<std::unique_ptr<QueueNotifiers>> create(VirtioMmioTransport& transport,
                                                        EventLoop& loop);
  ~QueueNotifiers();
  QueueNotifiers(const QueueNotifiers&) = delete;
  QueueNotifiers& operator=(const QueueNotifiers&) = delete;

  size_t size() const { return fds_.size(); }
  int fd(size_t queue) const { return fds_.at(queue).get(); }

 private:
  explicit QueueNotifiers(EventLoop& loop) : loop_(loop) {}
  EventLoop& loop_;
  std::vector<UniqueFd> fds_;
};

// A trigger that signals an eventfd (register the fd with KVM_IRQFD for the device's GSI).
// The fd must outlive every transport using the trigger.
Interrupt::Trigger eventfd_trigger(int eventfd);

}  // namespace kiln::vmm::virtio
