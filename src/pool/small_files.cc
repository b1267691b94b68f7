// File helpers for the pool (see small_files.h).
#include "src/pool/small_files.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace kiln::kilnd::pool {

void write_small(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string last_lines(const std::string& path, std::int64_t window, std::size_t max_lines,
                       const std::function<bool(const std::string&)>& keep) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  auto size = static_cast<std::int64_t>(in.tellg());
  in.seekg(size > window ? size - window : 0);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> lines;
  std::istringstream ss(text);
  for (std::string l; std::getline(ss, l);) {
    if (!l.empty() && keep(l)) lines.push_back(l);
  }
  std::string out;
  std::size_t start = lines.size() > max_lines ? lines.size() - max_lines : 0;
  for (std::size_t i = start; i < lines.size(); ++i) out += (out.empty() ? "" : " | ") + lines[i];
  return out;
}

std::string log_tail(const std::string& path) {
  return last_lines(path, 4096, 5, [](const std::string&) { return true; });
}

std::string log_warnings(const std::string& path) {
  return last_lines(path, 65536, 3, [](const std::string& l) {
    return l.find("] WARN ") != std::string::npos || l.find("] ERROR ") != std::string::npos;
  });
}

FileId file_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino, st.st_size};
}

}  // namespace kiln::kilnd::pool
