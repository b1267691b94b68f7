// Serial8250: register model of a 16550A UART (TI PC16550D datasheet, "Register Description"),
// with synchronous transmit, a bounded RX FIFO, output token bucket and panic-line watcher.
#include "vmm/legacy/serial8250.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string_view>
#include <utility>

namespace kiln::vmm::legacy {
namespace {

// IER bits.
constexpr uint8_t kIerRxData = 0x01;    // ERBFI: received data available
constexpr uint8_t kIerThrEmpty = 0x02;  // ETBEI: transmitter holding register empty
constexpr uint8_t kIerLineStatus = 0x04;  // ELSI
constexpr uint8_t kIerMask = 0x0f;
// IIR values (bits 3..1 identify the source, bit 0 set = nothing pending, 7..6 = FIFOs on).
constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirLineStatus = 0x06;
constexpr uint8_t kIirRxData = 0x04;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirFifoBits = 0xc0;
// FCR bits.
constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;
// LCR / MCR / LSR / MSR bits.
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kMcrMask = 0x1f;
constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrThrEmpty = 0x20;
constexpr uint8_t kLsrTxEmpty = 0x40;
constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;

constexpr std::string_view kPanicLine = "Kernel panic - not syncing";

// KMP failure function of kPanicLine: longest proper prefix that is also a suffix.
constexpr std::array<size_t, kPanicLine.size()> make_failure() {
  std::array<size_t, kPanicLine.size()> f{};
  size_t k = 0;
  for (size_t i = 1; i < kPanicLine.size(); ++i) {
    while (k > 0 && kPanicLine[i] != kPanicLine[k]) k = f[k - 1];
    if (kPanicLine[i] == kPanicLine[k]) ++k;
    f[i] = k;
  }
  return f;
}
constexpr auto kPanicFailure = make_failure();

}  // namespace

Serial8250::Serial8250(int out_fd, InterruptFn interrupt)
    : Serial8250(out_fd, std::move(interrupt), Options{}) {}

Serial8250::Serial8250(int out_fd, InterruptFn interrupt, Options options)
    : out_fd_(out_fd), interrupt_(std::move(interrupt)), options_(std::move(options)) {
  tokens_ = static_cast<double>(options_.burst_bytes);
  last_refill_ = options_.now ? options_.now() : Clock::now();
}

void Serial8250::io_read(uint16_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), uint8_t{0});
  if (data.size() != 1 || offset >= kRegisterCount) return;
  std::lock_guard lock(mu_);
  data[0] = read_locked(offset);
}

void Serial8250::io_write(uint16_t offset, std::span<const uint8_t> data) {
  if (data.size() != 1 || offset >= kRegisterCount) return;
  bool raise = false;
  {
    std::lock_guard lock(mu_);
    raise = write_locked(offset, data[0]);
  }
  fire(raise);
}

size_t Serial8250::enqueue_input(std::span<const uint8_t> bytes) {
  bool raise = false;
  size_t accepted = 0;
  {
    std::lock_guard lock(mu_);
    for (uint8_t b : bytes) {
      if (rx_.size() >= options_.rx_fifo_capacity) break;
      raise = push_rx_locked(b) || raise;
      ++accepted;
    }
    counters_.bytes_received += accepted;
  }
  fire(raise);
  return accepted;
}

size_t Serial8250::rx_space() const {
  std::lock_guard lock(mu_);
  return options_.rx_fifo_capacity - std::min(rx_.size(), options_.rx_fifo_capacity);
}

bool Serial8250::saw_panic() const {
  std::lock_guard lock(mu_);
  return saw_panic_;
}

Serial8250State Serial8250::save() const {
  std::lock_guard lock(mu_);
  Serial8250State st;
  st.ier = ier_;
  st.lcr = lcr_;
  st.mcr = mcr_;
  st.scr = scr_;
  st.dll = dll_;
  st.dlm = dlm_;
  st.fifo_enabled = fifo_enabled_;
  st.thre_pending = thre_pending_;
  st.overrun = overrun_;
  st.rx.assign(rx_.begin(), rx_.end());
  return st;
}

Status Serial8250::restore(const Serial8250State& state) {
  if ((state.ier & ~kIerMask) != 0) return make_error("serial: restored IER has reserved bits set");
  if ((state.mcr & ~kMcrMask) != 0) return make_error("serial: restored MCR has reserved bits set");
  std::lock_guard lock(mu_);
  if (state.rx.size() > options_.rx_fifo_capacity) {
    return make_error("serial: restored RX FIFO exceeds its capacity");
  }
  ier_ = state.ier;
  lcr_ = state.lcr;
  mcr_ = state.mcr;
  scr_ = state.scr;
  dll_ = state.dll;
  dlm_ = state.dlm;
  fifo_enabled_ = state.fifo_enabled;
  thre_pending_ = state.thre_pending && (ier_ & kIerThrEmpty) != 0;
  overrun_ = state.overrun;
  rx_.assign(state.rx.begin(), state.rx.end());
  return ok_status();
}

SerialCounters Serial8250::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

uint8_t Serial8250::read_locked(uint16_t offset) {
  const bool dlab = (lcr_ & kLcrDlab) != 0;
  switch (offset) {
    case kRegData: {
      if (dlab) return dll_;
      if (rx_.empty()) return 0;
      uint8_t b = rx_.front();
      rx_.pop_front();
      return b;
    }
    case kRegIer:
      return dlab ? dlm_ : ier_;
    case kRegIir: {
      uint8_t iir = iir_locked();
      // Reading IIR clears a THR-empty interrupt when it is the one reported (PC16550D
      // Table IV, "Interrupt Reset Control").
      if ((iir & 0x0f) == kIirThrEmpty) thre_pending_ = false;
      return iir;
    }
    case kRegLcr:
      return lcr_;
    case kRegMcr:
      return mcr_;
    case kRegLsr: {
      uint8_t lsr = kLsrThrEmpty | kLsrTxEmpty;  // we transmit synchronously: always empty
      if (!rx_.empty()) lsr |= kLsrDataReady;
      if (overrun_) lsr |= kLsrOverrun;
      overrun_ = false;
      return lsr;
    }
    case kRegMsr:
      return msr_locked();
    case kRegScr:
      return scr_;
    default:
      return 0;
  }
}

bool Serial8250::write_locked(uint16_t offset, uint8_t value) {
  const bool dlab = (lcr_ & kLcrDlab) != 0;
  switch (offset) {
    case kRegData:
      if (dlab) {
        dll_ = value;
        return false;
      }
      return transmit_locked(value);
    case kRegIer: {
      if (dlab) {
        dlm_ = value;
        return false;
      }
      ier_ = value & kIerMask;
      bool raise = false;
      if (ier_ & kIerThrEmpty) {
        // Enabling ETBEI while THR is empty (always) raises the THR-empty interrupt; Linux's
        // 8250 probes exactly this at startup (UART_BUG_THRE test).
        thre_pending_ = true;
        raise = true;
      } else {
        thre_pending_ = false;
      }
      if ((ier_ & kIerRxData) && !rx_.empty()) raise = true;
      if ((ier_ & kIerLineStatus) && overrun_) raise = true;
      return raise;
    }
    case kRegIir:  // FCR
      fifo_enabled_ = (value & kFcrEnable) != 0;
      if (value & kFcrClearRx) rx_.clear();
      return false;
    case kRegLcr:
      lcr_ = value;
      return false;
    case kRegMcr:
      mcr_ = value & kMcrMask;
      return false;
    case kRegScr:
      scr_ = value;
      return false;
    default:  // LSR and MSR are read-only here
      return false;
  }
}

bool Serial8250::transmit_locked(uint8_t byte) {
  bool raise = false;
  if (mcr_ & kMcrLoop) {
    // Loopback: the transmitter feeds the receiver; nothing leaves the UART.
    raise = push_rx_locked(byte);
  } else {
    watch_panic_locked(byte);
    if (take_token_locked()) {
      emit_locked(byte);
    } else {
      ++counters_.bytes_dropped;
    }
  }
  // The byte left THR at once, so THR is empty again: re-latch the THR-empty interrupt.
  thre_pending_ = (ier_ & kIerThrEmpty) != 0;
  return raise || thre_pending_;
}

bool Serial8250::push_rx_locked(uint8_t byte) {
  if (rx_.size() >= options_.rx_fifo_capacity) {
    overrun_ = true;
    return (ier_ & kIerLineStatus) != 0;
  }
  rx_.push_back(byte);
  return (ier_ & kIerRxData) != 0;
}

uint8_t Serial8250::iir_locked() const {
  uint8_t id = kIirNone;
  if ((ier_ & kIerLineStatus) && overrun_) {
    id = kIirLineStatus;
  } else if ((ier_ & kIerRxData) && !rx_.empty()) {
    id = kIirRxData;
  } else if ((ier_ & kIerThrEmpty) && thre_pending_) {
    id = kIirThrEmpty;
  }
  return static_cast<uint8_t>(id | (fifo_enabled_ ? kIirFifoBits : 0));
}

uint8_t Serial8250::msr_locked() const {
  if (mcr_ & kMcrLoop) {
    // Loopback wires the modem outputs to the inputs (PC16550D, MCR bit 4).
    uint8_t msr = 0;
    if (mcr_ & kMcrDtr) msr |= kMsrDsr;
    if (mcr_ & kMcrRts) msr |= kMsrCts;
    if (mcr_ & kMcrOut1) msr |= kMsrRi;
    if (mcr_ & kMcrOut2) msr |= kMsrDcd;
    return msr;
  }
  return kMsrDcd | kMsrDsr | kMsrCts;  // a peer is always connected and ready
}

bool Serial8250::take_token_locked() {
  if (options_.rate_bytes_per_sec == 0) return true;
  const auto now = options_.now ? options_.now() : Clock::now();
  if (now > last_refill_) {
    const double secs = std::chrono::duration<double>(now - last_refill_).count();
    tokens_ = std::min(static_cast<double>(options_.burst_bytes),
                       tokens_ + secs * static_cast<double>(options_.rate_bytes_per_sec));
    last_refill_ = now;
  }
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

void Serial8250::watch_panic_locked(uint8_t byte) {
  if (saw_panic_) return;
  const char c = static_cast<char>(byte);
  while (panic_match_ > 0 && kPanicLine[panic_match_] != c) panic_match_ = kPanicFailure[panic_match_ - 1];
  if (kPanicLine[panic_match_] == c) ++panic_match_;
  if (panic_match_ == kPanicLine.size()) saw_panic_ = true;
}

void Serial8250::emit_locked(uint8_t byte) {
  if (out_fd_ < 0) {
    ++counters_.bytes_written;  // discarded by request
    return;
  }
  ssize_t n;
  do {
    n = ::write(out_fd_, &byte, 1);
  } while (n < 0 && errno == EINTR);
  if (n == 1) {
    ++counters_.bytes_written;
  } else {
    ++counters_.bytes_dropped;  // EAGAIN on a full non-blocking sink, or a dead sink
  }
}

void Serial8250::fire(bool raise) {
  if (raise && interrupt_) interrupt_();
}

}  // namespace kiln::vmm::legacy
