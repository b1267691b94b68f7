// I8042: reset pulse, Linux's probe sequence (driven the way i8042.c polls it), keyboard
// replies and interrupts, Ctrl+Alt+Del injection, hostile accesses.
#include "vmm/legacy/i8042.h"

#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <vector>

#include "vmm/arch/layout.h"

namespace kiln::vmm::legacy {
namespace {

constexpr uint16_t kData = layout::kI8042DataPort;
constexpr uint16_t kCmd = layout::kI8042CommandPort;
constexpr uint8_t kObf = 0x01;
constexpr uint8_t kIbf = 0x02;

uint8_t rd(I8042& k, uint16_t port) {
  uint8_t v = 0xaa;
  k.io_read(port, std::span<uint8_t>(&v, 1));
  return v;
}
void wr(I8042& k, uint16_t port, uint8_t v) { k.io_write(port, std::span<const uint8_t>(&v, 1)); }

// Linux's i8042_command(): wait for !IBF, write the command, write params, then poll OBF for
// each reply byte with a bounded number of tries (the driver's timeout).
std::optional<std::vector<uint8_t>> command(I8042& k, uint8_t cmd, std::vector<uint8_t> params,
                                            size_t replies) {
  if (rd(k, kCmd) & kIbf) return std::nullopt;
  wr(k, kCmd, cmd);
  for (uint8_t p : params) {
    if (rd(k, kCmd) & kIbf) return std::nullopt;
    wr(k, kData, p);
  }
  std::vector<uint8_t> out;
  for (size_t i = 0; i < replies; ++i) {
    int tries = 0;
    while (!(rd(k, kCmd) & kObf)) {
      if (++tries > 100) return std::nullopt;
    }
    out.push_back(rd(k, kData));
  }
  return out;
}

TEST(I8042, ResetPulseCallsResetCallback) {
  int resets = 0;
  I8042 k([&] { ++resets; });
  // arch/x86/kernel/reboot.c: kb_wait() (IBF clear) then outb(0xfe, 0x64).
  EXPECT_EQ(rd(k, kCmd) & kIbf, 0);
  wr(k, kCmd, 0xfe);
  EXPECT_EQ(resets, 1);
  EXPECT_EQ(k.reset_count(), 1u);
  wr(k, kCmd, 0xff);  // pulses no line: not a reset
  wr(k, kCmd, 0xfd);
  EXPECT_EQ(resets, 1);
  wr(k, kCmd, 0xf0);  // pulses all four lines, including reset
  EXPECT_EQ(resets, 2);
  wr(k, kData, 0xfe);  // 0xfe on the data port is a keyboard byte, not a reset
  EXPECT_EQ(resets, 2);
}

TEST(I8042, ResetWithoutCallbackIsHarmless) {
  I8042 k(nullptr);
  wr(k, kCmd, 0xfe);
  EXPECT_EQ(k.reset_count(), 1u);
}

TEST(I8042, IdleStatusHasNothingPending) {
  I8042 k(nullptr);
  uint8_t s = rd(k, kCmd);
  EXPECT_NE(s, 0xff);  // 0xff means "no controller" to Linux
  EXPECT_EQ(s & (kObf | kIbf), 0);
  EXPECT_EQ(rd(k, kData), 0);
}

TEST(I8042, LinuxProbeSequenceTerminates) {
  int resets = 0, irqs = 0;
  I8042 k([&] { ++resets; }, [&] { ++irqs; });
  // i8042_flush(): drain while OBF, bounded.
  for (int i = 0; i < 16 && (rd(k, kCmd) & kObf); ++i) rd(k, kData);
  EXPECT_EQ(rd(k, kCmd) & kObf, 0);
  // i8042_controller_selftest(): 0xaa -> 0x55.
  auto st = command(k, 0xaa, {}, 1);
  ASSERT_TRUE(st);
  EXPECT_EQ((*st)[0], 0x55);
  // i8042_controller_init(): read CTR until two reads agree, disable both ports, write back.
  auto c1 = command(k, 0x20, {}, 1);
  auto c2 = command(k, 0x20, {}, 1);
  ASSERT_TRUE(c1 && c2);
  EXPECT_EQ(*c1, *c2);
  uint8_t ctr = (*c1)[0];
  EXPECT_TRUE(ctr & 0x04);  // system flag
  ASSERT_TRUE(command(k, 0x60, {static_cast<uint8_t>((ctr | 0x30) & ~0x03)}, 0));
  auto c3 = command(k, 0x20, {}, 1);
  ASSERT_TRUE(c3);
  EXPECT_EQ((*c3)[0], static_cast<uint8_t>((ctr | 0x30) & ~0x03));
  // i8042_check_aux(): AUX loop reply lacks the AUX-data bit, AUX test reports an error.
  ASSERT_TRUE(command(k, 0xd3, {0x5a}, 0));
  ASSERT_TRUE(rd(k, kCmd) & kObf);
  EXPECT_EQ(rd(k, kCmd) & 0x20, 0);
  EXPECT_EQ(rd(k, kData), 0x5a);
  auto aux = command(k, 0xa9, {}, 1);
  ASSERT_TRUE(aux);
  EXPECT_NE((*aux)[0], 0x00);
  EXPECT_NE((*aux)[0], 0xfa);
  EXPECT_NE((*aux)[0], 0xff);
  // Keyboard port: interface test, loop, disable/enable via the command byte bits.
  auto kt = command(k, 0xab, {}, 1);
  ASSERT_TRUE(kt);
  EXPECT_EQ((*kt)[0], 0x00);
  auto loop = command(k, 0xd2, {0xa5}, 1);
  ASSERT_TRUE(loop);
  EXPECT_EQ((*loop)[0], 0xa5);
  ASSERT_TRUE(command(k, 0xad, {}, 0));
  EXPECT_TRUE((*command(k, 0x20, {}, 1))[0] & 0x10);
  ASSERT_TRUE(command(k, 0xae, {}, 0));
  EXPECT_FALSE((*command(k, 0x20, {}, 1))[0] & 0x10);
  ASSERT_TRUE(command(k, 0xa7, {}, 0));
  EXPECT_TRUE((*command(k, 0x20, {}, 1))[0] & 0x20);
  ASSERT_TRUE(command(k, 0xa8, {}, 0));
  EXPECT_FALSE((*command(k, 0x20, {}, 1))[0] & 0x20);
  // Output port read/write.
  ASSERT_TRUE(command(k, 0xd1, {0xdf}, 0));
  EXPECT_EQ((*command(k, 0xd0, {}, 1))[0], 0xdf);
  EXPECT_EQ(resets, 0);
  EXPECT_EQ(irqs, 0);  // controller replies are polled, never interrupts
  EXPECT_EQ(rd(k, kCmd) & kObf, 0);
}

TEST(I8042, StatusTracksCommandVersusDataWrites) {
  I8042 k(nullptr);
  wr(k, kCmd, 0xad);
  EXPECT_TRUE(rd(k, kCmd) & 0x08);
  wr(k, kData, 0xf4);
  EXPECT_FALSE(rd(k, kCmd) & 0x08);
}

TEST(I8042, KeyboardCommandsAreAnsweredWithInterrupt) {
  int irqs = 0;
  I8042 k(nullptr, [&] { ++irqs; });
  wr(k, kData, 0xff);  // keyboard reset
  EXPECT_EQ(irqs, 1);
  EXPECT_EQ(rd(k, kData), 0xfa);
  EXPECT_EQ(rd(k, kData), 0xaa);
  EXPECT_EQ(rd(k, kCmd) & kObf, 0);
  wr(k, kData, 0xf2);  // get ID: MF2 keyboard
  EXPECT_EQ(rd(k, kData), 0xfa);
  EXPECT_EQ(rd(k, kData), 0xab);
  EXPECT_EQ(rd(k, kData), 0x83);
  wr(k, kData, 0xed);  // set LEDs + argument
  EXPECT_EQ(rd(k, kData), 0xfa);
  wr(k, kData, 0x02);
  EXPECT_EQ(rd(k, kData), 0xfa);
  EXPECT_EQ(irqs, 4);
  // With the keyboard interrupt off in the command byte, no interrupt.
  wr(k, kCmd, 0x60);
  wr(k, kData, 0x44);
  wr(k, kData, 0xf4);
  EXPECT_EQ(irqs, 4);
  EXPECT_EQ(rd(k, kData), 0xfa);
}

TEST(I8042, CtrlAltDelQueuesScancodesAndFailsWhenFull) {
  int irqs = 0;
  I8042 k(nullptr, [&] { ++irqs; });
  ASSERT_TRUE(k.trigger_ctrl_alt_del().ok());
  EXPECT_EQ(irqs, 1);
  std::vector<uint8_t> got;
  while (rd(k, kCmd) & kObf) got.push_back(rd(k, kData));
  EXPECT_EQ(got, (std::vector<uint8_t>{0x14, 0x11, 0xe0, 0x71}));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(k.trigger_ctrl_alt_del().ok());
  EXPECT_FALSE(k.trigger_ctrl_alt_del().ok());  // 16-byte buffer
  EXPECT_EQ(irqs, 5);
}

TEST(I8042, HostileAccessesAreIgnored) {
  int resets = 0;
  I8042 k([&] { ++resets; });
  std::array<uint8_t, 4> wide{0xfe, 0xfe, 0xfe, 0xfe};
  k.io_write(kCmd, wide);  // only byte accesses count
  k.io_write(kCmd, std::span<const uint8_t>());
  k.io_write(0x61, std::span<const uint8_t>(wide.data(), 1));
  EXPECT_EQ(resets, 0);
  std::array<uint8_t, 2> r{0xff, 0xff};
  k.io_read(kCmd, r);
  EXPECT_EQ(r[0], 0);
  EXPECT_EQ(r[1], 0);
  k.io_read(0x65, std::span<uint8_t>(r.data(), 1));
  EXPECT_EQ(r[0], 0);
  // Unknown commands and RAM accesses leave the controller usable.
  wr(k, kCmd, 0x21);
  EXPECT_EQ(rd(k, kData), 0x00);
  wr(k, kCmd, 0x7f);
  wr(k, kData, 0x12);
  wr(k, kCmd, 0xc8);
  auto st = command(k, 0xaa, {}, 1);
  ASSERT_TRUE(st);
  EXPECT_EQ((*st)[0], 0x55);
  // Flooding the keyboard never grows the buffer past its bound.
  for (int i = 0; i < 1000; ++i) wr(k, kData, 0xf2);
  int n = 0;
  while ((rd(k, kCmd) & kObf) && n < 100) {
    rd(k, kData);
    ++n;
  }
  EXPECT_LE(n, static_cast<int>(I8042::kBufferSize));
}

TEST(I8042, SaveRestoreRoundTripsState) {
  I8042 a(nullptr);
  wr(a, kCmd, 0xad);       // keyboard disabled in the command byte
  wr(a, kCmd, 0xd1);       // output-port write pending across the snapshot
  I8042State st = a.save();
  ASSERT_TRUE(a.trigger_ctrl_alt_del().ok());
  st.out = a.save().out;

  int resets = 0;
  I8042 b([&] { ++resets; });
  ASSERT_TRUE(b.restore(st).ok());
  wr(b, kData, 0x5c);  // completes the pending 0xd1
  EXPECT_EQ(rd(b, kData), 0x14);  // restored scancodes still readable
  while (rd(b, kCmd) & kObf) rd(b, kData);
  EXPECT_EQ((*command(b, 0xd0, {}, 1))[0], 0x5c);
  EXPECT_TRUE((*command(b, 0x20, {}, 1))[0] & 0x10);
  EXPECT_EQ(resets, 0);
}

TEST(I8042, RestoreRefusesOversizedBuffer) {
  I8042 k(nullptr);
  I8042State bad;
  bad.out.assign(I8042::kBufferSize + 1, 0x00);
  EXPECT_FALSE(k.restore(bad).ok());
  EXPECT_EQ(rd(k, kCmd) & kObf, 0);
}

}  // namespace
}  // namespace kiln::vmm::legacy
