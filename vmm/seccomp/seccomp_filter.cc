// SeccompFilter implementation over libseccomp (seccomp_init, seccomp_rule_add_array,
// seccomp_load). Kernel side: Documentation/userspace-api/seccomp_filter.rst.
#include "vmm/seccomp/seccomp_filter.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <utility>

#include "common/io.h"
#include "common/unique_fd.h"

namespace kiln::vmm::seccomp {
namespace {

scmp_filter_ctx as_ctx(void* p) { return static_cast<scmp_filter_ctx>(p); }

Error scmp_error(const std::string& what, int rc) {
  // libseccomp returns -errno.
  return Error{"seccomp: " + what + ": " + std::strerror(-rc), -rc};
}

}  // namespace

Result<SeccompFilter> SeccompFilter::build(ThreadKind kind, Mode mode) {
  if (mode == Mode::kDisabled) return make_error("seccomp: no filter to build when disabled");
  const uint32_t default_action = mode == Mode::kEnforce ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_LOG;
  scmp_filter_ctx ctx = seccomp_init(default_action);
  if (ctx == nullptr) return make_error("seccomp: seccomp_init failed");
  SeccompFilter filter(ctx, kind);
  const std::string name(thread_kind_name(kind));
  const AllowList list = allow_list(kind);
  for (const Rule& r : list.rules) {
    std::vector<scmp_arg_cmp> cmps;
    for (const ArgCheck& c : r.checks) cmps.push_back({c.index, SCMP_CMP_MASKED_EQ, c.mask, c.value});
    int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r.syscall, static_cast<unsigned>(cmps.size()),
                                    cmps.empty() ? nullptr : cmps.data());
    if (rc != 0) return scmp_error(name + " filter: syscall " + std::to_string(r.syscall), rc);
  }
  for (const ErrnoRule& r : list.errno_rules) {
    std::vector<scmp_arg_cmp> cmps;
    for (const ArgCheck& c : r.checks) cmps.push_back({c.index, SCMP_CMP_MASKED_EQ, c.mask, c.value});
    int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(static_cast<uint32_t>(r.error)), r.syscall,
                                    static_cast<unsigned>(cmps.size()), cmps.empty() ? nullptr : cmps.data());
    if (rc != 0) return scmp_error(name + " filter: syscall " + std::to_string(r.syscall), rc);
  }
  return filter;
}

SeccompFilter::~SeccompFilter() {
  if (ctx_ != nullptr) seccomp_release(as_ctx(ctx_));
}

SeccompFilter::SeccompFilter(SeccompFilter&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), kind_(other.kind_) {}

SeccompFilter& SeccompFilter::operator=(SeccompFilter&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) seccomp_release(as_ctx(ctx_));
    ctx_ = std::exchange(other.ctx_, nullptr);
    kind_ = other.kind_;
  }
  return *this;
}

Status SeccompFilter::install() const {
  // glibc reads the time zone file on a process's first gmtime_r/localtime_r: do it once now,
  // while files may still be opened, because log lines are stamped on filtered threads. Only
  // once: an explicit tzset() with TZ unset looks at /etc/localtime again every time.
  static std::once_flag tz_once;
  std::call_once(tz_once, [] { ::tzset(); });
  // libseccomp sets no_new_privs itself (SCMP_FLTATR_CTL_NNP defaults to on).
  int rc = seccomp_load(as_ctx(ctx_));
  if (rc != 0) return scmp_error(std::string("loading the ") + std::string(thread_kind_name(kind_)) + " filter", rc);
  return ok_status();
}

Result<std::string> SeccompFilter::pseudo_code() const {
  UniqueFd fd(::memfd_create("kiln-seccomp-pfc", MFD_CLOEXEC));
  if (!fd) return errno_error("memfd_create");
  int rc = seccomp_export_pfc(as_ctx(ctx_), fd.get());
  if (rc != 0) return scmp_error("export", rc);
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return errno_error("seek the exported filter");
  return io::read_fd(fd.get(), 16 << 20, "the exported filter");
}

Status install_thread_filter(ThreadKind kind, const Settings& settings) {
  if (settings.mode == Mode::kDisabled) return ok_status();
  KILN_ASSIGN_OR_RETURN(SeccompFilter filter, SeccompFilter::build(kind, settings.mode));
  return filter.install();
}

}  // namespace kiln::vmm::seccomp
