// Layer application with dirfd-relative, openat2-confined path resolution: parents resolve with
// RESOLVE_IN_ROOT (image symlinks act as in a chroot, never reaching the host), the final
// component is never followed (O_NOFOLLOW / AT_SYMLINK_NOFOLLOW / O_EXCL), and whiteouts may
// not cross symlinks at all. libarchive reads the tar; a second libarchive handle decompresses.
#include "rootfs-builder/unpack/tree_builder.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "common/io.h"
#include "rootfs-builder/unpack/dir_list.h"

namespace kiln::rootfs {

namespace {

constexpr size_t kMaxComponent = 255;
constexpr size_t kMaxXattrs = 128;
constexpr size_t kMaxXattrValue = 64 << 10;

int sys_openat2(int dirfd, const char* path, uint64_t flags, uint64_t resolve) {
  struct open_how how = {};
  how.flags = flags | O_CLOEXEC;
  how.resolve = resolve;
  for (;;) {
    long r = ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (r < 0 && errno == EAGAIN) continue;  // raced with a rename; retry
    return static_cast<int>(r);
  }
}

std::string join(const std::vector<std::string>& comps, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i) s += '/';
    s += comps[i];
  }
  return s;
}

std::string join(const std::vector<std::string>& comps) { return join(comps, comps.size()); }

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

std::string archive_err(archive* a, const char* what) {
  const char* s = archive_error_string(a);
  return std::string(what) + ": " + (s ? s : "unknown libarchive error");
}

}  // namespace

// The decompression stage: reads compressed bytes from fd, yields the tar stream, hashes it
// (diff_id) and enforces the ratio and size caps.
struct LayerStream {
  int fd = -1;
  archive* outer = nullptr;
  Sha256 hash;
  uint64_t compressed = 0;
  uint64_t decompressed = 0;
  const UnpackLimits* limits = nullptr;
  const UnpackStats* stats = nullptr;
  std::string error;  // set when a cap stops the stream
  std::vector<char> in_buf = std::vector<char>(1 << 20);
  std::vector<char> out_buf = std::vector<char>(1 << 20);
  const std::function<void(uint64_t)>* progress = nullptr;
  const TreeBuilder::BlobCheck* blob = nullptr;
  Sha256 blob_hash;

  static la_ssize_t read_compressed(archive* a, void* self, const void** buf) {
    auto* s = static_cast<LayerStream*>(self);
    for (;;) {
      ssize_t n = ::read(s->fd, s->in_buf.data(), s->in_buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return -1;
      s->compressed += static_cast<uint64_t>(n);
      if (s->blob != nullptr) {
        s->blob_hash.update(s->in_buf.data(), static_cast<size_t>(n));
        if (s->compressed > s->blob->size) {
          s->error = "blob is larger than its descriptor size " + std::to_string(s->blob->size);
          archive_set_error(a, EFBIG, "%s", s->error.c_str());
          return -1;
        }
      }
      if (s->progress && *s->progress) (*s->progress)(s->compressed);
      *buf = s->in_buf.data();
      return n;
    }
  }

  // Feeds the tar reader.
  static la_ssize_t read_tar(archive* inner, void* self, const void** buf) {
    auto* s = static_cast<LayerStream*>(self);
    la_ssize_t n = archive_read_data(s->outer, s->out_buf.data(), s->out_buf.size());
    if (n < 0) {
      archive_set_error(inner, EIO, "%s", archive_err(s->outer, "decompressing layer").c_str());
      return -1;
    }
    if (!s->account(static_cast<uint64_t>(n))) {
      archive_set_error(inner, EFBIG, "%s", s->error.c_str());
      return -1;
    }
    *buf = s->out_buf.data();
    return n;
  }

  // Hashes the n bytes just decompressed into out_buf and applies the caps.
  bool account(uint64_t n) {
    hash.update(out_buf.data(), n);
    decompressed += n;
    // File data is capped separately; the rest of a tar stream is headers (PAX records
    // included) and padding, so allow a generous 16 KiB per entry plus 16 MiB.
    uint64_t stream_cap = limits->max_total_bytes + stats->entries * (16 << 10) + (16 << 20);
    if (decompressed > stream_cap) {
      error = "layer exceeds the uncompressed size limit (" + std::to_string(stream_cap) + " bytes)";
      return false;
    }
    if (decompressed > limits->ratio_grace_bytes && compressed > 0 &&
        decompressed / compressed > limits->max_ratio) {
      error = "layer exceeds the decompression ratio limit (" + std::to_string(limits->max_ratio) +
              ":1): possible decompression bomb";
      return false;
    }
    return true;
  }
};

Result<std::vector<std::string>> clean_entry_path(std::string_view raw, size_t max_path) {
  if (raw.size() > max_path) return make_error("entry path longer than " + std::to_string(max_path));
  if (raw.find('\0') != std::string_view::npos) return make_error("entry path contains NUL");
  if (!raw.empty() && raw.front() == '/') {
    return make_error("absolute entry path '" + std::string(raw.substr(0, 200)) + "'");
  }
  std::vector<std::string> comps;
  size_t start = 0;
  while (start <= raw.size()) {
    size_t end = raw.find('/', start);
    if (end == std::string_view::npos) end = raw.size();
    std::string_view c = raw.substr(start, end - start);
    if (c == "..") return make_error("entry path with '..': '" + std::string(raw.substr(0, 200)) + "'");
    if (c.size() > kMaxComponent) return make_error("entry path component longer than 255 bytes");
    if (!c.empty() && c != ".") comps.emplace_back(c);
    start = end + 1;
  }
  return comps;
}

Status remove_tree_at(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return ok_status();
    return errno_error("stat " + name);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) return errno_error("unlink " + name);
    return ok_status();
  }
  UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!sub) return errno_error("open " + name);
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> children, list_dir(sub.get()));
  for (const auto& c : children) KILN_TRY(remove_tree_at(sub.get(), c));
  sub.reset();
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return errno_error("rmdir " + name);
  }
  return ok_status();
}

Result<TreeBuilder> TreeBuilder::create(const std::string& root_dir, UnpackLimits limits) {
  int fd = ::open(root_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error("open " + root_dir);
  TreeBuilder b(UniqueFd(fd), limits);
  b.is_root_user_ = ::geteuid() == 0;
  b.dir_times_[""] = {0, 0};
  if (::fchmod(fd, 0755) != 0) return errno_error("chmod " + root_dir);
  return b;
}

void TreeBuilder::invalidate_cache() {
  have_cache_ = false;
  cached_parent_.reset();
  cached_parent_path_.clear();
}

// Opens (creating missing directories as root:root 0755, mtime 0) the directory at comps,
// resolving symlinks as if root_ were "/".
Result<int> TreeBuilder::parent_dir(const std::vector<std::string>& comps) {
  if (comps.empty()) return root_.get();
  std::string path = join(comps);
  if (have_cache_ && cached_parent_path_ == path) return cached_parent_.get();
  constexpr uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  int fd = sys_openat2(root_.get(), path.c_str(), O_RDONLY | O_DIRECTORY, kResolve);
  if (fd < 0 && errno == ENOENT) {
    // Create the missing tail one component at a time.
    UniqueFd cur(::dup(root_.get()));
    if (!cur) return errno_error("dup");
    for (size_t i = 0; i < comps.size(); ++i) {
      std::string prefix = join(comps, i + 1);
      int next = sys_openat2(root_.get(), prefix.c_str(), O_RDONLY | O_DIRECTORY, kResolve);
      if (next < 0 && errno == ENOENT) {
        if (::mkdirat(cur.get(), comps[i].c_str(), 0755) != 0 && errno != EEXIST) {
          return errno_error("mkdir " + prefix);
        }
        dir_times_.emplace(prefix, std::pair<int64_t, long>{0, 0});
        next = ::openat(cur.get(), comps[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        // Not left to the umask: the image must not depend on who built it.
        if (next >= 0 && ::fchmod(next, 0755) != 0) {
          Error e = errno_error("chmod " + prefix);
          ::close(next);
          return e;
        }
      }
      if (next < 0) return errno_error("open directory " + prefix);
      cur.reset(next);
    }
    fd = cur.release();
  }
  if (fd < 0) {
    if (errno == ENOTDIR) return make_error("parent of an entry is not a directory: " + path);
    return errno_error("resolve " + path);
  }
  cached_parent_.reset(fd);
  cached_parent_path_ = path;
  have_cache_ = true;
  return fd;
}

namespace {

// Applies an entry's xattrs (PAX SCHILY.xattr.*) through set(name, value, size). user.* xattrs
// exist only on regular files and directories (xattr(7)), so links and devices skip them.
Status apply_xattrs(archive_entry* e, bool allow_user,
                    const std::function<int(const char*, const void*, size_t)>& set) {
  archive_entry_xattr_reset(e);
  const char* name;
  const void* value;
  size_t size;
  size_t count = 0;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (++count > kMaxXattrs) return make_error("too many xattrs on one entry");
    if (size > kMaxXattrValue) return make_error("xattr value too large");
    std::string_view n(name);
    bool allowed = (allow_user && n.starts_with("user.")) || n.starts_with("security.") ||
                   n.starts_with("trusted.");
    if (!allowed) continue;
    if (set(name, value, size) != 0) return errno_error(std::string("setxattr ") + name);
  }
  return ok_status();
}

}  // namespace

Status TreeBuilder::set_metadata_fd(int fd, archive_entry* e) {
  if (is_root_user_) {
    uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
    gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
    if (::fchown(fd, uid, gid) != 0) return errno_error("chown");
  }
  // After chown: chown clears setuid/setgid.
  if (::fchmod(fd, archive_entry_perm(e) & 07777) != 0) return errno_error("chmod");
  return apply_xattrs(e, true, [fd](const char* n, const void* v, size_t len) {
    return ::fsetxattr(fd, n, v, len, 0);
  });
}

Status TreeBuilder::write_regular(archive* a, archive_entry* e, int parent, const std::string& name) {
  int fd = ::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return errno_error("create " + name);
  UniqueFd f(fd);
  int64_t size = archive_entry_size(e);
  for (;;) {
    const void* buf;
    size_t len;
    la_int64_t off;
    int r = archive_read_data_block(a, &buf, &len, &off);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) return make_error(archive_err(a, "reading entry data"));
    if (off < 0 || static_cast<uint64_t>(off) > static_cast<uint64_t>(size) ||
        len > static_cast<uint64_t>(size) - static_cast<uint64_t>(off)) {
      return make_error("entry data beyond its declared size");
    }
    KILN_TRY(io::pwrite_all(fd, buf, len, static_cast<uint64_t>(off), name));
  }
  if (::ftruncate(fd, size) != 0) return errno_error("truncate " + name);
  KILN_TRY(set_metadata_fd(fd, e));
  struct timespec ts[2] = {{archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                           {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
  if (::futimens(fd, ts) != 0) return errno_error("utimens " + name);
  return ok_status();
}

Status TreeBuilder::whiteout(const std::vector<std::string>& parent, const std::string& victim) {
  if (victim.empty() || victim == "." || victim == "..") {
    return make_error("invalid whiteout target '" + victim + "'");
  }
  std::vector<std::string> full = parent;
  full.push_back(victim);
  if (layer_paths_.count(join(full))) return ok_status();  // only hides lower layers
  UniqueFd dir;
  if (parent.empty()) {
    dir.reset(::dup(root_.get()));
  } else {
    // A whiteout names an entry of a real directory: crossing a symlink is refused.
    dir.reset(sys_openat2(root_.get(), join(parent).c_str(), O_RDONLY | O_DIRECTORY,
                          RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV));
  }
  if (!dir) {
    if (errno == ENOENT) return ok_status();  // nothing below to hide
    if (errno == ELOOP || errno == ENOTDIR || errno == EXDEV) {
      return make_error("whiteout through a symlink or non-directory: " + join(full));
    }
    return errno_error("resolve whiteout parent " + join(parent));
  }
  invalidate_cache();
  return remove_tree_at(dir.get(), victim);
}

Status TreeBuilder::opaque(const std::vector<std::string>& dirc) {
  UniqueFd dir;
  if (dirc.empty()) {
    dir.reset(::dup(root_.get()));
  } else {
    dir.reset(sys_openat2(root_.get(), join(dirc).c_str(), O_RDONLY | O_DIRECTORY,
                          RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV));
  }
  if (!dir) {
    if (errno == ENOENT) return ok_status();
    if (errno == ELOOP || errno == ENOTDIR || errno == EXDEV) {
      return make_error("opaque marker through a symlink or non-directory: " + join(dirc));
    }
    return errno_error("resolve opaque dir " + join(dirc));
  }
  invalidate_cache();
  return prune_lower(dir.get(), dirc.empty() ? std::string() : join(dirc) + "/", 0);
}

// Removes everything below dirfd that the current layer did not write. Directories this layer
// wrote into (they are in layer_paths_ as ancestors) are descended into, so the result is the
// same whether the opaque marker comes before or after the layer's own entries in the tar.
Status TreeBuilder::prune_lower(int dirfd, const std::string& prefix, int depth) {
  if (depth > 4096) return make_error("directory tree too deep");
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> names, list_dir(dirfd));
  for (const auto& n : names) {
    if (!layer_paths_.count(prefix + n)) {
      KILN_TRY(remove_tree_at(dirfd, n));
      continue;
    }
    UniqueFd sub(::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub) {
      if (errno == ENOTDIR || errno == ELOOP) continue;  // a file or link this layer wrote
      return errno_error("open " + prefix + n);
    }
    KILN_TRY(prune_lower(sub.get(), prefix + n + "/", depth + 1));
  }
  return ok_status();
}

Status TreeBuilder::apply_entry(archive* a, archive_entry* e) {
  if (++stats_.entries > limits_.max_entries) {
    return make_error("image has more than " + std::to_string(limits_.max_entries) + " entries");
  }
  const char* raw = archive_entry_pathname_utf8(e);
  if (raw == nullptr) raw = archive_entry_pathname(e);
  if (raw == nullptr) return make_error("entry without a path name");
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> comps, clean_entry_path(raw, limits_.max_path));
  mode_t type = archive_entry_filetype(e);
  const char* hardlink = archive_entry_hardlink_utf8(e);
  if (hardlink == nullptr) hardlink = archive_entry_hardlink(e);

  if (comps.empty()) {  // "./": metadata of the root directory itself
    if (type != AE_IFDIR) return make_error("root entry is not a directory");
    KILN_TRY(set_metadata_fd(root_.get(), e));
    dir_times_[""] = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
    return ok_status();
  }
  std::string name = comps.back();
  comps.pop_back();
  // image-spec layer.md "Whiteouts": ".wh..wh..opq" makes the directory opaque, ".wh.X" hides X.
  if (name.starts_with(".wh.")) {
    if (name == ".wh..wh..opq") return opaque(comps);
    if (name.starts_with(".wh..wh.")) return ok_status();  // other AUFS metadata: not content
    return whiteout(comps, name.substr(4));
  }

  std::string path = comps.empty() ? name : join(comps) + "/" + name;
  bool is_dir = type == AE_IFDIR && hardlink == nullptr;
  bool seen = !layer_paths_.insert(path).second;
  // Parents count as written by this layer too, so an opaque marker that comes after this
  // entry in the tar keeps them (and this entry) instead of removing the whole subtree.
  for (size_t i = 1; i <= comps.size(); ++i) layer_paths_.insert(join(comps, i));

  KILN_ASSIGN_OR_RETURN(int parent, parent_dir(comps));
  struct stat old;
  bool exists = ::fstatat(parent, name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0;
  if (!exists && errno != ENOENT) return errno_error("stat " + path);
  if (exists && !(is_dir && S_ISDIR(old.st_mode))) {
    if (seen) return make_error("duplicate entry in one layer: " + path);
    // The cached parent stays valid: only paths through parent/name change.
    KILN_TRY(remove_tree_at(parent, name));
    exists = false;
  }

  struct timespec ts[2] = {{archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                           {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
  if (hardlink != nullptr) {
    KILN_ASSIGN_OR_RETURN(std::vector<std::string> target, clean_entry_path(hardlink, limits_.max_path));
    if (target.empty()) return make_error("hardlink to the root directory: " + path);
    std::string tname = target.back();
    target.pop_back();
    UniqueFd tparent(target.empty() ? ::dup(root_.get())
                                    : sys_openat2(root_.get(), join(target).c_str(),
                                                  O_RDONLY | O_DIRECTORY,
                                                  RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV));
    if (!tparent) return errno_error("hardlink target " + std::string(hardlink));
    struct stat tst;
    if (::fstatat(tparent.get(), tname.c_str(), &tst, AT_SYMLINK_NOFOLLOW) != 0) {
      return errno_error("hardlink target " + std::string(hardlink));
    }
    if (S_ISDIR(tst.st_mode)) return make_error("hardlink to a directory: " + path);
    if (::linkat(tparent.get(), tname.c_str(), parent, name.c_str(), 0) != 0) {
      return errno_error("link " + path);
    }
    return ok_status();
  }

  switch (type) {
    case AE_IFREG: {
      int64_t size = archive_entry_size(e);
      if (size < 0) return make_error("negative size for " + path);
      if (static_cast<uint64_t>(size) > limits_.max_total_bytes - stats_.file_bytes) {
        return make_error("image exceeds the total size limit of " +
                          std::to_string(limits_.max_total_bytes) + " bytes at " + path);
      }
      stats_.file_bytes += static_cast<uint64_t>(size);
      KILN_TRY(write_regular(a, e, parent, name));
      return ok_status();
    }
    case AE_IFDIR: {
      if (!exists && ::mkdirat(parent, name.c_str(), 0700) != 0) return errno_error("mkdir " + path);
      UniqueFd d(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!d) return errno_error("open " + path);
      KILN_TRY(set_metadata_fd(d.get(), e));
      dir_times_[path] = {ts[0].tv_sec, ts[0].tv_nsec};
      ++stats_.dirs;
      return ok_status();
    }
    case AE_IFLNK: {
      const char* target = archive_entry_symlink_utf8(e);
      if (target == nullptr) target = archive_entry_symlink(e);
      if (target == nullptr || *target == '\0') return make_error("symlink without target: " + path);
      if (std::string_view(target).size() > limits_.max_path) return make_error("symlink target too long");
      if (::symlinkat(target, parent, name.c_str()) != 0) return errno_error("symlink " + path);
      break;
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
      dev_t dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
      mode_t m = static_cast<mode_t>(type) | (archive_entry_perm(e) & 07777);
      if (::mknodat(parent, name.c_str(), m, type == AE_IFIFO ? 0 : dev) != 0) {
        return errno_error("mknod " + path);
      }
      if (::fchmodat(parent, name.c_str(), archive_entry_perm(e) & 07777, 0) != 0) {
        return errno_error("chmod " + path);
      }
      break;
    }
    default:
      return ok_status();  // sockets and unknown types carry no content
  }
  // Symlinks and device nodes: metadata by name, never following.
  if (is_root_user_ && ::fchownat(parent, name.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                                  static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) != 0) {
    return errno_error("chown " + path);
  }
  if (type != AE_IFLNK && is_root_user_ &&
      ::fchmodat(parent, name.c_str(), archive_entry_perm(e) & 07777, 0) != 0) {
    return errno_error("chmod " + path);
  }
  // xattrs by name: the parent fd was resolved safely and l*xattr never follows the last
  // component, so /proc/self/fd/N/NAME names exactly the entry just created.
  std::string proc_path = "/proc/self/fd/" + std::to_string(parent) + "/" + name;
  KILN_TRY(apply_xattrs(e, false, [&](const char* n, const void* v, size_t len) {
    return ::lsetxattr(proc_path.c_str(), n, v, len, 0);
  }));
  if (::utimensat(parent, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) return errno_error("utimens " + path);
  return ok_status();
}

Result<Digest> TreeBuilder::apply_layer(int fd, const std::function<void(uint64_t)>& progress,
                                        const BlobCheck* blob) {
  layer_paths_.clear();
  invalidate_cache();
  LayerStream s;
  s.fd = fd;
  s.blob = blob;
  s.limits = &limits_;
  s.stats = &stats_;
  s.progress = &progress;
  Result<Digest> r = read_layer(s);
  invalidate_cache();
  if (blob == nullptr) return r;
  // A corrupt blob is the real cause of whatever the tar reader saw: check it first. Bytes
  // the reader did not consume (or after the compressed stream's end) still belong to it.
  for (;;) {
    ssize_t n = ::read(fd, s.in_buf.data(), s.in_buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read layer");
    if (n == 0) break;
    s.compressed += static_cast<uint64_t>(n);
    if (s.compressed > blob->size) {
      return make_error("blob is larger than its descriptor size " + std::to_string(blob->size));
    }
    s.blob_hash.update(s.in_buf.data(), static_cast<size_t>(n));
  }
  if (s.compressed > blob->size) {
    return make_error("blob is larger than its descriptor size " + std::to_string(blob->size));
  }
  if (s.compressed != blob->size) {
    return make_error("blob truncated: got " + std::to_string(s.compressed) + " of " +
                      std::to_string(blob->size) + " bytes");
  }
  Digest got = s.blob_hash.finish();
  if (got != blob->digest) {
    return make_error("digest mismatch: expected " + blob->digest.str() + ", got " + got.str());
  }
  return r;
}

Result<Digest> TreeBuilder::read_layer(LayerStream& s) {
  ArchivePtr outer(archive_read_new());
  ArchivePtr inner(archive_read_new());
  if (!outer || !inner) return make_error("archive_read_new failed");
  archive_read_support_filter_gzip(outer.get());
  archive_read_support_filter_zstd(outer.get());
  archive_read_support_format_raw(outer.get());
  if (archive_read_open(outer.get(), &s, nullptr, &LayerStream::read_compressed, nullptr) != ARCHIVE_OK) {
    return make_error(archive_err(outer.get(), "opening layer"));
  }
  s.outer = outer.get();
  archive_entry* raw_entry;
  if (archive_read_next_header(outer.get(), &raw_entry) != ARCHIVE_OK) {
    return make_error(archive_err(outer.get(), "reading layer"));
  }
  archive_read_support_format_tar(inner.get());
  if (archive_read_open(inner.get(), &s, nullptr, &LayerStream::read_tar, nullptr) != ARCHIVE_OK) {
    if (!s.error.empty()) return make_error(s.error);
    return make_error(archive_err(inner.get(), "layer is not a tar archive"));
  }
  for (;;) {
    archive_entry* e;
    int r = archive_read_next_header(inner.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r == ARCHIVE_WARN) {
      // Malformed PAX records, skipped garbage, bad sparse maps: refuse. Only a name that
      // cannot be converted to the C locale is harmless (the UTF-8 names are used below).
      const char* w = archive_error_string(inner.get());
      if (w == nullptr || std::string_view(w).find("can't be converted") == std::string_view::npos) {
        return make_error(archive_err(inner.get(), "damaged layer tar"));
      }
    } else if (r != ARCHIVE_OK) {
      if (!s.error.empty()) return make_error(s.error);
      return make_error(archive_err(inner.get(), "reading layer tar"));
    }
    Status st = apply_entry(inner.get(), e);
    if (!st.ok()) {
      if (!s.error.empty()) return make_error(s.error);
      return st.error();
    }
  }
  // The diff_id covers the whole uncompressed stream, including padding after the tar end.
  for (;;) {
    la_ssize_t n = archive_read_data(outer.get(), s.out_buf.data(), s.out_buf.size());
    if (n < 0) return make_error(archive_err(outer.get(), "decompressing layer"));
    if (n == 0) break;
    if (!s.account(static_cast<uint64_t>(n))) return make_error(s.error);
  }
  stats_.stream_bytes += s.decompressed;
  return s.hash.finish();
}

Status TreeBuilder::finish() {
  invalidate_cache();
  // Deepest paths first is not required (a utime does not touch the parent), but removed or
  // replaced directories must be skipped: resolve without symlinks and ignore ENOENT/ENOTDIR.
  for (const auto& [path, t] : dir_times_) {
    UniqueFd d(path.empty() ? ::dup(root_.get())
                            : sys_openat2(root_.get(), path.c_str(), O_RDONLY | O_DIRECTORY,
                                          RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV));
    if (!d) {
      if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) continue;
      return errno_error("open " + path);
    }
    struct timespec ts[2] = {{t.first, t.second}, {t.first, t.second}};
    if (::futimens(d.get(), ts) != 0) return errno_error("utimens " + path);
  }
  return ok_status();
}

}  // namespace kiln::rootfs
