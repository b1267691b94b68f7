// The real host behind kiln doctor's checks: plain reads and stats, and the system calls that
// change namespaces tried in a forked child so kiln itself keeps its own.
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include "common/io.h"
#include "common/spawn.h"
#include "common/unique_fd.h"
#include "src/doctor/host_view.h"
#include "src/net/links.h"
#include "src/net/nftables.h"
#include "src/net/tap_device.h"

namespace kiln::doctor {
namespace {

constexpr std::size_t kMaxReadBytes = 16 << 20;  // modules.dep is the largest file read
constexpr std::size_t kMaxChildMessageBytes = 64 << 10;

struct Pipe {
  UniqueFd read, write;
};

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errno_error("pipe2");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Waits for `pid`: its exit code, or 128 + the signal that ended it.
int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs `fn` in a forked child; its error comes back through a pipe. kiln is single-threaded
// here, so the child may do more than async-signal-safe calls.
Status in_child(const std::function<Status()>& fn) {
  KILN_ASSIGN_OR_RETURN(Pipe p, make_pipe());
  const pid_t pid = ::fork();
  if (pid < 0) return errno_error("fork");
  if (pid == 0) {
    p.read.reset();
    Status s = fn();
    if (s.ok()) ::_exit(0);
    (void)io::write_all(p.write.get(), s.error().message.data(), s.error().message.size());
    ::_exit(1);
  }
  p.write.reset();
  auto message = io::read_fd(p.read.get(), kMaxChildMessageBytes, "child");
  const int code = wait_for(pid);
  if (code == 0) return ok_status();
  if (message.ok() && !message->empty()) return make_error(*message);
  return make_error("the check's child process ended with status " + std::to_string(code));
}

std::string self_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

Result<std::string> find_vmm(const std::string& given) {
  if (!given.empty()) return given;
  const std::string here = self_dir();
  for (const std::string& p : {here + "/kiln-vmm", here + "/../vmm/kiln-vmm", std::string("/usr/lib/kiln/kiln-vmm")}) {
    if (executable(p)) return p;
  }
  if (std::string found = find_in_path("kiln-vmm"); !found.empty()) return found;
  return make_error("kiln-vmm not found (next to kiln, in /usr/lib/kiln or on $PATH)");
}

}  // namespace

Result<std::string> SystemHost::read_file(const std::string& path) const { return io::read_file(path, kMaxReadBytes); }

FileInfo SystemHost::stat(const std::string& path) const {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {true, S_ISDIR(st.st_mode), S_ISCHR(st.st_mode)};
}

Status SystemHost::open_read_write(const std::string& path) const {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return errno_error("open " + path);
  return ok_status();
}

Status SystemHost::writable(const std::string& path) const {
  if (::access(path.c_str(), W_OK) != 0) return errno_error("access " + path);
  return ok_status();
}

Result<FsInfo> SystemHost::filesystem(const std::string& path) const {
  struct statfs st {};
  if (::statfs(path.c_str(), &st) != 0) return errno_error("statfs " + path);
  return FsInfo{static_cast<std::uint64_t>(st.f_bavail) * static_cast<std::uint64_t>(st.f_bsize),
                static_cast<std::uint64_t>(st.f_type)};
}

NofileLimit SystemHost::nofile() const {
  struct rlimit rl {};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  auto value = [](rlim_t v) { return v == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(v); };
  return {value(rl.rlim_cur), value(rl.rlim_max)};
}

bool SystemHost::root() const { return ::geteuid() == 0; }

Status SystemHost::try_unshare(int clone_flags) const {
  return in_child([clone_flags]() -> Status {
    if (::unshare(clone_flags) != 0) return errno_error("unshare");
    return ok_status();
  });
}

Status SystemHost::try_net_feature(NetFeature feature) const {
  return in_child([feature]() -> Status {
    if (::unshare(CLONE_NEWNET) != 0) return errno_error("unshare(CLONE_NEWNET)");
    switch (feature) {
      case NetFeature::kVeth: {
        UniqueFd self(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
        if (!self) return errno_error("open /proc/self/ns/net");
        KILN_ASSIGN_OR_RETURN(net::RouteSocket sock, net::RouteSocket::open());
        return sock.create_veth("kdoctor0", "kdoctor1", self.get(), 1500);
      }
      case NetFeature::kTap:
        KILN_TRY(net::create_persistent_tap("kdoctor0", ::geteuid(), ::getegid()));
        return net::delete_persistent_tap("kdoctor0");
      case NetFeature::kNftables:
        return net::nft::apply("add table inet kiln_doctor\n");
    }
    return ok_status();
  });
}

Result<KvmSelfTest> SystemHost::kvm_self_test() const {
  KILN_ASSIGN_OR_RETURN(std::string vmm, find_vmm(vmm_path_));
  KILN_ASSIGN_OR_RETURN(Pipe p, make_pipe());
  SpawnPlan plan;
  plan.dup2(p.write.get(), 1).dup2(p.write.get(), 2);
  KILN_ASSIGN_OR_RETURN(pid_t pid, plan.spawn(vmm, {vmm, "--self-test"}));
  p.write.reset();
  auto out = io::read_fd(p.read.get(), kMaxChildMessageBytes, vmm);
  const int code = wait_for(pid);
  std::string sentence = out.ok() ? *out : out.error().message;
  while (!sentence.empty() && sentence.back() == '\n') sentence.pop_back();
  if (code != 0 && code != 1) return make_error(vmm + " --self-test ended with status " + std::to_string(code));
  return KvmSelfTest{code == 0, sentence};
}

}  // namespace kiln::doctor
