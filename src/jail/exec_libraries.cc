// Finds a dynamic exec file's loader (ELF64 PT_INTERP, System V gABI "Program Header") and asks
// that loader for the resolved library list, run with an empty environment (no LD_* influence).
#include "src/jail/exec_libraries.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

#include "common/io.h"
#include "common/spawn.h"
#include "common/unique_fd.h"

namespace kiln::jail {
namespace {

constexpr size_t kMaxPhdrs = 256;
constexpr size_t kMaxListOutput = 1 << 20;


}  // namespace

Result<std::string> elf_interpreter(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open " + path);
  Elf64_Ehdr eh{};
  ssize_t got = ::pread(fd.get(), &eh, sizeof eh, 0);
  if (got < 0) return errno_error("read " + path);
  if (got < EI_NIDENT || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64)
    return make_error(path + ": not an ELF64 executable");
  if (got != static_cast<ssize_t>(sizeof eh)) return make_error(path + ": truncated ELF file");
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > kMaxPhdrs)
    return make_error(path + ": unexpected ELF program header table");
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    const uint64_t off = eh.e_phoff + i * sizeof(Elf64_Phdr);
    if (off < eh.e_phoff) return make_error(path + ": ELF program header offset overflows");
    KILN_TRY(io::pread_all(fd.get(), &ph, sizeof ph, off, path));
    if (ph.p_type != PT_INTERP) continue;
    if (ph.p_filesz < 2 || ph.p_filesz > 4096) return make_error(path + ": bad PT_INTERP size");
    std::string interp(ph.p_filesz, '\0');
    KILN_TRY(io::pread_all(fd.get(), interp.data(), interp.size(), ph.p_offset, path));
    interp.resize(std::strlen(interp.c_str()));
    if (interp.empty() || interp[0] != '/') return make_error(path + ": PT_INTERP is not an absolute path");
    return interp;
  }
  return std::string();
}

Result<std::vector<std::string>> parse_loader_list(const std::string& text) {
  // Lines: "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "\t/lib64/ld-linux-x86-64.so.2 (0x...)",
  // "\tlinux-vdso.so.1 (0x...)" (no file), "\tlibfoo.so => not found".
  std::vector<std::string> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    std::string rest = line.substr(start);
    if (size_t arrow = rest.find(" => "); arrow != std::string::npos) {
      std::string target = rest.substr(arrow + 4);
      if (target.rfind("not found", 0) == 0) return make_error("shared library " + rest.substr(0, arrow) + " not found");
      rest = target;
    }
    if (rest.empty() || rest[0] != '/') continue;  // the vDSO has no file
    std::string path = rest.substr(0, rest.find(" ("));
    bool dup = false;
    for (const auto& p : out) dup = dup || p == path;
    if (!dup) out.push_back(path);
  }
  return out;
}

Result<std::vector<std::string>> exec_libraries(const std::string& exec_file) {
  // The answer of the last run per exec file, while the file is the same one (device, inode,
  // size, mtime): a jail per VMM need not start the loader each time.
  using FileKey = std::tuple<dev_t, ino_t, off_t, std::int64_t, long>;
  static std::mutex mu;
  static std::map<std::string, std::pair<FileKey, std::vector<std::string>>> cache;
  struct stat st {};
  const bool stat_ok = ::stat(exec_file.c_str(), &st) == 0;
  const FileKey key{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
  if (stat_ok) {
    std::lock_guard lock(mu);
    auto it = cache.find(exec_file);
    if (it != cache.end() && it->second.first == key) return it->second.second;
  }
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> libs, list_libraries(exec_file));
  if (stat_ok) {
    std::lock_guard lock(mu);
    cache[exec_file] = {key, libs};
  }
  return libs;
}

Result<std::vector<std::string>> list_libraries(const std::string& exec_file) {
  KILN_ASSIGN_OR_RETURN(std::string interp, elf_interpreter(exec_file));
  if (interp.empty()) return std::vector<std::string>{};

  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return errno_error("pipe2");
  UniqueFd rd(p[0]), wr(p[1]);
  SpawnPlan plan;
  plan.dup2(wr.get(), 1).open(0, "/dev/null", O_RDONLY);
  char* envp[] = {nullptr};
  Result<pid_t> spawned = plan.spawn(interp, {interp, "--list", exec_file}, envp);
  wr.reset();
  if (!spawned.ok()) return errno_error("spawning " + interp + " --list", spawned.error().sys_errno);
  const pid_t pid = *spawned;

  std::string out;
  char buf[4096];
  while (out.size() < kMaxListOutput) {
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  rd.reset();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return make_error(interp + " --list " + exec_file + " failed (status " + std::to_string(status) + ")");
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> libs, parse_loader_list(out));
  bool has_interp = false;
  for (const auto& l : libs) has_interp = has_interp || l == interp;
  if (!has_interp) libs.insert(libs.begin(), interp);
  return libs;
}

}  // namespace kiln::jail
