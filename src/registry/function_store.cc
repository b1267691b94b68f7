// Function records as atomically replaced JSON files, one per function.
#include "src/registry/function_store.h"

#include <dirent.h>
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

std::string FunctionStore::path_for(const std::string& name) const {
  return dir_ + "/" + name + std::string(kSuffix);
}

Status FunctionStore::save(const FunctionRecord& record) const {
  if (!valid_function_name(record.config.name)) return make_error("invalid function name");
  return write_file_atomic(path_for(record.config.name), record_to_state_json(record));
}

Status FunctionStore::remove(const std::string& name) const {
  if (!valid_function_name(name)) return make_error("invalid function name");
  return remove_file_durable(path_for(name));
}

Result<std::vector<FunctionRecord>> FunctionStore::load_all(std::vector<std::string>* problems) const {
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return errno_error("opendir " + dir_);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<FunctionRecord> out;
  for (const auto& n : names) {
    if (n == "." || n == "..") continue;
    std::string path = dir_ + "/" + n;
    if (ends_with(n, kTempSuffix)) {
      ::unlink(path.c_str());  // an interrupted write; the target still has the old content
      continue;
    }
    if (!ends_with(n, kSuffix)) continue;
    std::string name = n.substr(0, n.size() - kSuffix.size());
    auto text = read_file(path, kMaxConfigBytes * 4);
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
    out.push_back(std::move(*rec));
  }
  return out;
}

}  // namespace kiln::kilnd::registry
