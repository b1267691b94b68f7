// The pool's few file helpers beside common/io.h: write a marker file, the last lines of a log,
// a file's identity.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace kiln::kilnd::pool {

// Replaces `path` with `text` (best effort: a marker or pid file nothing depends on for safety).
void write_small(const std::string& path, const std::string& text);

// The last `max_lines` non-empty lines of the file's last `window` bytes that `keep` accepts,
// joined with " | " ("" when none or unreadable).
std::string last_lines(const std::string& path, std::int64_t window, std::size_t max_lines,
                       const std::function<bool(const std::string&)>& keep);

// The last few lines of a kiln-vmm log (serial console and its own messages), for error reports.
std::string log_tail(const std::string& path);

// The VMM's own warnings and errors (kiln-vmm log lines "[<id>] WARN ..."/"ERROR"), the last
// few: what an instance leaves behind for a diagnosis once its run dir is gone.
std::string log_warnings(const std::string& path);

// A file as it was at one moment (device, inode, size): a later FileId tells whether it is still
// the same file. Default-constructed (size -1) when the file does not exist.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  bool operator==(const FileId&) const = default;
};
FileId file_id(const std::string& path);

}  // namespace kiln::kilnd::pool
