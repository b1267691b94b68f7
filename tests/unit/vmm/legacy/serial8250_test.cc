// Serial8250: 16550A register semantics, THR-empty/RX interrupts, loopback, output rate
// limiting and panic detection across split writes.
#include "vmm/legacy/serial8250.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>

namespace kiln::vmm::legacy {
namespace {

constexpr uint16_t kThr = Serial8250::kRegData;
constexpr uint16_t kIer = Serial8250::kRegIer;
constexpr uint16_t kIir = Serial8250::kRegIir;
constexpr uint16_t kLcr = Serial8250::kRegLcr;
constexpr uint16_t kMcr = Serial8250::kRegMcr;
constexpr uint16_t kLsr = Serial8250::kRegLsr;
constexpr uint16_t kMsr = Serial8250::kRegMsr;
constexpr uint16_t kScr = Serial8250::kRegScr;

uint8_t rd(Serial8250& s, uint16_t off) {
  uint8_t v = 0xaa;
  s.io_read(off, std::span<uint8_t>(&v, 1));
  return v;
}
void wr(Serial8250& s, uint16_t off, uint8_t v) { s.io_write(off, std::span<const uint8_t>(&v, 1)); }
void wr_str(Serial8250& s, std::string_view text) {
  for (char c : text) wr(s, kThr, static_cast<uint8_t>(c));
}

// A pipe whose read end collects what the UART wrote.
struct Pipe {
  Pipe() {
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  std::string drain() {
    std::string out;
    std::array<char, 4096> buf;
    ssize_t n;
    while ((n = ::read(fds[0], buf.data(), buf.size())) > 0) out.append(buf.data(), static_cast<size_t>(n));
    return out;
  }
  int fds[2] = {-1, -1};
};

TEST(Serial8250, WritesThrToOutputFd) {
  Pipe p;
  Serial8250 s(p.fds[1], nullptr);
  wr_str(s, "hello\n");
  EXPECT_EQ(p.drain(), "hello\n");
  EXPECT_EQ(s.bytes_written(), 6u);
  EXPECT_EQ(s.bytes_dropped(), 0u);
}

TEST(Serial8250, DiscardFdCountsButWritesNothing) {
  Serial8250 s(-1, nullptr);
  wr_str(s, "abc");
  EXPECT_EQ(s.bytes_written(), 3u);
}

TEST(Serial8250, DlabSwitchesDivisorLatches) {
  Pipe p;
  Serial8250 s(p.fds[1], nullptr);
  wr(s, kIer, 0x05);
  wr(s, kLcr, 0x83);  // DLAB + 8N1
  EXPECT_EQ(rd(s, kThr), 0x0c);  // default divisor 12 (9600 baud)
  wr(s, kThr, 0x01);             // DLL, not THR
  wr(s, kIer, 0x02);             // DLM, not IER
  EXPECT_EQ(rd(s, kThr), 0x01);
  EXPECT_EQ(rd(s, kIer), 0x02);
  wr(s, kLcr, 0x03);
  EXPECT_EQ(rd(s, kLcr), 0x03);
  EXPECT_EQ(rd(s, kIer), 0x05);  // IER untouched by the DLM write
  EXPECT_EQ(p.drain(), "");      // the DLL write did not transmit
  wr(s, kLcr, 0x83);
  EXPECT_EQ(rd(s, kThr), 0x01);
  EXPECT_EQ(rd(s, kIer), 0x02);
}

TEST(Serial8250, IerKeepsLowNibbleAndScratchIsStorage) {
  Serial8250 s(-1, nullptr);
  wr(s, kIer, 0xff);
  EXPECT_EQ(rd(s, kIer), 0x0f);  // Linux's autoconfig checks exactly this
  wr(s, kIer, 0x00);
  EXPECT_EQ(rd(s, kIer), 0x00);
  wr(s, kScr, 0x5a);
  EXPECT_EQ(rd(s, kScr), 0x5a);
  wr(s, kMcr, 0xff);
  EXPECT_EQ(rd(s, kMcr), 0x1f);
}

TEST(Serial8250, IdleRegisters) {
  Serial8250 s(-1, nullptr);
  EXPECT_EQ(rd(s, kIir), 0x01);  // nothing pending, FIFOs off
  EXPECT_EQ(rd(s, kLsr), 0x60);  // THRE + TEMT, no data
  EXPECT_EQ(rd(s, kMsr), 0xb0);  // DCD, DSR, CTS
  EXPECT_EQ(rd(s, kThr), 0x00);  // empty RBR
  wr(s, kIir, 0x01);             // FCR: enable FIFOs
  EXPECT_EQ(rd(s, kIir), 0xc1);  // 16550A: IIR bits 7..6 set
}

TEST(Serial8250, EnablingThrEmptyInterruptRaisesItUntilIirRead) {
  int irqs = 0;
  Serial8250 s(-1, [&] { ++irqs; });
  wr(s, kIer, 0x02);
  EXPECT_EQ(irqs, 1);
  EXPECT_EQ(rd(s, kIir), 0x02);
  EXPECT_EQ(rd(s, kIir), 0x01);  // reading IIR cleared it
  // Linux's THRE test: disable, re-enable, and the interrupt must be back at once.
  wr(s, kIer, 0x00);
  EXPECT_EQ(rd(s, kIir), 0x01);
  wr(s, kIer, 0x02);
  EXPECT_EQ(irqs, 2);
  EXPECT_EQ(rd(s, kIir), 0x02);
}

TEST(Serial8250, ThrWriteReLatchesThrEmptyAndFires) {
  int irqs = 0;
  Pipe p;
  Serial8250 s(p.fds[1], [&] { ++irqs; });
  wr(s, kIer, 0x02);
  EXPECT_EQ(rd(s, kIir), 0x02);
  wr(s, kThr, 'x');
  EXPECT_EQ(irqs, 2);
  EXPECT_EQ(rd(s, kIir), 0x02);
  EXPECT_EQ(rd(s, kIir), 0x01);
  // Disabling ETBEI drops a latched interrupt; writes no longer fire.
  wr(s, kThr, 'y');
  wr(s, kIer, 0x00);
  EXPECT_EQ(rd(s, kIir), 0x01);
  wr(s, kThr, 'z');
  EXPECT_EQ(irqs, 3);
  EXPECT_EQ(p.drain(), "xyz");
}

TEST(Serial8250, NoInterruptsWithoutEnable) {
  int irqs = 0;
  Serial8250 s(-1, [&] { ++irqs; });
  wr_str(s, "abc");
  EXPECT_EQ(s.enqueue_input(std::array<uint8_t, 2>{'a', 'b'}), 2u);
  EXPECT_EQ(irqs, 0);
  EXPECT_EQ(rd(s, kIir), 0x01);
}

TEST(Serial8250, ReceiveDataReadyAndInterrupt) {
  int irqs = 0;
  Serial8250 s(-1, [&] { ++irqs; });
  wr(s, kIer, 0x01);
  EXPECT_EQ(irqs, 0);
  EXPECT_EQ(s.enqueue_input(std::array<uint8_t, 2>{'o', 'k'}), 2u);
  EXPECT_EQ(irqs, 1);
  EXPECT_EQ(rd(s, kLsr) & 0x01, 0x01);
  EXPECT_EQ(rd(s, kIir), 0x04);
  EXPECT_EQ(rd(s, kThr), 'o');
  EXPECT_EQ(rd(s, kIir), 0x04);  // still data
  EXPECT_EQ(rd(s, kThr), 'k');
  EXPECT_EQ(rd(s, kIir), 0x01);
  EXPECT_EQ(rd(s, kLsr) & 0x01, 0x00);
  EXPECT_EQ(s.counters().bytes_received, 2u);
}

TEST(Serial8250, RxDataHasPriorityOverThrEmpty) {
  Serial8250 s(-1, nullptr);
  wr(s, kIer, 0x03);
  EXPECT_EQ(s.enqueue_input(std::array<uint8_t, 1>{'q'}), 1u);
  EXPECT_EQ(rd(s, kIir), 0x04);
  EXPECT_EQ(rd(s, kThr), 'q');
  EXPECT_EQ(rd(s, kIir), 0x02);  // THR-empty was not lost behind RX
  EXPECT_EQ(rd(s, kIir), 0x01);
}

TEST(Serial8250, InputFifoIsBoundedAndFcrClearsIt) {
  Serial8250::Options o;
  o.rx_fifo_capacity = 4;
  Serial8250 s(-1, nullptr, o);
  std::array<uint8_t, 10> in{};
  EXPECT_EQ(s.enqueue_input(in), 4u);
  EXPECT_EQ(s.rx_space(), 0u);
  EXPECT_EQ(s.enqueue_input(in), 0u);
  wr(s, kIir, 0x03);  // FCR: enable + clear RX
  EXPECT_EQ(s.rx_space(), 4u);
  EXPECT_EQ(rd(s, kLsr) & 0x01, 0x00);
}

TEST(Serial8250, LoopbackRoutesThrToRbrAndModemLines) {
  int irqs = 0;
  Pipe p;
  Serial8250 s(p.fds[1], [&] { ++irqs; });
  // Linux's autoconfig loopback test: MCR = LOOP | OUT2 | RTS -> MSR high nibble 0x90.
  wr(s, kMcr, 0x1a);
  EXPECT_EQ(rd(s, kMsr) & 0xf0, 0x90);
  wr(s, kMcr, 0x1f);
  EXPECT_EQ(rd(s, kMsr) & 0xf0, 0xf0);
  wr(s, kMcr, 0x10);
  EXPECT_EQ(rd(s, kMsr) & 0xf0, 0x00);
  wr(s, kIer, 0x01);
  wr(s, kThr, 'L');
  EXPECT_EQ(irqs, 1);
  EXPECT_EQ(rd(s, kLsr) & 0x01, 0x01);
  EXPECT_EQ(rd(s, kThr), 'L');
  EXPECT_EQ(p.drain(), "");  // nothing left the UART
  EXPECT_EQ(s.bytes_written(), 0u);
  wr(s, kMcr, 0x0b);
  wr(s, kThr, 'O');
  EXPECT_EQ(p.drain(), "O");
}

TEST(Serial8250, LoopbackOverrunSetsLsrOe) {
  Serial8250::Options o;
  o.rx_fifo_capacity = 2;
  int irqs = 0;
  Serial8250 s(-1, [&] { ++irqs; }, o);
  wr(s, kMcr, 0x10);
  wr(s, kIer, 0x04);  // line status interrupts only
  wr_str(s, "abc");
  EXPECT_EQ(irqs, 1);
  EXPECT_EQ(rd(s, kIir), 0x06);
  EXPECT_EQ(rd(s, kLsr), 0x63);  // DR + OE + THRE + TEMT
  EXPECT_EQ(rd(s, kLsr), 0x61);  // OE cleared by the read
  EXPECT_EQ(rd(s, kIir), 0x01);
}

TEST(Serial8250, WideAndOutOfRangeAccessesAreHarmless) {
  Pipe p;
  Serial8250 s(p.fds[1], nullptr);
  std::array<uint8_t, 4> wide{'a', 'b', 'c', 'd'};
  s.io_write(kThr, wide);
  s.io_write(9, std::span<const uint8_t>(wide.data(), 1));
  s.io_write(kThr, std::span<const uint8_t>());
  std::array<uint8_t, 2> r{0xff, 0xff};
  s.io_read(kLsr, r);
  EXPECT_EQ(r[0], 0);
  EXPECT_EQ(r[1], 0);
  s.io_read(200, std::span<uint8_t>(r.data(), 1));
  EXPECT_EQ(r[0], 0);
  s.io_read(kLsr, std::span<uint8_t>());
  EXPECT_EQ(p.drain(), "");
}

TEST(Serial8250, RateLimitDropsAndCountsExcess) {
  Serial8250::Clock::time_point now{};
  Serial8250::Options o;
  o.rate_bytes_per_sec = 10;
  o.burst_bytes = 4;
  o.now = [&] { return now; };
  Pipe p;
  Serial8250 s(p.fds[1], nullptr, o);
  wr_str(s, "0123456789");
  EXPECT_EQ(p.drain(), "0123");
  EXPECT_EQ(s.bytes_written(), 4u);
  EXPECT_EQ(s.bytes_dropped(), 6u);
  now += std::chrono::milliseconds(200);  // 2 tokens
  wr_str(s, "abc");
  EXPECT_EQ(p.drain(), "ab");
  EXPECT_EQ(s.bytes_dropped(), 7u);
  now += std::chrono::hours(1);  // refill caps at the burst
  wr_str(s, "ABCDEFG");
  EXPECT_EQ(p.drain(), "ABCD");
  EXPECT_EQ(s.bytes_written(), 10u);
  EXPECT_EQ(s.bytes_dropped(), 10u);
}

TEST(Serial8250, RateZeroMeansUnlimited) {
  Serial8250::Options o;
  o.rate_bytes_per_sec = 0;
  o.burst_bytes = 0;
  Serial8250 s(-1, nullptr, o);
  wr_str(s, std::string(5000, 'x'));
  EXPECT_EQ(s.bytes_written(), 5000u);
  EXPECT_EQ(s.bytes_dropped(), 0u);
}

TEST(Serial8250, FullSinkDropsInsteadOfBlocking) {
  Pipe p;
  ASSERT_GE(::fcntl(p.fds[1], F_SETPIPE_SZ, 4096), 0);
  Serial8250::Options o;
  o.rate_bytes_per_sec = 0;
  Serial8250 s(p.fds[1], nullptr, o);
  wr_str(s, std::string(70000, 'x'));  // larger than any pipe buffer
  EXPECT_GT(s.bytes_dropped(), 0u);
  EXPECT_EQ(s.bytes_written() + s.bytes_dropped(), 70000u);
}

TEST(Serial8250, PanicDetectedAcrossSplitWrites) {
  Serial8250 s(-1, nullptr);
  wr_str(s, "[    1.0] Kernel pan");
  EXPECT_FALSE(s.saw_panic());
  wr_str(s, "ic - not sync");
  EXPECT_FALSE(s.saw_panic());
  wr_str(s, "ing: VFS: Unable to mount root fs\n");
  EXPECT_TRUE(s.saw_panic());
}

TEST(Serial8250, PanicMatcherHandlesOverlapsAndNearMisses) {
  Serial8250 a(-1, nullptr);
  wr_str(a, "Kernel panic - not syncin Kernel panic - not synching\nKernel panic");
  EXPECT_FALSE(a.saw_panic());
  // A restart of the pattern inside a partial match ("KKernel").
  Serial8250 b(-1, nullptr);
  wr_str(b, "KKernel panic - not syncing");
  EXPECT_TRUE(b.saw_panic());
}

TEST(Serial8250, PanicSeenEvenWhenRateLimited) {
  Serial8250::Clock::time_point now{};
  Serial8250::Options o;
  o.rate_bytes_per_sec = 1;
  o.burst_bytes = 1;
  o.now = [&] { return now; };
  Serial8250 s(-1, nullptr, o);
  wr_str(s, "Kernel panic - not syncing");
  EXPECT_GT(s.bytes_dropped(), 0u);
  EXPECT_TRUE(s.saw_panic());
}

TEST(Serial8250, PanicNotSeenInLoopback) {
  Serial8250 s(-1, nullptr);
  wr(s, kMcr, 0x10);
  wr_str(s, "Kernel panic - not syncing");
  EXPECT_FALSE(s.saw_panic());
}

TEST(Serial8250, SaveRestoreRoundTripsGuestState) {
  Serial8250 a(-1, nullptr);
  wr(a, kLcr, 0x83);
  wr(a, kThr, 0x03);
  wr(a, kLcr, 0x1b);
  wr(a, kIer, 0x03);
  wr(a, kScr, 0x77);
  wr(a, kIir, 0x01);
  EXPECT_EQ(a.enqueue_input(std::array<uint8_t, 3>{'x', 'y', 'z'}), 3u);
  Serial8250State st = a.save();

  int irqs = 0;
  Serial8250 b(-1, [&] { ++irqs; });
  ASSERT_TRUE(b.restore(st).ok());
  EXPECT_EQ(irqs, 0);  // restoring does not inject interrupts
  EXPECT_EQ(rd(b, kLcr), 0x1b);
  EXPECT_EQ(rd(b, kIer), 0x03);
  EXPECT_EQ(rd(b, kScr), 0x77);
  EXPECT_EQ(rd(b, kIir), 0xc4);
  EXPECT_EQ(rd(b, kThr), 'x');
  EXPECT_EQ(rd(b, kThr), 'y');
  EXPECT_EQ(rd(b, kThr), 'z');
  EXPECT_EQ(rd(b, kIir), 0xc2);
  wr(b, kLcr, 0x9b);
  EXPECT_EQ(rd(b, kThr), 0x03);
}

TEST(Serial8250, RestoreRefusesInvalidState) {
  Serial8250::Options o;
  o.rx_fifo_capacity = 2;
  Serial8250 s(-1, nullptr, o);
  wr(s, kScr, 0x11);
  Serial8250State bad;
  bad.rx = {1, 2, 3};
  EXPECT_FALSE(s.restore(bad).ok());
  bad.rx.clear();
  bad.ier = 0x80;
  EXPECT_FALSE(s.restore(bad).ok());
  bad.ier = 0;
  bad.mcr = 0xe0;
  EXPECT_FALSE(s.restore(bad).ok());
  EXPECT_EQ(rd(s, kScr), 0x11);  // unchanged after refusals
}

}  // namespace
}  // namespace kiln::vmm::legacy
