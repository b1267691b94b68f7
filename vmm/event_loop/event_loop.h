// EventLoop: one epoll set served by one thread. Devices register fds with callbacks;
// other threads may post work or stop the loop through an eventfd.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace kiln::vmm {

class EventLoop {
 public:
  // Receives the epoll event mask (EPOLLIN, EPOLLOUT, EPOLLHUP, ...).
  using Callback = std::function<void(uint32_t events)>;

  static Result<std::unique_ptr<EventLoop>> create();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Registration. The loop does not own fd; the caller removes it before closing it.
  // Safe from any thread and from inside callbacks; a callback removed while its event is
  // pending in the current batch is not called.
  Status add(int fd, uint32_t events, Callback cb);
  Status modify(int fd, uint32_t events);
  Status remove(int fd);
  bool contains(int fd) const;

  // Runs callbacks until stop(). Call from exactly one thread.
  Status run();
  // One epoll_wait of at most timeout_ms (-1 = block), dispatching what is ready.
  // Returns the number of callbacks run (the internal wakeup is not counted).
  Result<int> run_once(int timeout_ms);

  // Thread-safe: run() returns after the current batch.
  void stop();
  // Thread-safe: fn runs on the loop thread during the next iteration.
  void post(std::function<void()> fn);
  bool stopped() const;

 private:
  EventLoop(UniqueFd epoll, UniqueFd wake) : epoll_(std::move(epoll)), wake_(std::move(wake)) {}
  void wake();

  struct Entry {
    int fd;
    std::shared_ptr<Callback> cb;
  };

  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd; its epoll token is kWakeToken
  mutable std::mutex mu_;
  uint64_t next_token_ = 1;
  std::unordered_map<uint64_t, Entry> by_token_;
  std::unordered_map<int, uint64_t> token_of_fd_;
  std::vector<std::function<void()>> posted_;
  bool stop_ = false;
};

}  // namespace kiln::vmm
