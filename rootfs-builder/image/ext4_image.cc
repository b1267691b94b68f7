// ext4 image creation (mke2fs -d) and the ctime normalisation pass that makes it reproducible.
#include "rootfs-builder/image/ext4_image.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/io.h"
#include "common/unique_fd.h"
#include "rootfs-builder/digest/digest.h"
#include "rootfs-builder/image/command.h"
#include "rootfs-builder/unpack/dir_list.h"

namespace kiln::rootfs {

namespace {

constexpr uint64_t kBlock = 4096;

Status measure_at(int dirfd, TreeUsage& u, int depth) {
  if (depth > 2048) return make_error("directory tree too deep");
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> entries, list_dir(dirfd));
  uint64_t names = 0;
  for (const auto& n : entries) {
    names += n.size() + 16;
    struct stat st;
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno_error("stat " + n);
    u.inodes++;
    if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
      u.bytes += (static_cast<uint64_t>(st.st_size) + kBlock - 1) / kBlock * kBlock;
      // Extent tree blocks for big fragmented files: one per 128 MiB is generous.
      u.bytes += static_cast<uint64_t>(st.st_size) / (128 << 20) * kBlock;
    } else if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) return errno_error("open " + n);
      KILN_TRY(measure_at(sub.get(), u, depth + 1));
    }
  }
  u.bytes += (names + kBlock - 1) / kBlock * kBlock + kBlock;  // this directory's blocks
  return ok_status();
}

// A stable RFC 4122-shaped UUID from a seed string.
std::string derived_uuid(const std::string& seed, const char* purpose) {
  std::string hex = sha256_of(std::string(purpose) + ":" + seed).hex;
  hex[12] = '4';
  hex[16] = "89ab"[hex[16] % 4];
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace

Result<TreeUsage> measure_tree(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return errno_error("open " + dir);
  TreeUsage u;
  u.inodes = 1;
  KILN_TRY(measure_at(fd.get(), u, 0));
  return u;
}

Status make_ext4(const std::string& dir, const std::string& out_path, const Ext4Options& opts) {
  KILN_ASSIGN_OR_RETURN(TreeUsage u, measure_tree(dir));
  // Headroom: 10% + inode tables (256 B/inode) + 16 MiB for metadata and lost+found.
  uint64_t inodes = u.inodes + u.inodes / 10 + 256;
  uint64_t bytes = u.bytes + u.bytes / 10 + inodes * 256 + (16ull << 20);
  bytes = (bytes + (1 << 20) - 1) / (1 << 20) * (1 << 20);
  std::string uuid = derived_uuid(opts.seed, "uuid");
  std::string hash_seed = derived_uuid(opts.seed, "hash_seed");
  // The estimate is generous; should mke2fs still run out of room, retry once with double.
  Result<std::string> r = make_error("not run");
  for (int attempt = 0; attempt < 2; ++attempt, bytes *= 2) {
    ::unlink(out_path.c_str());
    std::vector<std::string> argv = {
        "mkfs.ext4", "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-N", std::to_string(inodes),
        "-I", "256",
        // Read-only image: no journal, no room reserved for growing; no metadata_csum so inode
        // times can be normalised afterwards.
        "-O", "^has_journal,^metadata_csum,^orphan_file,^resize_inode", "-U", uuid,
        "-E", "hash_seed=" + hash_seed + ",root_owner=0:0,nodiscard,lazy_itable_init=0",
        "-L", "kiln-rootfs", "-d", dir, out_path, std::to_string(bytes / 1024) + "k"};
    r = run_command(argv, {"E2FSPROGS_FAKE_TIME=" + std::to_string(opts.fixed_time)});
    if (r.ok()) break;
  }
  if (!r.ok()) {
    ::unlink(out_path.c_str());
    return r.error().wrap("building ext4 image");
  }
  return normalize_ext4_times(out_path, static_cast<uint32_t>(opts.fixed_time));
}

Status normalize_ext4_times(const std::string& image_path, uint32_t time) {
  UniqueFd fd(::open(image_path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return errno_error("open " + image_path);
  uint8_t sb[1024];
  KILN_TRY(io::pread_all(fd.get(), sb, sizeof sb, 1024, image_path));
  if (le16(sb + 0x38) != 0xEF53) return make_error("not an ext4 image (bad superblock magic)");
  uint32_t inodes_count = le32(sb + 0x0);
  uint32_t first_data_block = le32(sb + 0x14);
  uint32_t log_bs = le32(sb + 0x18);
  uint32_t inodes_per_group = le32(sb + 0x28);
  uint16_t inode_size = le32(sb + 0x4C) >= 1 ? le16(sb + 0x58) : 128;
  uint32_t incompat = le32(sb + 0x60);
  uint32_t ro_compat = le32(sb + 0x64);
  if (log_bs > 6 || inodes_per_group == 0 || inode_size < 128 || inode_size > 4096) {
    return make_error("implausible ext4 superblock");
  }
  if (ro_compat & 0x400) return make_error("image has metadata_csum; cannot normalise inode times");
  uint64_t bs = 1024ull << log_bs;
  uint32_t desc_size = (incompat & 0x80) ? le16(sb + 0xFE) : 32;
  if (desc_size < 32 || desc_size > 1024) return make_error("implausible ext4 descriptor size");
  bool uninit = (ro_compat & 0x10) != 0;  // GDT_CSUM: bg_itable_unused is meaningful
  uint64_t groups = (static_cast<uint64_t>(inodes_count) + inodes_per_group - 1) / inodes_per_group;
  std::vector<uint8_t> gdt(groups * desc_size);
  KILN_TRY(io::pread_all(fd.get(), gdt.data(), gdt.size(), (first_data_block + 1) * bs, image_path));
  std::vector<uint8_t> table(static_cast<size_t>(inodes_per_group) * inode_size);
  for (uint64_t g = 0; g < groups; ++g) {
    const uint8_t* d = gdt.data() + g * desc_size;
    uint64_t itable = le32(d + 0x8);
    uint32_t unused = le16(d + 0x1C);
    uint16_t flags = le16(d + 0x12);
    if (desc_size >= 64) {
      itable |= static_cast<uint64_t>(le32(d + 0x28)) << 32;
      unused |= static_cast<uint32_t>(le16(d + 0x32)) << 16;
    }
    if (uninit && (flags & 0x1)) continue;  // INODE_UNINIT: nothing in use
    uint32_t used = uninit ? (unused <= inodes_per_group ? inodes_per_group - unused : 0)
                           : inodes_per_group;
    if (used == 0) continue;
    size_t len = static_cast<size_t>(used) * inode_size;
    const uint64_t off = itable * bs;
    KILN_TRY(io::pread_all(fd.get(), table.data(), len, off, image_path));
    for (uint32_t i = 0; i < used; ++i) {
      uint8_t* ino = table.data() + static_cast<size_t>(i) * inode_size;
      if (le16(ino + 0x0) == 0 && le16(ino + 0x1A) == 0) continue;  // free inode
      // i_ctime: when the scratch inode last changed; i_atime: when mke2fs (or anyone) last
      // read it. Neither is image content: ctime := fixed time, atime := mtime.
      put32(ino + 0x0C, time);
      put32(ino + 0x08, le32(ino + 0x10));
      uint16_t extra = inode_size > 128 ? le16(ino + 0x80) : 0;
      if (extra >= 0x08) put32(ino + 0x84, 0);                     // i_ctime_extra
      if (extra >= 0x10) put32(ino + 0x8C, le32(ino + 0x88));      // i_atime_extra := i_mtime_extra
    }
    KILN_TRY(io::pwrite_all(fd.get(), table.data(), len, off, image_path));
  }
  if (::fsync(fd.get()) != 0) return errno_error("fsync " + image_path);
  return ok_status();
}

Status copy_file_sparse(const std::string& src, const std::string& dst) {
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return errno_error("open " + src);
  struct stat st;
  if (::fstat(in.get(), &st) != 0) return errno_error("stat " + src);
  std::string tmp = dst + ".tmp";
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out) return errno_error("create " + tmp);
  auto fail = [&](Error e) {
    ::unlink(tmp.c_str());
    return e;
  };
  if (::ioctl(out.get(), FICLONE, in.get()) != 0) {
    off_t pos = 0;
    while (pos < st.st_size) {
      off_t data = ::lseek(in.get(), pos, SEEK_DATA);
      if (data < 0) break;  // ENXIO: only a hole remains
      off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
      if (hole < 0) return fail(errno_error("lseek " + src));
      loff_t ioff = data, ooff = data;
      size_t left = static_cast<size_t>(hole - data);
      while (left > 0) {
        ssize_t n = ::copy_file_range(in.get(), &ioff, out.get(), &ooff, left, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return fail(errno_error("copy_file_range " + src));
        left -= static_cast<size_t>(n);
      }
      pos = hole;
    }
    if (::ftruncate(out.get(), st.st_size) != 0) return fail(errno_error("truncate " + tmp));
  }
  if (::fsync(out.get()) != 0) return fail(errno_error("fsync " + tmp));
  if (::rename(tmp.c_str(), dst.c_str()) != 0) return fail(errno_error("rename " + dst));
  return ok_status();
}

}  // namespace kiln::rootfs
