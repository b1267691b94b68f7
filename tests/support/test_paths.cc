// Run-time discovery of the build and source trees for tests (see test_paths.h).
#include "tests/support/test_paths.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace kiln::testing {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "test paths: %s\n", why.c_str());
  std::abort();
}

std::string from_env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::string();
}

}  // namespace

const std::string& build_dir() {
  static const std::string dir = [] {
    if (auto env = from_env("KILN_BUILD_DIR"); !env.empty()) return env;
    std::error_code ec;
    fs::path exe = fs::canonical("/proc/self/exe", ec);
    if (ec) die("cannot read /proc/self/exe: " + ec.message());
    for (fs::path p = exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path()) {
      if (fs::exists(p / "CMakeCache.txt")) return p.string();
    }
    die("no CMakeCache.txt above " + exe.string() + "; set KILN_BUILD_DIR");
  }();
  return dir;
}

const std::string& source_dir() {
  static const std::string dir = [] {
    if (auto env = from_env("KILN_SOURCE_DIR"); !env.empty()) return env;
    std::ifstream cache(build_dir() + "/CMakeCache.txt");
    const std::string key = "CMAKE_HOME_DIRECTORY:INTERNAL=";
    for (std::string line; std::getline(cache, line);) {
      if (line.rfind(key, 0) == 0) return line.substr(key.size());
    }
    die("no " + key + " in " + build_dir() + "/CMakeCache.txt; set KILN_SOURCE_DIR");
  }();
  return dir;
}

std::string build_path(const std::string& relative) { return build_dir() + "/" + relative; }

}  // namespace kiln::testing
