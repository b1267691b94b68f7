// I8042: the minimal PS/2 keyboard controller kiln-vmm needs (as Firecracker's i8042 device):
// the guest's reset pulse (command 0xFE on port 0x64) ends the VM, Linux's probe terminates,
// and SendCtrlAltDel can inject Ctrl+Alt+Del scancodes.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <span>
#include <vector>

#include "common/result.h"

namespace kiln::vmm::legacy {

// Guest-visible controller state for snapshots.
struct I8042State {
  std::vector<uint8_t> out;  // unread bytes, oldest first
  uint8_t control = 0x05;
  uint8_t output_port = 0x03;
  uint8_t pending_command = 0;
  bool last_write_was_command = false;
};

class I8042 {
 public:
  using Callback = std::function<void()>;

  static constexpr size_t kBufferSize = 16;  // output buffer towards the guest (bytes)

  // reset: called (without the lock held) each time the guest pulses the CPU reset line.
  // kbd_interrupt: called when a keyboard byte is queued and the command byte enables the
  // keyboard interrupt; the caller turns it into an edge on GSI 1. Either may be empty.
  explicit I8042(Callback reset, Callback kbd_interrupt = {});

  I8042(const I8042&) = delete;
  I8042& operator=(const I8042&) = delete;

  // Guest port I/O on the absolute ports layout::kI8042DataPort (0x60) and
  // layout::kI8042CommandPort (0x64). Other ports and accesses wider than one byte read as
  // zeros / are ignored.
  void io_read(uint16_t port, std::span<uint8_t> data);
  void io_write(uint16_t port, std::span<const uint8_t> data);

  // Queues the PS/2 scan code set 2 make codes for Ctrl, Alt and Del (as Firecracker's
  // SendCtrlAltDel) and raises the keyboard interrupt. Fails when the buffer lacks room.
  Status trigger_ctrl_alt_del();

  // Snapshot support; restore() refuses an oversized buffer and then changes nothing.
  I8042State save() const;
  Status restore(const I8042State& state);

  uint64_t reset_count() const;

 private:
  uint8_t status_locked() const;
  // Each returns whether the keyboard interrupt must be raised; *reset is set on a reset pulse.
  bool command_locked(uint8_t cmd, bool* reset);
  bool data_locked(uint8_t value);
  bool keyboard_command_locked(uint8_t value);
  void respond_locked(std::initializer_list<uint8_t> bytes);
  bool kbd_irq_enabled_locked() const;

  const Callback reset_;
  const Callback kbd_interrupt_;

  mutable std::mutex mu_;
  std::deque<uint8_t> out_;      // bytes the guest reads from port 0x60
  uint8_t control_;              // controller command byte ("CTR")
  uint8_t output_port_ = 0x03;   // reset line high, A20 enabled
  uint8_t pending_command_ = 0;  // controller command waiting for its data byte, or 0
  bool last_write_was_command_ = false;
  uint64_t reset_count_ = 0;
};

}  // namespace kiln::vmm::legacy
