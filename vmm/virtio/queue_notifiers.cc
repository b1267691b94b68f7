// QueueNotifiers implementation.
#include "vmm/virtio/queue_notifiers.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace kiln::vmm::virtio {

Result<std::unique_ptr<QueueNotifiers>> QueueNotifiers::create(VirtioMmioTransport& transport,
                                                               EventLoop& loop) {
  std::unique_ptr<QueueNotifiers> n(new QueueNotifiers(loop));
  for (size_t i = 0; i < transport.queue_count(); ++i) {
    UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!fd) return errno_error("eventfd");
    int raw = fd.get();
    n->fds_.push_back(std::move(fd));
    auto index = static_cast<uint32_t>(i);
    // On failure the destructor unregisters what was added.
    KILN_TRY(loop.add(raw, EPOLLIN, [raw, index, &transport](uint32_t) {
      uint64_t count;
      // Several kicks coalesce into one read: one pass over the queue serves them all.
      if (::read(raw, &count, sizeof count) == sizeof count) transport.notify_queue(index);
    }));
  }
  return n;
}

QueueNotifiers::~QueueNotifiers() {
  for (const auto& fd : fds_) {
    loop_.remove_if_present(fd.get());
  }
}

Interrupt::Trigger eventfd_trigger(int eventfd) {
  return [eventfd] {
    uint64_t one = 1;
    // EAGAIN only if the counter is saturated, in which case the interrupt is pending anyway.
    [[maybe_unused]] ssize_t n = ::write(eventfd, &one, sizeof one);
  };
}

}  // namespace kiln::vmm::virtio
