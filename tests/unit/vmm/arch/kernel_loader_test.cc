// Kernel loading: a well-formed ELF lands at its physical address; hostile images are errors.
#include "vmm/arch/kernel_loader.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/unique_fd.h"
#include "vmm/arch/boot_params.h"

namespace kiln::vmm::arch {
namespace {

constexpr uint64_t kLoad = 0x1000000;  // 16 MiB, like vmlinux

struct Image {
  Elf64_Ehdr eh{};
  Elf64_Phdr ph{};
  std::vector<uint8_t> payload;
};

Image good_image() {
  Image im;
  std::memcpy(im.eh.e_ident, ELFMAG, SELFMAG);
  im.eh.e_ident[EI_CLASS] = ELFCLASS64;
  im.eh.e_ident[EI_DATA] = ELFDATA2LSB;
  im.eh.e_type = ET_EXEC;
  im.eh.e_machine = EM_X86_64;
  im.eh.e_entry = kLoad + 0x10;
  im.eh.e_phoff = sizeof(Elf64_Ehdr);
  im.eh.e_phentsize = sizeof(Elf64_Phdr);
  im.eh.e_phnum = 1;
  im.payload.assign(0x300, 0xcc);
  im.ph.p_type = PT_LOAD;
  im.ph.p_offset = 0x1000;
  im.ph.p_paddr = kLoad;
  im.ph.p_filesz = im.payload.size();
  im.ph.p_memsz = 0x2000;
  return im;
}

UniqueFd write_image(const Image& im) {
  UniqueFd fd(::memfd_create("kernel", MFD_CLOEXEC));
  std::vector<uint8_t> file(0x1000 + im.payload.size(), 0);
  std::memcpy(file.data(), &im.eh, sizeof im.eh);
  std::memcpy(file.data() + sizeof im.eh, &im.ph, sizeof im.ph);
  std::memcpy(file.data() + 0x1000, im.payload.data(), im.payload.size());
  EXPECT_EQ(::write(fd.get(), file.data(), file.size()), static_cast<ssize_t>(file.size()));
  return fd;
}

GuestMemory mem64() { return GuestMemory::create_anonymous(ram_regions(64ull << 20)).value(); }

TEST(KernelLoader, LoadsElfAtPhysicalAddressAndZeroesBss) {
  GuestMemory mem = mem64();
  auto bss = mem.slice(GuestAddress(kLoad + 0x300), 0x100);
  std::memset(bss->data(), 0x5a, bss->size());  // stale bytes must be cleared
  UniqueFd fd = write_image(good_image());
  auto k = load_kernel(mem, fd.get());
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->entry.value(), kLoad + 0x10);
  EXPECT_EQ(k->end, kLoad + 0x2000);
  EXPECT_FALSE(k->bzimage_hdr.has_value());
  EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(kLoad + 0x2ff)).value(), 0xcc);
  EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(kLoad + 0x300)).value(), 0);
}

TEST(KernelLoader, HostileElfImagesAreErrors) {
  struct Case { const char* name; void (*mutate)(Image&); };
  const Case cases[] = {
      {"segment beyond guest RAM", [](Image& im) { im.ph.p_paddr = 1ull << 40; }},
      {"address overflow", [](Image& im) { im.ph.p_paddr = ~0ull - 0x10; }},
      {"offset beyond the file", [](Image& im) { im.ph.p_offset = 1ull << 30; }},
      {"offset+size overflow", [](Image& im) { im.ph.p_offset = ~0ull - 1; }},
      {"filesz > memsz", [](Image& im) { im.ph.p_memsz = 1; }},
      {"segment below 1 MiB", [](Image& im) { im.ph.p_paddr = 0x1000; }},
      {"entry outside segments", [](Image& im) { im.eh.e_entry = 0x5000000; }},
      {"too many program headers", [](Image& im) { im.eh.e_phnum = 60000; }},
      {"wrong phentsize", [](Image& im) { im.eh.e_phentsize = 12; }},
      {"32-bit class", [](Image& im) { im.eh.e_ident[EI_CLASS] = ELFCLASS32; }},
      {"wrong machine", [](Image& im) { im.eh.e_machine = EM_AARCH64; }},
      {"huge memsz", [](Image& im) { im.ph.p_memsz = 1ull << 62; }},
  };
  for (const Case& c : cases) {
    GuestMemory mem = mem64();
    Image im = good_image();
    c.mutate(im);
    UniqueFd fd = write_image(im);
    auto k = load_kernel(mem, fd.get());
    EXPECT_FALSE(k.ok()) << c.name;
  }
}

TEST(KernelLoader, NonKernelFilesAreErrors) {
  GuestMemory mem = mem64();
  UniqueFd fd(::memfd_create("junk", MFD_CLOEXEC));
  std::vector<uint8_t> junk(4096, 0x41);
  ASSERT_EQ(::write(fd.get(), junk.data(), junk.size()), 4096);
  auto k = load_kernel(mem, fd.get());
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.error().message.find("bzImage"), std::string::npos) << k.error().message;
  UniqueFd tiny(::memfd_create("tiny", MFD_CLOEXEC));
  EXPECT_FALSE(load_kernel(mem, tiny.get()).ok());
  EXPECT_FALSE(load_kernel_file(mem, "/nonexistent/vmlinux").ok());
}

TEST(KernelLoader, InitrdPlacedBelowLimitPageAligned) {
  GuestMemory mem = mem64();
  char path[] = "/tmp/kiln-initrd-XXXXXX";
  int raw = ::mkstemp(path);
  ASSERT_GE(raw, 0);
  std::vector<uint8_t> data(10000, 7);
  ASSERT_EQ(::write(raw, data.data(), data.size()), 10000);
  ::close(raw);
  auto r = load_initrd_file(mem, path, kLoad + 0x2000, 64ull << 20);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->addr.value() % 4096, 0u);
  EXPECT_LE(r->addr.value() + r->size, 64ull << 20);
  EXPECT_EQ(mem.read_obj<uint8_t>(r->addr).value(), 7);
  EXPECT_FALSE(load_initrd_file(mem, path, (64ull << 20) - 100, 64ull << 20).ok());
  ::unlink(path);
}

}  // namespace
}  // namespace kiln::vmm::arch
