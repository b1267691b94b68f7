// Whole-file reads/writes and the /proc/self/mounts parser used by the jail.
#include "src/jail/host_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <sstream>

#include "common/io.h"
#include "common/unique_fd.h"

namespace kiln::jail {
namespace {

// fstab/proc-mounts fields escape space, tab, newline and backslash as \ooo (getmntent(3)).
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' &&
        s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

Result<std::string> read_text_file(const std::string& path) { return io::read_file(path, kMaxHostFileBytes); }

Status write_text_file(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return errno_error("open " + path);
  ssize_t n = ::write(fd.get(), text.data(), text.size());
  if (n < 0) return errno_error("write '" + text + "' to " + path);
  if (static_cast<size_t>(n) != text.size()) return make_error("short write of '" + text + "' to " + path);
  return ok_status();
}

std::vector<MountEntry> parse_mounts(const std::string& text) {
  std::vector<MountEntry> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    std::string source, target, fstype, options;
    if (!(f >> source >> target >> fstype >> options)) continue;
    MountEntry m{unescape(source), unescape(target), fstype, {}};
    std::istringstream opts(options);
    for (std::string o; std::getline(opts, o, ',');) m.options.push_back(o);
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace kiln::jail
