// Kernel and initrd loading (ELF64 vmlinux and bzImage).
#include "vmm/arch/kernel_loader.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/io.h"
#include "common/unique_fd.h"
#include "vmm/arch/layout.h"

namespace kiln::vmm::arch {
namespace {

constexpr uint32_t kHdrMagic = 0x53726448;  // "HdrS"
constexpr size_t kSetupHeaderOffset = 0x1f1;
constexpr uint16_t kMaxPhdrs = 128;

constexpr std::string_view kWhat = "kernel image";  // names the file in read errors

// Copies file bytes [off, off+len) to guest memory at gpa, after checking both ranges.
Status copy_to_guest(const GuestMemory& mem, int fd, uint64_t file_size, uint64_t off, uint64_t len,
                     GuestAddress gpa) {
  uint64_t end = 0;
  if (__builtin_add_overflow(off, len, &end) || end > file_size) {
    return make_error("segment lies outside the kernel file");
  }
  KILN_ASSIGN_OR_RETURN(std::span<uint8_t> dst, mem.slice(gpa, len));
  return io::pread_all(fd, dst.data(), dst.size(), off, kWhat);
}

Result<LoadedKernel> load_elf(const GuestMemory& mem, int fd, uint64_t file_size) {
  Elf64_Ehdr eh{};
  KILN_TRY(io::pread_all(fd, &eh, sizeof eh, 0, kWhat));
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
      eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC) {
    return make_error("ELF kernel is not a little-endian x86_64 executable");
  }
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > kMaxPhdrs) {
    return make_error("ELF kernel has a malformed program header table");
  }
  LoadedKernel out;
  out.entry = GuestAddress(eh.e_entry);
  bool entry_loaded = false;
  for (uint16_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    KILN_TRY(io::pread_all(fd, &ph, sizeof ph, eh.e_phoff + uint64_t{i} * sizeof ph, kWhat));
    if (ph.p_type != PT_LOAD) continue;
    if (ph.p_filesz > ph.p_memsz) return make_error("ELF segment filesz exceeds memsz");
    if (ph.p_paddr < layout::kHimemStart) return make_error("ELF segment below 1 MiB");
    GuestAddress at(ph.p_paddr);
    KILN_TRY(copy_to_guest(mem, fd, file_size, ph.p_offset, ph.p_filesz, at));
    // The rest (.bss) must read as zero even if the memory was used before.
    auto bss_at = at.checked_add(ph.p_filesz);
    if (!bss_at) return make_error("ELF segment address overflows");
    KILN_ASSIGN_OR_RETURN(std::span<uint8_t> bss, mem.slice(*bss_at, ph.p_memsz - ph.p_filesz));
    std::memset(bss.data(), 0, bss.size());
    uint64_t seg_end = ph.p_paddr + ph.p_memsz;  // slice() checked it fits: no overflow
    if (seg_end > out.end) out.end = seg_end;
    if (eh.e_entry >= ph.p_paddr && eh.e_entry < seg_end) entry_loaded = true;
  }
  if (!entry_loaded) return make_error("ELF entry point is not inside a loaded segment");
  return out;
}

Result<LoadedKernel> load_bzimage(const GuestMemory& mem, int fd, uint64_t file_size) {
  setup_header hdr{};
  KILN_TRY(io::pread_all(fd, &hdr, sizeof hdr, kSetupHeaderOffset, kWhat));
  if (hdr.header != kHdrMagic || hdr.boot_flag != 0xaa55) return make_error("not a bzImage (no HdrS)");
  if (hdr.version < 0x020c) return make_error("bzImage boot protocol older than 2.12");
  if (!(hdr.xloadflags & XLF_KERNEL_64)) return make_error("bzImage has no 64-bit entry point");
  if (!(hdr.loadflags & LOADED_HIGH)) return make_error("bzImage is not loaded high (zImage)");
  uint64_t setup_sects = hdr.setup_sects == 0 ? 4 : hdr.setup_sects;
  uint64_t pm_offset = (setup_sects + 1) * 512;
  if (pm_offset >= file_size) return make_error("bzImage is truncated");
  uint64_t pm_size = file_size - pm_offset;
  KILN_TRY(copy_to_guest(mem, fd, file_size, pm_offset, pm_size, GuestAddress(layout::kHimemStart)));
  LoadedKernel out;
  out.entry = GuestAddress(layout::kHimemStart + 0x200);  // startup_64 of the decompressor
  out.end = layout::kHimemStart + pm_size;
  out.bzimage_hdr = hdr;
  return out;
}

}  // namespace

Result<LoadedKernel> load_kernel(const GuestMemory& mem, int fd) {
  struct stat st{};
  if (::fstat(fd, &st) < 0) return errno_error("stat kernel image");
  auto file_size = static_cast<uint64_t>(st.st_size);
  unsigned char ident[4] = {};
  if (file_size < 0x260) return make_error("kernel image is too small");
  KILN_TRY(io::pread_all(fd, ident, sizeof ident, 0, kWhat));
  if (std::memcmp(ident, ELFMAG, SELFMAG) == 0) return load_elf(mem, fd, file_size);
  return load_bzimage(mem, fd, file_size);
}

Result<LoadedKernel> load_kernel_file(const GuestMemory& mem, const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open kernel " + path);
  auto r = load_kernel(mem, fd.get());
  if (!r.ok()) return r.error().wrap("kernel " + path);
  return r;
}

Result<LoadedInitrd> load_initrd_file(const GuestMemory& mem, const std::string& path,
                                      uint64_t lowest, uint64_t limit) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open initrd " + path);
  struct stat st{};
  if (::fstat(fd.get(), &st) < 0) return errno_error("stat initrd " + path);
  auto size = static_cast<uint64_t>(st.st_size);
  if (size == 0) return make_error("initrd " + path + " is empty");
  if (size > limit || limit - size < lowest) return make_error("initrd " + path + " does not fit in guest memory");
  uint64_t addr = (limit - size) & ~uint64_t{0xfff};
  if (addr < lowest) return make_error("initrd " + path + " does not fit above the kernel");
  KILN_TRY(copy_to_guest(mem, fd.get(), size, 0, size, GuestAddress(addr)));
  return LoadedInitrd{GuestAddress(addr), size};
}

}  // namespace kiln::vmm::arch
