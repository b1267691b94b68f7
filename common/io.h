// The one set of file-descriptor loops kiln uses (after kvmtool's util/read-write.c): whole
// writes and positioned reads that survive EINTR and short transfers, a capped whole-file read
// and mkdir -p. libc only, errors as values, so the static guest agent links it too.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
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
// pwrite(2) of all of `data` at `offset` (the file position is not used or moved).
Status pwrite_all(int fd, const void* data, std::size_t len, std::uint64_t offset, std::string_view what = {});

// Reads exactly `len` bytes at `offset`. A file that ends first is an error:
// "WHAT is truncated: end of file at byte N, M bytes short".
Status pread_all(int fd, void* buf, std::size_t len, std::uint64_t offset, std::string_view what = {});
// The same for a scatter list: fills every buffer of `iov` in order, from `offset`.
Status preadv_all(int fd, std::span<const iovec> iov, std::uint64_t offset, std::string_view what = {});

// Reads from the fd's position to end of file; more than `max_bytes` is refused
// ("WHAT: larger than N bytes") before it is all read.
Result<std::string> read_fd(int fd, std::size_t max_bytes, std::string_view what = {});
// A whole regular file, at most `max_bytes` (a directory, FIFO or device is refused: a FIFO
// could block forever).
Result<std::string> read_file(const std::string& path, std::size_t max_bytes);

// mkdir -p: creates each missing component of `path` with `mode` (less the umask). Existing
// directories, and symlinks to directories, are fine; anything else in the way is an error.
Status make_dirs(const std::string& path, mode_t mode);
// mkdir -p of `relative` below an existing, trusted `base`, refusing a symlink or a file at
// any component, so a tree someone else can write cannot redirect it.
Status make_dirs_below(const std::string& base, std::string_view relative, mode_t mode);

}  // namespace kiln::io
