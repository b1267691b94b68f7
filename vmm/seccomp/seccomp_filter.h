// SeccompFilter: a libseccomp filter built from a thread kind's allow-list, loaded into the
// calling thread only (no TSYNC). install_thread_filter() is what kiln-vmm's threads call first.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "vmm/seccomp/allow_list.h"

namespace kiln::vmm::seccomp {

enum class Mode {
  kEnforce,    // default: a syscall off the list kills the whole process with SIGSYS
  kAuditOnly,  // debugging (--seccomp-audit): allowed, but logged by the kernel (audit/dmesg)
  kDisabled,   // debugging (--no-seccomp): no filter at all
};

struct Settings {
  Mode mode = Mode::kEnforce;
};

class SeccompFilter {
 public:
  // Builds (does not load) the filter for `kind`. mode must not be kDisabled.
  static Result<SeccompFilter> build(ThreadKind kind, Mode mode);
  ~SeccompFilter();
  SeccompFilter(SeccompFilter&& other) noexcept;
  SeccompFilter& operator=(SeccompFilter&& other) noexcept;
  SeccompFilter(const SeccompFilter&) = delete;
  SeccompFilter& operator=(const SeccompFilter&) = delete;

  // Sets no_new_privs and loads the filter into the calling thread. It stacks on whatever the
  // thread inherited from its creator; threads it creates later inherit it.
  Status install() const;
  // The filter as libseccomp's pseudo filter code (human-readable BPF), for debugging.
  Result<std::string> pseudo_code() const;
  ThreadKind kind() const { return kind_; }

 private:
  SeccompFilter(void* ctx, ThreadKind kind) : ctx_(ctx), kind_(kind) {}
  void* ctx_ = nullptr;  // scmp_filter_ctx
  ThreadKind kind_;
};

// Builds and installs the filter for `kind` in the calling thread; nothing if disabled.
Status install_thread_filter(ThreadKind kind, const Settings& settings);

}  // namespace kiln::vmm::seccomp
