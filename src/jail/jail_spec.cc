// Validation of a JailSpec (ids, paths, cgroup keys, limits) and the jail's path layout.
// Firecracker's jailer: "Validate all provided paths and the VM id" before anything else.
#include "src/jail/jail_spec.h"

#include <sys/stat.h>
#include <unistd.h>

#include <set>

namespace kiln::jail {
namespace {

bool is_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

// Splits "a/b/c" on '/'; empty components are kept so callers can refuse them.
std::vector<std::string_view> components(std::string_view p) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t slash = p.find('/', start);
    out.push_back(p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) return out;
    start = slash + 1;
  }
}

Status check_components(std::string_view what, std::string_view rel) {
  for (std::string_view c : components(rel)) {
    if (c.empty()) return make_error(std::string(what) + ": empty path component (\"//\" or a trailing '/')");
    if (c == "." || c == "..") return make_error(std::string(what) + ": '" + std::string(c) + "' components are not allowed");
  }
  return ok_status();
}

Status check_existing(std::string_view what, const std::string& path, mode_t want_type, const char* type_name) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_error(std::string(what) + ": " + path);
  if ((st.st_mode & S_IFMT) != want_type) return make_error(std::string(what) + ": " + path + " is not a " + type_name);
  return ok_status();
}

// A cgroup interface file: "<controller>.<name>", lower-case, no path characters. cgroup.*
// files (cgroup.procs, cgroup.subtree_control, ...) belong to the jail itself.
Status check_cgroup_setting(const CgroupSetting& s) {
  const std::string what = "cgroup setting '" + s.file + "'";
  if (s.file.empty() || s.file.size() > 64) return make_error(what + ": file name must be 1 to 64 characters");
  for (char c : s.file) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
    if (!ok) return make_error(what + ": file name may only hold [a-z0-9_.]");
  }
  size_t dot = s.file.find('.');
  if (dot == 0 || dot == std::string::npos || dot + 1 == s.file.size())
    return make_error(what + ": expected <controller>.<file>, e.g. memory.max");
  if (s.file.rfind("cgroup.", 0) == 0) return make_error(what + ": cgroup.* files are managed by the jail");
  if (s.value.empty() || s.value.size() > 4096) return make_error(what + ": value must be 1 to 4096 bytes");
  if (s.value.find_first_of(std::string_view("\n\0", 2)) != std::string::npos)
    return make_error(what + ": value may not contain a newline or NUL");
  return ok_status();
}

}  // namespace

Status validate_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength)
    return make_error("id: must be 1 to " + std::to_string(kMaxIdLength) + " characters long (got " +
                      std::to_string(id.size()) + ")");
  for (char c : id)
    if (!is_id_char(c)) return make_error("id: may only contain alphanumeric characters and '-'");
  return ok_status();
}

Status validate_path_string(std::string_view what, std::string_view path) {
  if (path.empty()) return make_error(std::string(what) + ": empty path");
  if (path.find('\0') != std::string_view::npos) return make_error(std::string(what) + ": path contains NUL");
  if (path.size() > 4095) return make_error(std::string(what) + ": path longer than PATH_MAX");
  if (path[0] != '/') return make_error(std::string(what) + ": must be an absolute path: " + std::string(path));
  if (path == "/") return ok_status();
  return check_components(what, path.substr(1));
}

Status validate_spec(const JailSpec& spec) {
  KILN_TRY(validate_id(spec.id));
  KILN_TRY(validate_path_string("exec file", spec.exec_file));
  KILN_TRY(check_existing("exec file", spec.exec_file, S_IFREG, "regular file"));
  if (::access(spec.exec_file.c_str(), X_OK) != 0) return errno_error("exec file: " + spec.exec_file + " is not executable");
  if (spec.uid == 0) return make_error("uid: must not be 0 (the VMM runs as a per-VM unprivileged user)");
  if (spec.gid == 0) return make_error("gid: must not be 0 (the VMM runs as a per-VM unprivileged group)");
  KILN_TRY(validate_path_string("chroot base dir", spec.chroot_base_dir));
  KILN_TRY(check_existing("chroot base dir", spec.chroot_base_dir, S_IFDIR, "directory"));
  if (!spec.netns.empty()) {
    KILN_TRY(validate_path_string("netns", spec.netns));
    struct stat st {};
    if (::stat(spec.netns.c_str(), &st) != 0) return errno_error("netns: " + spec.netns);
  }

  if (!spec.parent_cgroup.empty()) {
    if (spec.parent_cgroup.size() > 255) return make_error("parent cgroup: longer than 255 characters");
    if (spec.parent_cgroup[0] == '/') return make_error("parent cgroup: must be a relative path");
    for (char c : spec.parent_cgroup)
      if (!(is_id_char(c) || c == '_' || c == '.' || c == '/'))
        return make_error("parent cgroup: may only contain [A-Za-z0-9._-] and '/'");
    KILN_TRY(check_components("parent cgroup", spec.parent_cgroup));
  }
  for (const auto& s : spec.cgroup_settings) KILN_TRY(check_cgroup_setting(s));
  if (spec.limits.memory_bytes && *spec.limits.memory_bytes < 4096)
    return make_error("memory limit: must be at least 4096 bytes");
  if (spec.limits.cpu_millicores && (*spec.limits.cpu_millicores == 0 || *spec.limits.cpu_millicores > 1'000'000))
    return make_error("cpu limit: must be 1 to 1000000 millicores");
  if (spec.limits.pids_max && *spec.limits.pids_max == 0) return make_error("pids limit: must be at least 1");
  if (spec.rlimit_nofile && *spec.rlimit_nofile < 3) return make_error("resource limit no-file: must be at least 3");

  const std::string exec_in_jail = "/" + exec_name(spec);
  std::set<std::string> seen;
  for (const auto& f : spec.files) {
    KILN_TRY(validate_path_string("jail file (host side)", f.host_path));
    struct stat st {};
    if (::stat(f.host_path.c_str(), &st) != 0) return errno_error("jail file: " + f.host_path);
    // A socket: a lazy root disk's NBD server, which the VMM connects to where it is bound.
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode) && !S_ISSOCK(st.st_mode))
      return make_error("jail file: " + f.host_path + " is not a regular file, block device or socket");
    KILN_TRY(validate_path_string("jail file (jail side)", f.jail_path));
    if (f.jail_path == "/" || f.jail_path == "/dev" || f.jail_path.rfind("/dev/", 0) == 0)
      return make_error("jail file: " + f.jail_path + " is reserved (the jail's root and /dev)");
    if (f.jail_path == exec_in_jail) return make_error("jail file: " + f.jail_path + " is where the exec file goes");
    if (!seen.insert(f.jail_path).second) return make_error("jail file: " + f.jail_path + " given twice");
  }
  // A file cannot also be a directory on another file's path ("/a" and "/a/b").
  for (const auto& p : seen) {
    auto next = seen.upper_bound(p);
    if (next != seen.end() && next->rfind(p + "/", 0) == 0)
      return make_error("jail file: " + p + " is also a directory of " + *next);
  }
  return ok_status();
}

std::string exec_name(const JailSpec& spec) {
  size_t slash = spec.exec_file.rfind('/');
  return slash == std::string::npos ? spec.exec_file : spec.exec_file.substr(slash + 1);
}

std::string jail_dir(const JailSpec& spec) {
  std::string base = spec.chroot_base_dir;
  if (base.size() > 1 && base.back() == '/') base.pop_back();
  if (base == "/") base.clear();
  return base + "/" + exec_name(spec) + "/" + spec.id;
}

std::string chroot_dir(const JailSpec& spec) { return jail_dir(spec) + "/root"; }

std::string parent_cgroup(const JailSpec& spec) {
  return spec.parent_cgroup.empty() ? exec_name(spec) : spec.parent_cgroup;
}

}  // namespace kiln::jail
