// Blob store: temp-write, verify (size + sha256), fsync, rename. Nothing unverified is visible.
#include "rootfs-builder/digest/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "common/io.h"

namespace kiln::rootfs {

BlobWriter::~BlobWriter() { discard(); }

BlobWriter::BlobWriter(BlobWriter&& o) noexcept { *this = std::move(o); }

BlobWriter& BlobWriter::operator=(BlobWriter&& o) noexcept {
  if (this != &o) {
    discard();
    fd_ = std::move(o.fd_);
    tmp_path_ = std::exchange(o.tmp_path_, std::string());
    hash_ = std::move(o.hash_);
    written_ = o.written_;
    expected_digest_ = o.expected_digest_;
    expected_size_ = o.expected_size_;
  }
  return *this;
}

void BlobWriter::discard() {
  fd_.reset();
  if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
  tmp_path_.clear();
}

Status BlobWriter::write(const void* data, size_t len) {
  if (!fd_.valid()) return make_error("blob writer is closed");
  if (expected_size_ && (len > *expected_size_ || written_ > *expected_size_ - len)) {
    return make_error("blob is larger than its descriptor size " + std::to_string(*expected_size_));
  }
  KILN_TRY(io::write_all(fd_.get(), data, len, tmp_path_));
  hash_->update(data, len);
  written_ += len;
  return ok_status();
}

Result<BlobStore> BlobStore::open(const std::string& dir) {
  KILN_TRY(io::make_dirs(dir + "/sha256", 0755));
  KILN_TRY(io::make_dirs(dir + "/tmp", 0755));
  return BlobStore(dir);
}

bool BlobStore::has(const Digest& d) const {
  struct stat st;
  return ::stat(path(d).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<BlobWriter> BlobStore::begin(std::optional<Digest> expected,
                                    std::optional<uint64_t> expected_size) {
  static std::atomic<uint64_t> counter{0};
  BlobWriter w;
  w.tmp_path_ = dir_ + "/tmp/" + std::to_string(::getpid()) + "-" + std::to_string(counter++) +
                ".partial";
  int fd = ::open(w.tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    Error e = errno_error("create " + w.tmp_path_);
    w.tmp_path_.clear();
    return e;
  }
  w.fd_.reset(fd);
  w.hash_ = std::make_unique<Sha256>();
  w.expected_digest_ = std::move(expected);
  w.expected_size_ = expected_size;
  return w;
}

Result<Digest> BlobStore::commit(BlobWriter&& in) {
  BlobWriter w = std::move(in);  // discarded on every error path below
  if (!w.fd_.valid()) return make_error("blob writer is closed");
  if (w.expected_size_ && w.written_ != *w.expected_size_) {
    return make_error("blob truncated: got " + std::to_string(w.written_) + " of " +
                      std::to_string(*w.expected_size_) + " bytes");
  }
  Digest got = w.hash_->finish();
  if (w.expected_digest_ && got != *w.expected_digest_) {
    return make_error("digest mismatch: expected " + w.expected_digest_->str() + ", got " +
                      got.str());
  }
  if (::fsync(w.fd_.get()) != 0) return errno_error("fsync blob");
  w.fd_.reset();
  if (::rename(w.tmp_path_.c_str(), path(got).c_str()) != 0) return errno_error("rename blob");
  w.tmp_path_.clear();
  return got;
}

Result<Digest> BlobStore::import_file(const std::string& src, std::optional<Digest> expected,
                                      std::optional<uint64_t> expected_size) {
  if (expected && has(*expected)) return *expected;
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return errno_error("open " + src);
  return import_fd(in.get(), std::move(expected), expected_size);
}

Result<Digest> BlobStore::import_fd(int fd, std::optional<Digest> expected,
                                    std::optional<uint64_t> expected_size) {
  if (expected && has(*expected)) return *expected;
  KILN_ASSIGN_OR_RETURN(BlobWriter w, begin(expected, expected_size));
  std::vector<char> buf(1 << 20);
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("read blob source");
    }
    if (n == 0) break;
    KILN_TRY(w.write(buf.data(), static_cast<size_t>(n)));
    off += n;
  }
  return commit(std::move(w));
}

Result<std::string> read_file_capped(const std::string& path, size_t max_size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open " + path);
  return io::read_fd(fd.get(), max_size, path);
}

Result<std::string> BlobStore::read(const Digest& d, size_t max_size) const {
  return io::read_file(path(d), max_size);
}

}  // namespace kiln::rootfs
