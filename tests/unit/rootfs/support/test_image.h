// Test support for kiln-rootfs: tar layers built with libarchive's writer (and raw ustar/PAX
// bytes for headers libarchive would refuse to write), OCI layouts, docker archives, temp dirs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace kiln::rootfs::testing {

struct TarEntry {
  enum class Type { kFile, kDir, kSymlink, kHardlink, kChar, kBlock, kFifo };
  std::string path;
  Type type = Type::kFile;
  std::string data;  // file content
  std::string link;  // symlink target or hardlink target path
  mode_t mode = 0644;
  int64_t uid = 0, gid = 0;
  int64_t mtime = 1000;
  unsigned dev_major = 0, dev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

inline TarEntry file(std::string path, std::string data, mode_t mode = 0644) {
  TarEntry e;
  e.path = std::move(path);
  e.data = std::move(data);
  e.mode = mode;
  return e;
}
inline TarEntry dir(std::string path, mode_t mode = 0755) {
  TarEntry e;
  e.path = std::move(path);
  e.type = TarEntry::Type::kDir;
  e.mode = mode;
  return e;
}
inline TarEntry symlink(std::string path, std::string target) {
  TarEntry e;
  e.path = std::move(path);
  e.type = TarEntry::Type::kSymlink;
  e.link = std::move(target);
  e.mode = 0777;
  return e;
}
inline TarEntry hardlink(std::string path, std::string target) {
  TarEntry e;
  e.path = std::move(path);
  e.type = TarEntry::Type::kHardlink;
  e.link = std::move(target);
  return e;
}

enum class Compression { kNone, kGzip, kZstd };

// A pax-format tar built by libarchive's writer, optionally compressed.
std::string make_tar(const std::vector<TarEntry>& entries, Compression c = Compression::kNone);
std::string compress(const std::string& data, Compression c);

// Raw tar pieces for hostile archives.
std::string raw_header(const std::string& name, char type, uint64_t size,
                       const std::string& link = "", mode_t mode = 0644);
std::string raw_entry(const std::string& name, char type, const std::string& data,
                      const std::string& link = "");
std::string raw_pax(const std::vector<std::pair<std::string, std::string>>& records);
std::string raw_end();

struct ImageSpec {
  std::vector<std::string> layers;  // uncompressed tars
  Compression compression = Compression::kGzip;
  std::vector<std::string> entrypoint{"/bin/server"};
  std::vector<std::string> cmd{"--port", "9000"};
  std::vector<std::string> env{"PATH=/usr/bin:/bin"};
  std::string working_dir = "/srv";
  std::string user = "1000:1000";
  std::string architecture = "amd64";
  bool wrong_diff_id = false;
};

struct WrittenImage {
  std::string manifest_digest;  // sha256:...
  std::string config_digest;
  std::vector<std::string> layer_digests;
};

// Writes an OCI image layout at dir (created) with the image tagged `tag`.
WrittenImage write_oci_layout(const std::string& dir, const ImageSpec& spec, const std::string& tag);
// Writes a docker-save style tarball.
void write_docker_archive(const std::string& path, const ImageSpec& spec, const std::string& repo_tag);
// Tars a directory tree (plain files and dirs) into path, e.g. an OCI layout into an oci-archive.
void tar_directory(const std::string& dir, const std::string& path);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& data);
bool exists(const std::string& path);
// Regular-file contents of an ext4 image path, read with `debugfs -R "cat PATH"`.
std::string debugfs_cat(const std::string& image, const std::string& path);
// `debugfs -R "stat PATH"` output.
std::string debugfs_stat(const std::string& image, const std::string& path);
// Runs argv, returns exit status; output into *out when given.
int run(const std::vector<std::string>& argv, std::string* out = nullptr, bool merge_stderr = true);

}  // namespace kiln::rootfs::testing
