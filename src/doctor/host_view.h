// What `kiln doctor`'s checks know of the host: the files they read and the system calls they
// try, behind one interface so the checks run against a faked /proc, /sys and /dev in tests.
// SystemHost is the real host.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace kiln::doctor {

struct FileInfo {
  bool exists = false;
  bool directory = false;
  bool char_device = false;
};

struct FsInfo {
  std::uint64_t free_bytes = 0;  // available to an unprivileged writer (statfs f_bavail)
  std::uint64_t magic = 0;       // statfs f_type
};

struct NofileLimit {
  std::uint64_t soft = 0, hard = 0;  // RLIM_INFINITY: UINT64_MAX
};

struct KvmSelfTest {
  bool can_run_linux = false;
  std::string sentence;  // kiln-vmm --self-test's verdict, one sentence
};

// The network features kilnd's instance networks use, each tried in a new network namespace.
enum class NetFeature { kVeth, kTap, kNftables };

class HostView {
 public:
  virtual ~HostView() = default;
  // A small text file (/proc, /sys, /lib/modules), whole.
  virtual Result<std::string> read_file(const std::string& path) const = 0;
  virtual FileInfo stat(const std::string& path) const = 0;
  // Opens `path` read-write and closes it again: the error says why not (EACCES, ENODEV, ...).
  virtual Status open_read_write(const std::string& path) const = 0;
  // access(W_OK) for this process; the error says why not (EACCES, EROFS).
  virtual Status writable(const std::string& path) const = 0;
  virtual Result<FsInfo> filesystem(const std::string& path) const = 0;
  virtual NofileLimit nofile() const = 0;
  virtual bool root() const = 0;
  // unshare(clone_flags) in a child process (this one keeps its namespaces).
  virtual Status try_unshare(int clone_flags) const = 0;
  // Creates (and drops) the feature's object in a child's new network namespace: a veth pair,
  // a TAP device, an nftables table. Needs root.
  virtual Status try_net_feature(NetFeature feature) const = 0;
  // Runs kiln-vmm --self-test; an error when kiln-vmm cannot be found or run.
  virtual Result<KvmSelfTest> kvm_self_test() const = 0;
};

// The real host. `vmm_path`: the kiln-vmm the KVM self-test runs (empty: found next to this
// program, in a build tree's vmm/, in /usr/lib/kiln, else on $PATH).
class SystemHost : public HostView {
 public:
  explicit SystemHost(std::string vmm_path = "") : vmm_path_(std::move(vmm_path)) {}
  Result<std::string> read_file(const std::string& path) const override;
  FileInfo stat(const std::string& path) const override;
  Status open_read_write(const std::string& path) const override;
  Status writable(const std::string& path) const override;
  Result<FsInfo> filesystem(const std::string& path) const override;
  NofileLimit nofile() const override;
  bool root() const override;
  Status try_unshare(int clone_flags) const override;
  Status try_net_feature(NetFeature feature) const override;
  Result<KvmSelfTest> kvm_self_test() const override;

 private:
  std::string vmm_path_;
};

}  // namespace kiln::doctor
