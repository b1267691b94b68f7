// FunctionStore: the function records under <state-dir>/functions/<name>.json (admin
// namespace) and functions/<tenant>/<name>.json, one file per function, each replaced
// atomically; a restarted kilnd loads the same set, each with its owner.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "src/registry/function_config.h"

namespace kiln::kilnd::registry {

class FunctionStore {
 public:
  // Creates <dir> if missing. Loads nothing yet.
  static Result<FunctionStore> open(const std::string& dir);

  // Reads every record; leftover temp files are removed; unreadable or invalid records are
  // skipped and reported in *problems (kilnd logs them) rather than failing the start.
  Result<std::vector<FunctionRecord>> load_all(std::vector<std::string>* problems) const;

  Status save(const FunctionRecord& record) const;
  Status remove(const std::string& name, const std::string& tenant = {}) const;
  std::string path_for(const std::string& name, const std::string& tenant = {}) const;
  const std::string& dir() const { return dir_; }

 private:
  explicit FunctionStore(std::string dir) : dir_(std::move(dir)) {}
  Status load_dir(const std::string& tenant, std::vector<FunctionRecord>* out, std::vector<std::string>* problems) const;
  std::string dir_;
};

}  // namespace kiln::kilnd::registry
