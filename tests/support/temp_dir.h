// A test's scratch directory: made under /tmp with a unique name, removed with everything in it
// when the owner goes. Header only.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace kiln::testing {

class TempDir {
 public:
  // `prefix` names the test in the directory's name: /tmp/<prefix>-XXXXXX.
  explicit TempDir(const std::string& prefix = "kiln-test") {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Empty when mkdtemp failed (a test should ASSERT_FALSE(dir.path().empty())).
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& relative) const { return path_ + "/" + relative; }
  // Writes `text` to path()/relative (its parent directories made) and returns the full path.
  std::string write(const std::string& relative, const std::string& text) const {
    const std::string full = *this / relative;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(full).parent_path(), ec);
    std::ofstream(full) << text;
    return full;
  }

 private:
  std::string path_;
};

}  // namespace kiln::testing
