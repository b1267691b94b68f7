// KVM self-test implementation (guest code in selftest_guest.S).
#include "vmm/kvm/selftest.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "vmm/kvm/kvm.h"

extern "C" const uint8_t kiln_selftest_guest_start[];
extern "C" const uint8_t kiln_selftest_guest_end[];
extern "C" const uint8_t kiln_selftest_guest_lstar[];

namespace kiln::vmm {
namespace {

constexpr uint64_t kMemSize = 0x100000;  // 1 MiB of guest RAM at 0
constexpr uint64_t kGdt = 0x1000, kTss = 0x3000, kPml4 = 0x4000, kPdpt = 0x5000, kPd = 0x6000;
constexpr uint64_t kCode = 0x8000, kKernelStack = 0x7ff0;
constexpr uint64_t kMmio = 0x1ff000;
constexpr uint32_t kMsrStar = 0xc0000081, kMsrLstar = 0xc0000082, kMsrSfmask = 0xc0000084;

void put64(MappedRegion& mem, uint64_t gpa, uint64_t v) {
  if (gpa + sizeof v <= mem.size()) std::memcpy(mem.data() + gpa, &v, sizeof v);
}

kvm_segment segment(uint16_t selector, uint8_t type, uint8_t dpl, bool code64) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = dpl;
  s.db = code64 ? 0 : 1;
  s.s = 1;
  s.l = code64 ? 1 : 0;
  s.g = 1;
  return s;
}

Status setup_guest(Vm& vm, Vcpu& vcpu, MappedRegion& mem, const CpuidTable& cpuid) {
  size_t code_len = static_cast<size_t>(kiln_selftest_guest_end - kiln_selftest_guest_start);
  if (kCode + code_len > mem.size()) return make_error("self-test guest code too large");
  std::memcpy(mem.data() + kCode, kiln_selftest_guest_start, code_len);
  // GDT: null, kernel code64 (0x08), kernel data (0x10), unused (0x18), user data (0x20),
  // user code64 (0x28): the order SYSCALL/SYSRET expect from STAR.
  const uint64_t gdt[] = {0, 0x00af9b000000ffff, 0x00cf93000000ffff, 0, 0x00cff3000000ffff,
                          0x00affb000000ffff};
  for (size_t i = 0; i < std::size(gdt); ++i) put64(mem, kGdt + i * 8, gdt[i]);
  // Identity map of the first 2 MiB with one user-accessible, writable 2 MiB page.
  put64(mem, kPml4, kPdpt | 0x7);
  put64(mem, kPdpt, kPd | 0x7);
  put64(mem, kPd, 0x0 | 0x80 | 0x7);
  KILN_TRY(vm.set_user_memory_region(0, 0, mem.size(), mem.data()));

  KILN_TRY(vcpu.set_cpuid(cpuid));

  KILN_ASSIGN_OR_RETURN(kvm_sregs sregs, vcpu.get_sregs());
  sregs.cs = segment(0x08, 11, 0, true);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(0x10, 3, 0, false);
  sregs.tr = kvm_segment{};
  sregs.tr.base = kTss;
  sregs.tr.limit = 0x67;
  sregs.tr.type = 11;  // busy 64-bit TSS
  sregs.tr.present = 1;
  sregs.ldt = kvm_segment{};
  sregs.ldt.unusable = 1;
  sregs.gdt.base = kGdt;
  sregs.gdt.limit = static_cast<uint16_t>(std::size(gdt) * 8 - 1);
  sregs.idt.base = 0;
  sregs.idt.limit = 0;  // no IDT: any fault becomes a triple fault (shutdown exit)
  sregs.cr0 = 0x80050033;  // PG | AM | WP | NE | ET | MP | PE
  sregs.cr3 = kPml4;
  sregs.cr4 = 0x20;        // PAE
  sregs.efer = 0x501;      // LMA | LME | SCE
  KILN_TRY(vcpu.set_sregs(sregs));

  kvm_regs regs{};
  regs.rip = kCode;
  regs.rsp = kKernelStack;
  regs.rflags = 0x2;
  KILN_TRY(vcpu.set_regs(regs));

  uint64_t lstar = kCode + static_cast<uint64_t>(kiln_selftest_guest_lstar - kiln_selftest_guest_start);
  return vcpu.set_msrs({{kMsrStar, (0x18ull << 48) | (0x08ull << 32)},
                        {kMsrLstar, lstar},
                        {kMsrSfmask, 0x200}});
}

void on_kick(int) {}

std::string exit_name(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_SHUTDOWN: return "a triple fault (shutdown)";
    case KVM_EXIT_INTERNAL_ERROR: return "a KVM internal error (instruction emulation failed)";
    case KVM_EXIT_FAIL_ENTRY: return "a failed VM entry";
    case KVM_EXIT_HLT: return "an unexpected HLT";
    default: return "exit reason " + std::to_string(reason);
  }
}

constexpr const char* kCannot = "This KVM cannot run Linux guests: ";
constexpr const char* kHint =
    "; kiln's microVMs need a KVM that runs guest kernels natively (or the nested test host, tests/kvm-host/run).";

}  // namespace

SelfTestVerdict run_kvm_self_test(const char* kvm_path) {
  auto fail = [](const std::string& why) { return SelfTestVerdict{false, kCannot + why + kHint}; };
  auto kvm = KvmSystem::open(kvm_path);
  if (!kvm.ok()) return fail(kvm.error().message);
  // Asked before the VM exists: some paravirtual KVM modules refuse it afterwards.
  auto cpuid = kvm->supported_cpuid();
  if (!cpuid.ok()) return fail(cpuid.error().message);
  auto vm = kvm->create_vm();
  if (!vm.ok()) return fail(vm.error().message);
  auto mem = MappedRegion::anonymous(kMemSize);
  if (!mem.ok()) return fail(mem.error().message);
  auto vcpu = vm->create_vcpu(0);
  if (!vcpu.ok()) return fail(vcpu.error().message);
  if (auto s = setup_guest(*vm, **vcpu, *mem, *cpuid); !s.ok()) return fail("setting up the test guest: " + s.error().message);

  // A watchdog kicks the vCPU out of KVM_RUN (EINTR) if the guest never reports.
  struct sigaction sa{};
  sa.sa_handler = on_kick;
  struct sigaction old{};
  ::sigaction(SIGUSR2, &sa, &old);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::atomic<bool> timed_out{false};
  pthread_t self = ::pthread_self();
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; })) {
      timed_out = true;
      while (!done) {
        ::pthread_kill(self, SIGUSR2);
        cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return done; });
      }
    }
  });

  SelfTestVerdict verdict = fail("the test guest never finished");
  int stage = 0;
  for (int exits = 0; exits < 1000; ++exits) {
    auto reason = (*vcpu)->run();
    if (!reason.ok()) {
      if (reason.error().sys_errno == EINTR && !timed_out) continue;
      verdict = fail(timed_out ? "the test guest hung after stage " + std::to_string(stage)
                               : reason.error().message);
      break;
    }
    kvm_run* run = (*vcpu)->run_struct();
    if (*reason == KVM_EXIT_MMIO && run->mmio.is_write && run->mmio.phys_addr == kMmio) {
      uint32_t v = 0;
      std::memcpy(&v, run->mmio.data, std::min<uint32_t>(run->mmio.len, sizeof v));
      if (v == 1 || v == 2) { stage = static_cast<int>(v); continue; }
      if ((v & 0xff00) == 0x300) {
        unsigned cpl = v & 3;
        verdict = cpl == 0
            ? SelfTestVerdict{true, "This KVM can run Linux guests: SYSCALL from user mode (CPL3) "
                                    "entered the kernel handler at CPL0."}
            : fail("SYSCALL from user mode reached its handler at CPL" + std::to_string(cpl) +
                   " instead of CPL0 (broken SYSCALL, as on a paravirtual kvm_pvm host)");
        break;
      }
      verdict = fail("SYSCALL did not transfer control to its handler");
      break;
    }
    if (*reason == KVM_EXIT_IO || *reason == KVM_EXIT_MMIO) continue;  // ignore stray accesses
    if (stage == 2) {
      verdict = fail("SYSCALL from user mode (CPL3) did not enter the kernel at CPL0 (the guest "
                     "ended in " + exit_name(*reason) + " in its handler, as on a paravirtual "
                     "kvm_pvm host)");
    } else {
      verdict = fail("the test guest ended in " + exit_name(*reason) + " at stage " +
                     std::to_string(stage) + " before reaching SYSCALL");
    }
    break;
  }
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  ::sigaction(SIGUSR2, &old, nullptr);
  return verdict;
}

}  // namespace kiln::vmm
