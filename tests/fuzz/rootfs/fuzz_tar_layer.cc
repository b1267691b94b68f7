// Fuzz target: tar layer application (rootfs-builder/unpack/tree_builder.h). The input is
// one layer blob (plain tar, or gzip/zstd compressed: the builder sniffs it) applied to an
// empty root inside a private sandbox directory; afterwards the sandbox must hold nothing
// but that root and an untouched bait directory next to it (a layer escaping the root
// through "..", symlinks or hard links would write there). Absolute symlinks to /tmp or
// /dev/shm followed by "kiln-fuzz-escape-canary" entries are caught by checking those paths.
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/io.h"
#include "common/unique_fd.h"
#include "rootfs-builder/unpack/tree_builder.h"
#include "tests/fuzz/support/fuzz_input.h"

namespace kiln::fuzz {
namespace {

// Names in a directory (without "." and "..").
std::vector<std::string> list(int dirfd) {
  std::vector<std::string> out;
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return out;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return out;
  }
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  return out;
}

// Deletes everything below dirfd without following symlinks, making directories writable
// and searchable first (a layer may set mode 000 on them; the fuzzer may not run as root).
void clear_dir(int dirfd) {
  for (const std::string& n : list(dirfd)) {
    struct stat st {};
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      ::fchmodat(dirfd, n.c_str(), 0700, 0);
      int sub = ::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) {
        clear_dir(sub);
        ::close(sub);
      }
      ::unlinkat(dirfd, n.c_str(), AT_REMOVEDIR);
    } else {
      ::unlinkat(dirfd, n.c_str(), 0);
    }
  }
}

struct Sandbox {
  Sandbox() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/kiln-fuzz-tar-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) fuzz_fail(__FILE__, __LINE__, "mkdtemp");
    path = buf.data();
    fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) fuzz_fail(__FILE__, __LINE__, "open sandbox");
    std::atexit([] {
      Sandbox& s = instance();
      clear_dir(s.fd.get());
      ::rmdir(s.path.c_str());
    });
  }
  static Sandbox& instance() {
    static Sandbox s;
    return s;
  }
  std::string path;
  UniqueFd fd;
};

constexpr const char* kCanaries[] = {"/tmp/kiln-fuzz-escape-canary", "/dev/shm/kiln-fuzz-escape-canary"};

void check_canaries() {
  for (const char* c : kCanaries) {
    struct stat st {};
    if (::lstat(c, &st) == 0) {
      std::fprintf(stderr, "tar layer escaped the root: %s exists\n", c);
      ::unlink(c);
      ::rmdir(c);
      KILN_FUZZ_CHECK(!"entry created through an absolute symlink");
    }
  }
}

}  // namespace
}  // namespace kiln::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::fuzz;
  Sandbox& box = Sandbox::instance();
  clear_dir(box.fd.get());
  if (::mkdirat(box.fd.get(), "root", 0755) != 0 || ::mkdirat(box.fd.get(), "bait", 0755) != 0) {
    fuzz_fail(__FILE__, __LINE__, "mkdir root/bait");
  }

  kiln::UniqueFd blob(::memfd_create("kiln-fuzz-layer", MFD_CLOEXEC));
  if (!blob) fuzz_fail(__FILE__, __LINE__, "memfd_create");
  if (!kiln::io::write_all(blob.get(), data, size).ok()) fuzz_fail(__FILE__, __LINE__, "write layer");
  ::lseek(blob.get(), 0, SEEK_SET);

  kiln::rootfs::UnpackLimits limits;
  limits.max_total_bytes = 8 << 20;
  limits.max_entries = 4096;
  limits.ratio_grace_bytes = 1 << 20;
  auto builder = kiln::rootfs::TreeBuilder::create(box.path + "/root", limits);
  if (!builder.ok()) fuzz_fail(__FILE__, __LINE__, builder.error().message.c_str());
  auto diff_id = builder->apply_layer(blob.get());
  if (diff_id.ok()) {
    KILN_FUZZ_CHECK(diff_id->hex.size() == 64);
    (void)builder->finish();
  }

  // Containment: the sandbox holds exactly root/ and an empty bait/.
  std::vector<std::string> names = list(box.fd.get());
  for (const std::string& n : names) {
    if (n != "root" && n != "bait") {
      std::fprintf(stderr, "tar layer escaped the root: created %s/%s\n", box.path.c_str(), n.c_str());
      KILN_FUZZ_CHECK(!"entry created outside the root");
    }
  }
  KILN_FUZZ_CHECK(names.size() == 2);
  struct stat st {};
  KILN_FUZZ_CHECK(::fstatat(box.fd.get(), "bait", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode));
  kiln::UniqueFd bait(::openat(box.fd.get(), "bait", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  KILN_FUZZ_CHECK(bait.valid() && list(bait.get()).empty());
  KILN_FUZZ_CHECK(::fstatat(box.fd.get(), "root", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode));
  check_canaries();
  return 0;
}
