// Snapshot state: container integrity checks and a round trip of every state struct.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "vmm/snapshot/byte_stream.h"
#include "vmm/snapshot/snapshot_file.h"
#include "vmm/snapshot/vm_state.h"

namespace kiln::vmm::snapshot {
namespace {

template <typename T>
void fill(T& v, uint8_t seed) {
  auto* p = reinterpret_cast<uint8_t*>(&v);
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(seed + i * 7);
}

VmState sample_state() {
  VmState s;
  s.config_json = R"({"machine-config":{"vcpu_count":2,"mem_size_mib":128}})";
  s.mem_bytes = 128ull << 20;
  fill(s.pic_master, 1);
  fill(s.pic_slave, 2);
  fill(s.ioapic, 3);
  fill(s.pit, 4);
  fill(s.clock, 5);
  for (uint8_t i = 0; i < 2; ++i) {
    VcpuState v;
    v.cpuid.resize(3);
    for (auto& e : v.cpuid) fill(e, static_cast<uint8_t>(10 + i));
    fill(v.regs, 20);
    fill(v.sregs, 21);
    fill(v.xsave, 22);
    fill(v.xcrs, 23);
    v.msrs = {{0x10, 12345}, {0xc0000082, 0xffffffff81000000ull}, {0x4b564d01, 7}};
    fill(v.lapic, 24);
    fill(v.mp_state, 25);
    fill(v.events, 26);
    s.vcpus.push_back(v);
  }
  s.serial.ier = 0x0f;
  s.serial.lcr = 0x83;
  s.serial.thre_pending = true;
  s.serial.rx = {1, 2, 3};
  s.i8042.out = {0xfa};
  s.i8042.control = 0x47;
  DeviceState d;
  d.name = "vsock";
  d.transport.status = 0xf;
  d.transport.acked_features = (1ull << 32) | 1;
  d.transport.interrupt_status = 1;
  d.transport.queues = {{256, true, 0x1000, 0x2000, 0x3000, 17, 15}, {256, true, 0x4000, 0x5000, 0x6000, 3, 3}};
  s.devices.push_back(d);
  return s;
}

TEST(VmState, EveryStructRoundTrips) {
  VmState s = sample_state();
  auto back = decode_vm_state(encode_vm_state(s));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->config_json, s.config_json);
  EXPECT_EQ(back->mem_bytes, s.mem_bytes);
  EXPECT_EQ(std::memcmp(&back->pic_master, &s.pic_master, sizeof s.pic_master), 0);
  EXPECT_EQ(std::memcmp(&back->ioapic, &s.ioapic, sizeof s.ioapic), 0);
  EXPECT_EQ(std::memcmp(&back->pit, &s.pit, sizeof s.pit), 0);
  EXPECT_EQ(std::memcmp(&back->clock, &s.clock, sizeof s.clock), 0);
  ASSERT_EQ(back->vcpus.size(), 2u);
  EXPECT_TRUE(back->vcpus[0] == s.vcpus[0]);
  EXPECT_TRUE(back->vcpus[1] == s.vcpus[1]);
  EXPECT_EQ(back->serial.ier, 0x0f);
  EXPECT_EQ(back->serial.lcr, 0x83);
  EXPECT_TRUE(back->serial.thre_pending);
  EXPECT_EQ(back->serial.rx, (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_EQ(back->i8042.out, std::vector<uint8_t>{0xfa});
  EXPECT_EQ(back->i8042.control, 0x47);
  ASSERT_EQ(back->devices.size(), 1u);
  EXPECT_EQ(back->devices[0].name, "vsock");
  EXPECT_EQ(back->devices[0].transport.acked_features, (1ull << 32) | 1);
  ASSERT_EQ(back->devices[0].transport.queues.size(), 2u);
  EXPECT_EQ(back->devices[0].transport.queues[0].next_avail, 17);
  EXPECT_EQ(back->devices[0].transport.queues[0].used_ring, 0x3000u);
}

TEST(VmState, EveryTruncationIsAnError) {
  std::string bytes = encode_vm_state(sample_state());
  for (size_t len = 0; len < bytes.size(); len += 97) {
    EXPECT_FALSE(decode_vm_state(std::string_view(bytes).substr(0, len)).ok()) << "length " << len;
  }
  EXPECT_FALSE(decode_vm_state(bytes + "x").ok()) << "trailing bytes";
}

TEST(VmState, HostileCountsAreRefusedWithoutAllocating) {
  ByteWriter w;
  w.str("{}");
  w.u64(1 << 20);
  kvm_irqchip chip{};
  w.pod(chip);
  w.pod(chip);
  w.pod(chip);
  kvm_pit_state2 pit{};
  w.pod(pit);
  kvm_clock_data clock{};
  w.pod(clock);
  w.u32(0xffffffff);  // vCPU count
  auto r = decode_vm_state(w.data());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("vcpus: count"), std::string::npos) << r.error().message;
}

TEST(VmState, RandomBytesNeverCrash) {
  std::mt19937 rng(42);
  std::string good = encode_vm_state(sample_state());
  std::size_t refused = 0, accepted = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string m = good;
    for (int k = 0; k < 4; ++k) m[rng() % m.size()] = static_cast<char>(rng());
    auto r = decode_vm_state(m);  // must return, error or not
    if (!r.ok()) {
      ++refused;
      EXPECT_FALSE(r.error().message.empty());
      continue;
    }
    // What decodes is a state in its own right: it encodes to the very bytes it came from.
    ++accepted;
    EXPECT_EQ(encode_vm_state(*r), m) << "iteration " << i;
  }
  EXPECT_GT(refused, 0u);
  EXPECT_GT(accepted, 0u);
}

TEST(Container, RoundTripAndIntegrity) {
  std::string payload = encode_vm_state(sample_state());
  std::string file = encode_container(payload);
  auto ok = decode_container(file);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(*ok, payload);

  std::string flipped = file;
  flipped[file.size() / 2] ^= 0x01;
  auto e1 = decode_container(flipped);
  ASSERT_FALSE(e1.ok());
  EXPECT_NE(e1.error().message.find("checksum"), std::string::npos);

  auto e2 = decode_container(std::string_view(file).substr(0, file.size() - 10));
  ASSERT_FALSE(e2.ok());
  EXPECT_NE(e2.error().message.find("truncated"), std::string::npos);

  std::string version = file;
  version[8] = 2;
  auto e3 = decode_container(version);
  ASSERT_FALSE(e3.ok());
  EXPECT_NE(e3.error().message.find("version 2 is not supported"), std::string::npos);

  std::string magic = file;
  magic[0] = 'X';
  auto e4 = decode_container(magic);
  ASSERT_FALSE(e4.ok());
  EXPECT_NE(e4.error().message.find("magic"), std::string::npos);

  EXPECT_FALSE(decode_container("KILN").ok());
  std::string huge_len = file;
  uint64_t len = ~0ull;
  std::memcpy(huge_len.data() + 16, &len, 8);
  EXPECT_FALSE(decode_container(huge_len).ok());
}

TEST(Container, ASnapshotOfAnotherArchitectureIsRefused) {
  const std::string payload = "state";
  // Files written before the architecture field held 0 there: x86_64.
  std::string x86 = encode_container(payload, Arch::kX86_64);
  uint32_t field = 1;
  std::memcpy(&field, x86.data() + 12, 4);
  EXPECT_EQ(field, 0u);
  EXPECT_TRUE(decode_container(x86, Arch::kX86_64).ok());
  auto arm_on_x86 = decode_container(encode_container(payload, Arch::kAarch64), Arch::kX86_64);
  ASSERT_FALSE(arm_on_x86.ok());
  EXPECT_EQ(arm_on_x86.error().message, "snapshot taken on aarch64; this kiln-vmm runs x86_64 guests");
  auto x86_on_arm = decode_container(x86, Arch::kAarch64);
  ASSERT_FALSE(x86_on_arm.ok());
  EXPECT_EQ(x86_on_arm.error().message, "snapshot taken on x86_64; this kiln-vmm runs aarch64 guests");
  auto arm = decode_container(encode_container(payload, Arch::kAarch64), Arch::kAarch64);
  ASSERT_TRUE(arm.ok());
  EXPECT_EQ(*arm, payload);
  std::string unknown = x86;
  field = 7;
  std::memcpy(unknown.data() + 12, &field, 4);
  auto e = decode_container(unknown, Arch::kX86_64);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("an unknown architecture (7)"), std::string::npos) << e.error().message;
}

TEST(Container, Crc64MatchesTheXzCheckValue) {
  EXPECT_EQ(crc64("123456789"), 0x995dc9bbdf1939faull);  // CRC-64/XZ check value
}

TEST(StateFile, WrittenAtomicallyAndReadBack) {
  char dir[] = "/tmp/kiln-snap-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/state";
  ASSERT_TRUE(write_state_file(path, "payload").ok());
  EXPECT_NE(::access((path + ".tmp").c_str(), F_OK), 0);
  ASSERT_TRUE(write_state_file(path, "payload").ok());  // replaces the first
  std::size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) entries += e.path().filename() == "state" ? 1 : 100;
  EXPECT_EQ(entries, 1u) << "a temp file was left behind";
  auto back = read_state_file(path);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, "payload");
  EXPECT_FALSE(read_state_file(std::string(dir) + "/missing").ok());
  std::remove(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace kiln::vmm::snapshot
