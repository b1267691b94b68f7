// NbdBlockBackend: a drive served by an NBD server on a Unix socket (libnbd). Connected at drive
// setup with a deadline; then every request is an asynchronous NBD command whose socket is served
// by the device event loop, so a slow server stalls no other device. A dead connection fails its
// requests and every later one at once (EIO to the guest, never a hang); so does a server that
// leaves a command unanswered past the command deadline (the VMM then drops the connection).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_set>

#include "common/event_loop/event_loop.h"
#include "vmm/config/nbd_uri.h"
#include "vmm/devices/block_backend.h"
#include "vmm/devices/device_wakeup.h"

struct nbd_handle;

namespace kiln::vmm::devices {

class NbdBlockBackend : public BlockBackend {
 public:
  // Largest NBD command kiln-vmm sends (servers commonly accept 32 MiB; libnbd refuses 64 MiB).
  static inline constexpr uint64_t kMaxRequestBytes = 32ull << 20;

  // A command the server leaves unanswered this long ends the connection (a backstop: kilnd's
  // lazy-disk server answers EIO well before).
  static inline constexpr std::chrono::milliseconds kCommandDeadline{120000};

  // Connects and completes the NBD handshake within `timeout` (poll on the calling thread), then
  // serves the socket on `loop`, which must outlive the backend. The drive is read-only when
  // `read_only` or when the server says so.
  static Result<std::unique_ptr<NbdBlockBackend>> connect(
      const config::NbdUri& uri, bool read_only, EventLoop& loop,
      std::chrono::milliseconds timeout = std::chrono::seconds(10),
      std::chrono::milliseconds command_deadline = kCommandDeadline);
  ~NbdBlockBackend() override;
  NbdBlockBackend(const NbdBlockBackend&) = delete;
  NbdBlockBackend& operator=(const NbdBlockBackend&) = delete;

  uint64_t size_bytes() const override { return size_; }
  bool read_only() const override { return read_only_; }
  bool synchronous() const override { return false; }
  uint64_t max_request_bytes() const override { return max_request_; }
  // One buffer per request (a bounce buffer). Fails inline once the connection is dead.
  std::optional<bool> submit(BlockIo io) override;
  std::vector<BlockCompletion> take_completions() override;
  void set_ready_callback(std::function<void()> ready) override { ready_ = std::move(ready); }
  // nbd_errors: requests the server or the connection failed; nbd_disconnected: 1 once the
  // connection is gone.
  std::vector<std::pair<std::string, uint64_t>> counters() const override;

  bool connected() const { return !dead_.load(); }

 private:
  struct Pending;
  NbdBlockBackend(nbd_handle* h, EventLoop& loop, uint64_t size, bool read_only, bool can_flush, uint64_t max_request,
                  std::chrono::milliseconds command_deadline);
  static int on_command_done(void* user_data, int* error);
  static void free_pending(void* user_data);

  // Loop thread: the socket is ready.
  void on_socket(uint32_t events);
  // Puts the socket's epoll interest in line with what libnbd waits for.
  void update_events();
  // Checks the handle after a libnbd call; when the connection is gone, takes the socket off the
  // loop and logs once.
  void check_connection(const char* during);
  void add_completion(uint64_t tag, bool ok);
  // Loop thread, while commands are in flight: drops the connection when one is overdue.
  void check_deadlines();

  nbd_handle* const h_;
  EventLoop& loop_;
  const int fd_;
  const uint64_t size_;
  const bool read_only_;
  const bool can_flush_;
  const uint64_t max_request_;
  std::function<void()> ready_;

  std::atomic<bool> dead_{false};
  std::atomic<uint64_t> errors_{0};
  std::mutex events_mu_;  // after libnbd's own lock; serialises epoll updates
  uint32_t events_ = 0;
  const std::chrono::milliseconds command_deadline_;
  std::unique_ptr<DeviceWakeup> deadline_check_;
  std::mutex done_mu_;  // innermost: taken inside libnbd's completion callbacks
  std::vector<BlockCompletion> done_;
  std::unordered_set<Pending*> live_;  // commands libnbd holds
};

}  // namespace kiln::vmm::devices
