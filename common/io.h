// The one set of file-descriptor loops kiln uses (after kvmtool's util/read-write.c): whole
// writes and positioned reads that survive EINTR and short transfers, a capped whole-file read,
// atomic file replacement and mkdir -p. libc only, errors as values, so the static guest agent
// links it too.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace kiln::io {

// `what` names the file or stream in error messages ("write /state/f.json: No space left on
// device"); it may be empty. A syscall error keeps its errno in Error::sys_errno.

// Writes all of `data`, retrying after EINTR and short writes.
Status write_all(int fd, const void* data, std::size_t len, std::string_view what = {});
Status write_all(int fd, std::string_view data, std::string_view what = {});
// The same over a socket with send(2) and MSG_NOSIGNAL: a peer that went away is an error
// (EPIPE), never a SIGPIPE for the process.
Status send_all(int fd, std::string_view data, std::string_view what = {});
// pwrite(2) of all of `data` at `offset` (the file position is not used or moved).
Status pwrite_all(int fd, const void* data, std::size_t len, std::uint64_t offset, std::string_view what = {});

// Reads exactly `len` bytes at `offset`. A file that ends first is an error:
// "WHAT is truncated: end of file at byte N, M bytes short".
Status pread_all(int fd, void* buf, std::size_t len, std::uint64_t offset, std::string_view what = {});
// The same for a scatter list: fills every buffer of `iov` in order, from `offset`.
Status preadv_all(int fd, std::span<const iovec> iov, std::uint64_t offset, std::string_view what = {});

// Reads exactly `len` bytes from a stream (a socket, a pipe), retrying after EINTR and short
// reads. A peer that closes first is an error: "WHAT: closed after N of M bytes".
Status read_exact(int fd, void* buf, std::size_t len, std::string_view what = {});

// Reads from the fd's position to end of file; more than `max_bytes` is refused
// ("WHAT: larger than N bytes") before it is all read.
Result<std::string> read_fd(int fd, std::size_t max_bytes, std::string_view what = {});
// A whole regular file, at most `max_bytes` (a directory, FIFO or device is refused: a FIFO
// could block forever).
Result<std::string> read_file(const std::string& path, std::size_t max_bytes);

// Temp files of write_file_atomic are "<path>.<pid>.<n>.tmp". One that is left over (its writer
// died before the rename) may be deleted by whoever finds it: the target is still intact.
inline constexpr std::string_view kAtomicTempSuffix = ".tmp";

struct AtomicWriteOptions {
  mode_t mode = 0600;  // of the new file (less the umask)
  // fsync the directory after the rename, so the new name itself survives a crash. Off only
  // where the caller calls sync_parent_dir itself later, because the writing thread may not
  // open directories (kiln-vmm's event loop under its seccomp filter).
  bool sync_dir = true;
};

// Replaces `path` atomically: `fill` writes into a new temp file next to it (same directory, so
// the rename is atomic; created O_EXCL, so nothing already there is followed or reused), which
// is fsynced and renamed over `path`; then the directory is fsynced. A crash leaves the old or
// the new content; on any error the temp file is removed and `path` is untouched.
Status write_file_atomic(const std::string& path, const std::function<Status(int fd)>& fill,
                         const AtomicWriteOptions& options = {});
Status write_file_atomic(const std::string& path, std::string_view content, const AtomicWriteOptions& options = {});
// fsync(2) of the directory holding `path`: makes a rename or unlink in it durable.
Status sync_parent_dir(const std::string& path);

// mkdir -p: creates each missing component of `path` with `mode` (less the umask). Existing
// directories, and symlinks to directories, are fine; anything else in the way is an error.
Status make_dirs(const std::string& path, mode_t mode);
// mkdir -p of `relative` below an existing, trusted `base`, refusing a symlink or a file at
// any component, so a tree someone else can write cannot redirect it.
Status make_dirs_below(const std::string& base, std::string_view relative, mode_t mode);

}  // namespace kiln::io
