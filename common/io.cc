// The read/write loops, capped file read, atomic file replacement and mkdir -p of common/io.h.
#include "common/io.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <vector>

#include "common/unique_fd.h"

namespace kiln::io {
namespace {

std::string named(std::string_view verb, std::string_view what) {
  std::string s(verb);
  if (!what.empty()) s.append(" ").append(what);
  return s;
}

Error truncated(std::string_view what, std::uint64_t at, std::size_t missing) {
  return make_error((what.empty() ? std::string("file") : std::string(what)) + " is truncated: end of file at byte " +
                    std::to_string(at) + ", " + std::to_string(missing) + " bytes short");
}

Error too_large(std::string_view what, std::size_t max_bytes) {
  return make_error((what.empty() ? std::string("file") : std::string(what)) + ": larger than " +
                    std::to_string(max_bytes) + " bytes");
}

}  // namespace

Status write_all(int fd, const void* data, std::size_t len, std::string_view what) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    // write(2) returning 0 for a non-empty buffer would loop forever: report it as EIO.
    if (n <= 0) return errno_error(named("write", what), n == 0 ? EIO : errno);
    p += n;
    len -= static_cast<std::size_t>(n);
  }
  return ok_status();
}

Status write_all(int fd, std::string_view data, std::string_view what) {
  return write_all(fd, data.data(), data.size(), what);
}

Status send_all(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_error(named("send", what), n == 0 ? EIO : errno);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok_status();
}

Status read_exact(int fd, void* buf, std::size_t len, std::string_view what) {
  char* p = static_cast<char*>(buf);
  std::size_t got = 0;
  while (got < len) {
    ssize_t n = ::read(fd, p + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(named("read", what));
    if (n == 0) {
      return make_error((what.empty() ? std::string("stream") : std::string(what)) + ": closed after " +
                        std::to_string(got) + " of " + std::to_string(len) + " bytes");
    }
    got += static_cast<std::size_t>(n);
  }
  return ok_status();
}

Status pwrite_all(int fd, const void* data, std::size_t len, std::uint64_t offset, std::string_view what) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::pwrite(fd, p, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_error(named("write", what), n == 0 ? EIO : errno);
    p += n;
    len -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return ok_status();
}

Status pread_all(int fd, void* buf, std::size_t len, std::uint64_t offset, std::string_view what) {
  char* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = ::pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(named("read", what));
    if (n == 0) return truncated(what, offset, len);
    p += n;
    len -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return ok_status();
}

Status preadv_all(int fd, std::span<const iovec> iov, std::uint64_t offset, std::string_view what) {
  std::vector<iovec> rest(iov.begin(), iov.end());  // advanced in place as bytes arrive
  std::size_t first = 0;
  std::size_t missing = 0;
  for (const iovec& v : rest) missing += v.iov_len;
  while (first < rest.size()) {
    if (rest[first].iov_len == 0) {
      ++first;
      continue;
    }
    const std::size_t count = std::min<std::size_t>(rest.size() - first, IOV_MAX);
    ssize_t n = ::preadv(fd, rest.data() + first, static_cast<int>(count), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(named("read", what));
    if (n == 0) return truncated(what, offset, missing);
    auto got = static_cast<std::size_t>(n);
    offset += got;
    missing -= got;
    while (got > 0) {
      const std::size_t take = std::min(got, rest[first].iov_len);
      rest[first].iov_base = static_cast<char*>(rest[first].iov_base) + take;
      rest[first].iov_len -= take;
      got -= take;
      if (rest[first].iov_len == 0) ++first;
    }
  }
  return ok_status();
}

Result<std::string> read_fd(int fd, std::size_t max_bytes, std::string_view what) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(named("read", what));
    if (n == 0) return out;
    if (static_cast<std::size_t>(n) > max_bytes - out.size()) return too_large(what, max_bytes);
    out.append(buf, static_cast<std::size_t>(n));
  }
}

Result<std::string> read_file(const std::string& path, std::size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) return errno_error("open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("stat " + path);
  if (!S_ISREG(st.st_mode)) return make_error(path + ": not a regular file");
  // Refused at once when the size already says so; read_fd re-checks, as the file may grow.
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) return too_large(path, max_bytes);
  return read_fd(fd.get(), max_bytes, path);
}

Status sync_parent_dir(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return errno_error("open " + dir);
  if (::fsync(fd.get()) != 0) return errno_error("fsync " + dir);
  return ok_status();
}

Status write_file_atomic(const std::string& path, const std::function<Status(int fd)>& fill,
                         const AtomicWriteOptions& options) {
  // pid + counter keep concurrent writers (threads, processes) apart; a name left by a dead
  // process with the same pid (a jail's pid 1, say) is skipped rather than reused.
  static std::atomic<std::uint64_t> counter{0};
  constexpr int kAttempts = 16;
  std::string tmp;
  UniqueFd fd;
  for (int attempt = 0; attempt < kAttempts && !fd; ++attempt) {
    tmp = path + "." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1)) +
          std::string(kAtomicTempSuffix);
    fd.reset(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, options.mode));
    if (!fd && errno != EEXIST) break;
  }
  if (!fd) return errno_error("create " + tmp);
  Status st = fill(fd.get());
  if (st.ok() && ::fsync(fd.get()) != 0) st = errno_error("fsync " + tmp);
  fd.reset();
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = errno_error("rename " + tmp + " to " + path);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return options.sync_dir ? sync_parent_dir(path) : ok_status();
}

Status write_file_atomic(const std::string& path, std::string_view content, const AtomicWriteOptions& options) {
  return write_file_atomic(path, [&](int fd) { return write_all(fd, content, path); }, options);
}

Status make_dirs(const std::string& path, mode_t mode) {
  if (path.empty()) return make_error("mkdir: empty directory path");
  for (std::size_t end = 0; end != std::string::npos;) {
    end = path.find('/', end + 1);
    const std::string cur = path.substr(0, end);
    if (cur.empty() || cur.back() == '/') continue;  // the root, or a doubled slash
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) return errno_error("mkdir " + cur);
  }
  // EEXIST also covers a file or a dangling link in the way; what is there must be a directory.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_error("stat " + path);
  if (!S_ISDIR(st.st_mode)) return make_error(path + " exists and is not a directory");
  return ok_status();
}

Status make_dirs_below(const std::string& base, std::string_view relative, mode_t mode) {
  std::string path = base;
  std::size_t start = 0;
  while (start < relative.size()) {
    std::size_t slash = relative.find('/', start);
    if (slash == std::string_view::npos) slash = relative.size();
    if (slash > start) {
      path.append("/").append(relative.substr(start, slash - start));
      if (::mkdir(path.c_str(), mode) != 0) {
        if (errno != EEXIST) return errno_error("mkdir " + path);
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0) return errno_error("lstat " + path);
        if (!S_ISDIR(st.st_mode)) return make_error(path + " exists and is not a directory");
      }
    }
    start = slash + 1;
  }
  return ok_status();
}

}  // namespace kiln::io
