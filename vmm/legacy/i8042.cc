// I8042: controller commands and status per the IBM PS/2 8042 interface as Linux's
// drivers/input/serio/i8042 and arch/x86/kernel/reboot.c use it; no AUX (mouse) port.
#include "vmm/legacy/i8042.h"

#include <utility>

#include "vmm/arch/layout.h"

namespace kiln::vmm::legacy {
namespace {

// Status register bits.
constexpr uint8_t kStatusOutputFull = 0x01;  // OBF: a byte waits on port 0x60
constexpr uint8_t kStatusSystem = 0x04;      // SYS: mirrors CTR bit 2 (self test passed)
constexpr uint8_t kStatusCommand = 0x08;     // last write went to port 0x64
constexpr uint8_t kStatusUnlocked = 0x10;    // keyboard not inhibited
// Controller command byte (CTR) bits.
constexpr uint8_t kCtrKbdInt = 0x01;
constexpr uint8_t kCtrSystem = 0x04;
constexpr uint8_t kCtrKbdDisable = 0x10;
constexpr uint8_t kCtrAuxDisable = 0x20;
// Controller commands (port 0x64).
constexpr uint8_t kCmdReadCtr = 0x20;
constexpr uint8_t kCmdWriteCtr = 0x60;
constexpr uint8_t kCmdAuxDisable = 0xa7;
constexpr uint8_t kCmdAuxEnable = 0xa8;
constexpr uint8_t kCmdAuxTest = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdKbdTest = 0xab;
constexpr uint8_t kCmdKbdDisable = 0xad;
constexpr uint8_t kCmdKbdEnable = 0xae;
constexpr uint8_t kCmdReadInput = 0xc0;
constexpr uint8_t kCmdReadOutput = 0xd0;
constexpr uint8_t kCmdWriteOutput = 0xd1;
constexpr uint8_t kCmdKbdLoop = 0xd2;
constexpr uint8_t kCmdAuxLoop = 0xd3;
constexpr uint8_t kCmdAuxWrite = 0xd4;
constexpr uint8_t kCmdPulseFirst = 0xf0;  // 0xf0..0xff pulse output lines whose bit is 0
constexpr uint8_t kPulseResetLine = 0x01;
// Controller replies.
constexpr uint8_t kSelfTestOk = 0x55;
constexpr uint8_t kInterfaceOk = 0x00;
constexpr uint8_t kAuxClockStuckLow = 0x01;  // makes Linux conclude there is no AUX port
// Keyboard (device) commands written to port 0x60 and its replies.
constexpr uint8_t kKbdEcho = 0xee;
constexpr uint8_t kKbdGetId = 0xf2;
constexpr uint8_t kKbdReset = 0xff;
constexpr uint8_t kKbdAck = 0xfa;
constexpr uint8_t kKbdSelfTestPassed = 0xaa;
constexpr uint8_t kKbdIdMf2First = 0xab;
constexpr uint8_t kKbdIdMf2Second = 0x83;
// Scan code set 2 make codes (Firecracker's SendCtrlAltDel sequence).
constexpr uint8_t kKeyCtrl = 0x14;
constexpr uint8_t kKeyAlt = 0x11;
constexpr uint8_t kKeyExtended = 0xe0;
constexpr uint8_t kKeyDel = 0x71;

}  // namespace

I8042::I8042(Callback reset, Callback kbd_interrupt)
    : reset_(std::move(reset)), kbd_interrupt_(std::move(kbd_interrupt)), control_(kCtrKbdInt | kCtrSystem) {}

void I8042::io_read(uint16_t port, std::span<uint8_t> data) {
  for (auto& b : data) b = 0;
  if (data.size() != 1) return;
  std::lock_guard lock(mu_);
  if (port == layout::kI8042CommandPort) {
    data[0] = status_locked();
  } else if (port == layout::kI8042DataPort) {
    if (!out_.empty()) {
      data[0] = out_.front();
      out_.pop_front();
    }
  }
}

void I8042::io_write(uint16_t port, std::span<const uint8_t> data) {
  if (data.size() != 1) return;
  bool reset = false;
  bool irq = false;
  {
    std::lock_guard lock(mu_);
    if (port == layout::kI8042CommandPort) {
      last_write_was_command_ = true;
      irq = command_locked(data[0], &reset);
      if (reset) ++reset_count_;
    } else if (port == layout::kI8042DataPort) {
      last_write_was_command_ = false;
      irq = data_locked(data[0]);
    }
  }
  if (reset && reset_) reset_();
  if (irq && kbd_interrupt_) kbd_interrupt_();
}

Status I8042::trigger_ctrl_alt_del() {
  {
    std::lock_guard lock(mu_);
    if (kBufferSize - out_.size() < 4) return make_error("i8042: output buffer full");
    for (uint8_t b : {kKeyCtrl, kKeyAlt, kKeyExtended, kKeyDel}) out_.push_back(b);
    if (!kbd_irq_enabled_locked()) return ok_status();
  }
  if (kbd_interrupt_) kbd_interrupt_();
  return ok_status();
}

I8042State I8042::save() const {
  std::lock_guard lock(mu_);
  I8042State st;
  st.out.assign(out_.begin(), out_.end());
  st.control = control_;
  st.output_port = output_port_;
  st.pending_command = pending_command_;
  st.last_write_was_command = last_write_was_command_;
  return st;
}

Status I8042::restore(const I8042State& state) {
  if (state.out.size() > kBufferSize) return make_error("i8042: restored buffer exceeds its capacity");
  std::lock_guard lock(mu_);
  out_.assign(state.out.begin(), state.out.end());
  control_ = state.control;
  output_port_ = state.output_port;
  pending_command_ = state.pending_command;
  last_write_was_command_ = state.last_write_was_command;
  return ok_status();
}

uint64_t I8042::reset_count() const {
  std::lock_guard lock(mu_);
  return reset_count_;
}

uint8_t I8042::status_locked() const {
  // IBF (bit 1) is never set: commands are consumed synchronously, so Linux's kb_wait() and
  // i8042_wait_write() never spin.
  uint8_t s = kStatusUnlocked;
  if (!out_.empty()) s |= kStatusOutputFull;
  if (control_ & kCtrSystem) s |= kStatusSystem;
  if (last_write_was_command_) s |= kStatusCommand;
  return s;
}

bool I8042::command_locked(uint8_t cmd, bool* reset) {
  pending_command_ = 0;
  if (cmd >= kCmdPulseFirst) {
    // Pulse output port lines 0..3 low for those bits that are 0 in the command; line 0 is
    // the CPU reset (0xfe is the canonical "reset the machine").
    if ((cmd & kPulseResetLine) == 0) *reset = true;
    return false;
  }
  switch (cmd) {
    case kCmdReadCtr:
      respond_locked({control_});
      break;
    case kCmdWriteCtr:
    case kCmdWriteOutput:
    case kCmdKbdLoop:
    case kCmdAuxLoop:
    case kCmdAuxWrite:
      pending_command_ = cmd;  // the parameter follows on port 0x60
      break;
    case kCmdAuxDisable:
      control_ |= kCtrAuxDisable;
      break;
    case kCmdAuxEnable:
      control_ &= static_cast<uint8_t>(~kCtrAuxDisable);
      break;
    case kCmdAuxTest:
      respond_locked({kAuxClockStuckLow});
      break;
    case kCmdSelfTest:
      control_ |= kCtrSystem;
      respond_locked({kSelfTestOk});
      break;
    case kCmdKbdTest:
      respond_locked({kInterfaceOk});
      break;
    case kCmdKbdDisable:
      control_ |= kCtrKbdDisable;
      break;
    case kCmdKbdEnable:
      control_ &= static_cast<uint8_t>(~kCtrKbdDisable);
      break;
    case kCmdReadInput:
      respond_locked({0x00});
      break;
    case kCmdReadOutput:
      respond_locked({output_port_});
      break;
    default:
      // 0x21..0x3f (read controller RAM) answer 0; anything else is ignored.
      if (cmd > kCmdReadCtr && cmd < 0x40) respond_locked({0x00});
      else if (cmd > kCmdWriteCtr && cmd < 0x80) pending_command_ = cmd;  // RAM write: discarded
      break;
  }
  return false;
}

bool I8042::data_locked(uint8_t value) {
  const uint8_t cmd = pending_command_;
  pending_command_ = 0;
  switch (cmd) {
    case 0:
      return keyboard_command_locked(value);
    case kCmdWriteCtr:
      control_ = value;
      return false;
    case kCmdWriteOutput:
      // Only the 0xfe pulse resets; a written reset bit is stored, not acted upon.
      output_port_ = value;
      return false;
    case kCmdKbdLoop:
      respond_locked({value});
      return false;
    case kCmdAuxLoop:
      // Echoed without the AUX-data status bit (0x20): Linux's i8042_check_aux() then
      // decides quickly that there is no AUX port instead of waiting for a timeout.
      respond_locked({value});
      return false;
    default:  // kCmdAuxWrite and RAM writes: no device behind them
      return false;
  }
}

bool I8042::keyboard_command_locked(uint8_t value) {
  // A byte on port 0x60 with no pending controller command goes to the keyboard itself.
  switch (value) {
    case kKbdReset:
      respond_locked({kKbdAck, kKbdSelfTestPassed});
      break;
    case kKbdGetId:
      respond_locked({kKbdAck, kKbdIdMf2First, kKbdIdMf2Second});
      break;
    case kKbdEcho:
      respond_locked({kKbdEcho});
      break;
    default:  // set LEDs, typematic, scan set, enable/disable scanning and their arguments
      respond_locked({kKbdAck});
      break;
  }
  return kbd_irq_enabled_locked();
}

void I8042::respond_locked(std::initializer_list<uint8_t> bytes) {
  // A new reply replaces anything unread, so the guest always reads the answer to its last
  // command first (as Firecracker's i8042 does).
  out_.clear();
  for (uint8_t b : bytes) out_.push_back(b);
}

bool I8042::kbd_irq_enabled_locked() const {
  return (control_ & kCtrKbdInt) != 0 && (control_ & kCtrKbdDisable) == 0;
}

}  // namespace kiln::vmm::legacy
