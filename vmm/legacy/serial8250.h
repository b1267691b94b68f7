// Serial8250: a 16550A-compatible UART (COM1) as Linux's 8250 driver expects it.
// Output goes to a borrowed fd, rate-limited (excess dropped, never blocking); input comes from
// enqueue_input(). Watches the output for a kernel panic line.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "common/result.h"

namespace kiln::vmm::legacy {

// Guest-visible UART state for snapshots (counters and the panic watcher are host-side).
struct Serial8250State {
  uint8_t ier = 0;
  uint8_t lcr = 0x03;
  uint8_t mcr = 0x08;
  uint8_t scr = 0;
  uint8_t dll = 0x0c;
  uint8_t dlm = 0;
  bool fifo_enabled = false;
  bool thre_pending = false;
  bool overrun = false;
  std::vector<uint8_t> rx;  // unread input, oldest first
};

struct SerialCounters {
  uint64_t bytes_written = 0;   // reached the output fd
  uint64_t bytes_dropped = 0;   // rate-limited away or refused by the fd (e.g. EAGAIN)
  uint64_t bytes_received = 0;  // accepted by enqueue_input()
};

class Serial8250 {
 public:
  using Clock = std::chrono::steady_clock;
  using NowFn = std::function<Clock::time_point()>;
  using InterruptFn = std::function<void()>;

  struct Options {
    // Token bucket on guest output: rate_bytes_per_sec sustained, burst_bytes at once.
    // rate_bytes_per_sec == 0 disables limiting.
    uint64_t rate_bytes_per_sec = 1024 * 1024;
    uint64_t burst_bytes = 256 * 1024;
    size_t rx_fifo_capacity = 64;  // bytes enqueue_input() can buffer for the guest
    NowFn now = &Clock::now;       // injected clock, for tests
  };

  // Register offsets relative to the base port (0x3f8); 16550A datasheet register map.
  static constexpr uint16_t kRegData = 0;  // RBR (read) / THR (write); DLL when LCR.DLAB
  static constexpr uint16_t kRegIer = 1;   // DLM when LCR.DLAB
  static constexpr uint16_t kRegIir = 2;   // IIR (read) / FCR (write)
  static constexpr uint16_t kRegLcr = 3;
  static constexpr uint16_t kRegMcr = 4;
  static constexpr uint16_t kRegLsr = 5;
  static constexpr uint16_t kRegMsr = 6;
  static constexpr uint16_t kRegScr = 7;
  static constexpr uint16_t kRegisterCount = 8;

  // out_fd is borrowed (-1 discards output). interrupt is called (without the lock held)
  // each time an enabled interrupt condition is raised: the caller turns it into an edge on
  // the serial GSI. Both may be empty/-1.
  Serial8250(int out_fd, InterruptFn interrupt);
  Serial8250(int out_fd, InterruptFn interrupt, Options options);

  Serial8250(const Serial8250&) = delete;
  Serial8250& operator=(const Serial8250&) = delete;

  // Guest port I/O at base + offset. Only 1-byte accesses to offsets 0..7 have an effect;
  // anything else reads as zeros / is ignored.
  void io_read(uint16_t offset, std::span<uint8_t> data);
  void io_write(uint16_t offset, std::span<const uint8_t> data);

  // Host input for the guest. Returns how many bytes were accepted (the rest did not fit the
  // RX FIFO; retry after the guest drained it, see rx_space()).
  size_t enqueue_input(std::span<const uint8_t> bytes);
  size_t rx_space() const;

  // Whether the output stream contained "Kernel panic - not syncing" (seen before rate
  // limiting, so a panic is detected even when its bytes are dropped).
  bool saw_panic() const;

  // Snapshot support. restore() validates the state (register bits, RX size) and changes
  // nothing when it is refused.
  Serial8250State save() const;
  Status restore(const Serial8250State& state);

  SerialCounters counters() const;
  uint64_t bytes_written() const { return counters().bytes_written; }
  uint64_t bytes_dropped() const { return counters().bytes_dropped; }

 private:
  uint8_t read_locked(uint16_t offset);
  // Returns whether the interrupt callback must be called.
  bool write_locked(uint16_t offset, uint8_t value);
  bool transmit_locked(uint8_t byte);
  bool push_rx_locked(uint8_t byte);
  uint8_t iir_locked() const;
  uint8_t msr_locked() const;
  bool take_token_locked();
  void watch_panic_locked(uint8_t byte);
  void emit_locked(uint8_t byte);
  void fire(bool raise);

  const int out_fd_;
  const InterruptFn interrupt_;
  const Options options_;

  mutable std::mutex mu_;
  // Registers.
  uint8_t ier_ = 0;
  uint8_t lcr_ = 0x03;  // 8N1
  uint8_t mcr_ = 0x08;  // OUT2
  uint8_t scr_ = 0;
  uint8_t dll_ = 0x0c;  // divisor 12: 9600 baud
  uint8_t dlm_ = 0;
  bool fifo_enabled_ = false;
  bool thre_pending_ = false;  // THR-empty interrupt latched until IIR read or THR write
  bool overrun_ = false;       // LSR.OE, cleared by reading LSR
  std::deque<uint8_t> rx_;
  // Output limiting and accounting.
  double tokens_ = 0;
  Clock::time_point last_refill_;
  SerialCounters counters_;
  size_t panic_match_ = 0;  // bytes of the panic line matched so far (KMP state)
  bool saw_panic_ = false;
};

}  // namespace kiln::vmm::legacy
