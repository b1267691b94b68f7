// Function records as atomically replaced JSON files, one per function.
#include "src/registry/function_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "src/registry/atomic_file.h"

namespace kiln::kilnd::registry {
namespace {

constexpr std::string_view kSuffix = ".json";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

Result<FunctionStore> FunctionStore::open(const std::string& dir) {
  KILN_TRY(make_dirs(dir));
  return FunctionStore(dir);
}

std::string FunctionStore::path_for(const std::string& name, const std::string& tenant) const {
  return dir_ + "/" + function_key(tenant, name) + std::string(kSuffix);
}

Status FunctionStore::save(const FunctionRecord& record) const {
  if (!valid_function_name(record.config.name)) return make_error("invalid function name");
  if (!record.tenant.empty()) {
    if (!valid_tenant_name(record.tenant)) return make_error("invalid tenant name");
    KILN_TRY(make_dirs(dir_ + "/" + record.tenant));
  }
  return io::write_file_atomic(path_for(record.config.name, record.tenant), record_to_state_json(record));
}

Status FunctionStore::remove(const std::string& name, const std::string& tenant) const {
  if (!valid_function_name(name)) return make_error("invalid function name");
  if (!tenant.empty() && !valid_tenant_name(tenant)) return make_error("invalid tenant name");
  return remove_file_durable(path_for(name, tenant));
}

Result<std::vector<FunctionRecord>> FunctionStore::load_all(std::vector<std::string>* problems) const {
  std::vector<FunctionRecord> out;
  KILN_TRY(load_dir("", &out, problems));
  return out;
}

// Loads <dir>/<tenant>/*.json ("" = the admin namespace, whose subdirectories are tenants).
Status FunctionStore::load_dir(const std::string& tenant, std::vector<FunctionRecord>* out,
                               std::vector<std::string>* problems) const {
  std::string dir = tenant.empty() ? dir_ : dir_ + "/" + tenant;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return errno_error("opendir " + dir);
  std::vector<std::pair<std::string, bool>> entries;  // name, is a directory
  while (dirent* e = ::readdir(d)) {
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st {};
      is_dir = ::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    entries.emplace_back(e->d_name, is_dir);
  }
  ::closedir(d);
  std::sort(entries.begin(), entries.end());
  for (const auto& [n, is_dir] : entries) {
    if (n == "." || n == "..") continue;
    std::string path = dir + "/" + n;
    if (is_dir) {
      if (!tenant.empty() || !valid_tenant_name(n)) continue;
      if (auto st = load_dir(n, out, problems); !st.ok() && problems) problems->push_back(st.error().message);
      continue;
    }
    if (ends_with(n, kTempSuffix)) {
      ::unlink(path.c_str());  // an interrupted write; the target still has the old content
      continue;
    }
    if (!ends_with(n, kSuffix)) continue;
    std::string name = n.substr(0, n.size() - kSuffix.size());
    auto text = io::read_file(path, kMaxConfigBytes * 4);
    if (!text.ok()) {
      if (problems) problems->push_back(text.error().message);
      continue;
    }
    auto rec = record_from_state_json(*text);
    if (!rec.ok()) {
      if (problems) problems->push_back(path + ": " + rec.error().message);
      continue;
    }
    if (rec->config.name != name) {
      if (problems) problems->push_back(path + ": name does not match the file name");
      continue;
    }
    if (rec->tenant != tenant) {
      if (problems) problems->push_back(path + ": tenant does not match the directory");
      continue;
    }
    out->push_back(std::move(*rec));
  }
  return ok_status();
}

}  // namespace kiln::kilnd::registry
