// Test image construction for kiln-rootfs tests (libarchive writer + nlohmann/json).
#include "tests/unit/rootfs/support/test_image.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/io.h"
#include "common/unique_fd.h"
#include "rootfs-builder/digest/digest.h"

extern char** environ;

namespace kiln::rootfs::testing {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void check(int r, archive* a, const char* what) {
  if (r < ARCHIVE_WARN) {
    throw std::runtime_error(std::string(what) + ": " + (archive_error_string(a) ? archive_error_string(a) : "?"));
  }
}

la_ssize_t append_cb(archive*, void* user, const void* buf, size_t len) {
  static_cast<std::string*>(user)->append(static_cast<const char*>(buf), len);
  return static_cast<la_ssize_t>(len);
}

archive* new_writer(std::string* out, Compression c) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (c == Compression::kGzip) archive_write_add_filter_gzip(a);
  if (c == Compression::kZstd) archive_write_add_filter_zstd(a);
  archive_write_set_bytes_in_last_block(a, 1);
  check(archive_write_open(a, out, nullptr, append_cb, nullptr), a, "open writer");
  return a;
}

std::string digest_of(const std::string& s) { return sha256_of(s).str(); }

void put_blob(const std::string& dir, const std::string& data) {
  write_file(dir + "/blobs/sha256/" + sha256_of(data).hex, data);
}

std::string octal(uint64_t v, size_t width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llo", static_cast<int>(width - 1), static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

std::string make_tar(const std::vector<TarEntry>& entries, Compression c) {
  std::string out;
  archive* a = new_writer(&out, c);
  for (const auto& e : entries) {
    archive_entry* en = archive_entry_new();
    archive_entry_set_pathname(en, e.path.c_str());
    archive_entry_set_uid(en, e.uid);
    archive_entry_set_gid(en, e.gid);
    archive_entry_set_mtime(en, e.mtime, 0);
    archive_entry_set_perm(en, e.mode);
    for (const auto& [k, v] : e.xattrs) archive_entry_xattr_add_entry(en, k.c_str(), v.data(), v.size());
    switch (e.type) {
      case TarEntry::Type::kFile:
        archive_entry_set_filetype(en, AE_IFREG);
        archive_entry_set_size(en, static_cast<la_int64_t>(e.data.size()));
        break;
      case TarEntry::Type::kDir:
        archive_entry_set_filetype(en, AE_IFDIR);
        break;
      case TarEntry::Type::kSymlink:
        archive_entry_set_filetype(en, AE_IFLNK);
        archive_entry_set_symlink(en, e.link.c_str());
        break;
      case TarEntry::Type::kHardlink:
        archive_entry_set_filetype(en, AE_IFREG);
        archive_entry_set_hardlink(en, e.link.c_str());
        archive_entry_set_size(en, 0);
        break;
      case TarEntry::Type::kChar:
      case TarEntry::Type::kBlock:
        archive_entry_set_filetype(en, e.type == TarEntry::Type::kChar ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_rdevmajor(en, e.dev_major);
        archive_entry_set_rdevminor(en, e.dev_minor);
        break;
      case TarEntry::Type::kFifo:
        archive_entry_set_filetype(en, AE_IFIFO);
        break;
    }
    check(archive_write_header(a, en), a, "write header");
    if (e.type == TarEntry::Type::kFile && !e.data.empty()) {
      archive_write_data(a, e.data.data(), e.data.size());
    }
    archive_entry_free(en);
  }
  check(archive_write_close(a), a, "close");
  archive_write_free(a);
  return out;
}

std::string compress(const std::string& data, Compression c) {
  if (c == Compression::kNone) return data;
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_raw(a);
  if (c == Compression::kGzip) archive_write_add_filter_gzip(a);
  if (c == Compression::kZstd) archive_write_add_filter_zstd(a);
  archive_write_set_bytes_in_last_block(a, 1);
  check(archive_write_open(a, &out, nullptr, append_cb, nullptr), a, "open raw writer");
  archive_entry* en = archive_entry_new();
  archive_entry_set_filetype(en, AE_IFREG);
  archive_entry_set_pathname(en, "data");
  check(archive_write_header(a, en), a, "raw header");
  size_t off = 0;
  while (off < data.size()) {
    la_ssize_t n = archive_write_data(a, data.data() + off, std::min<size_t>(data.size() - off, 1 << 20));
    if (n <= 0) throw std::runtime_error("raw write failed");
    off += static_cast<size_t>(n);
  }
  archive_entry_free(en);
  check(archive_write_close(a), a, "close raw");
  archive_write_free(a);
  return out;
}

std::string raw_header(const std::string& name, char type, uint64_t size, const std::string& link, mode_t mode) {
  std::string h(512, '\0');
  std::memcpy(&h[0], name.data(), std::min<size_t>(name.size(), 100));
  std::memcpy(&h[100], octal(mode, 8).data(), 7);
  std::memcpy(&h[108], octal(0, 8).data(), 7);
  std::memcpy(&h[116], octal(0, 8).data(), 7);
  if (size < (1ull << 33)) {
    std::memcpy(&h[124], octal(size, 12).data(), 11);
  } else {  // GNU base-256 size
    h[124] = static_cast<char>(0x80);
    for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<char>((size >> (8 * i)) & 0xff);
  }
  std::memcpy(&h[136], octal(1000, 12).data(), 11);
  h[156] = type;
  std::memcpy(&h[157], link.data(), std::min<size_t>(link.size(), 100));
  std::memcpy(&h[257], "ustar", 6);
  std::memcpy(&h[263], "00", 2);
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char ch : h) sum += ch;
  std::string cs = octal(sum, 7);
  std::memcpy(&h[148], cs.data(), 6);
  h[154] = '\0';
  h[155] = ' ';
  return h;
}

std::string raw_entry(const std::string& name, char type, const std::string& data, const std::string& link) {
  std::string s = raw_header(name, type, data.size(), link);
  s += data;
  s.append((512 - data.size() % 512) % 512, '\0');
  return s;
}

std::string raw_pax(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string body;
  for (const auto& [k, v] : records) {
    std::string rest = " " + k + "=" + v + "\n";
    size_t len = rest.size() + 1;
    while (std::to_string(len).size() + rest.size() != len) ++len;
    body += std::to_string(len) + rest;
  }
  return raw_entry("PaxHeader", 'x', body);
}

std::string raw_end() { return std::string(1024, '\0'); }

WrittenImage write_oci_layout(const std::string& dir, const ImageSpec& spec, const std::string& tag) {
  fs::create_directories(dir + "/blobs/sha256");
  write_file(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  WrittenImage w;
  json layers = json::array();
  json diff_ids = json::array();
  const char* mt = spec.compression == Compression::kGzip   ? "application/vnd.oci.image.layer.v1.tar+gzip"
                   : spec.compression == Compression::kZstd ? "application/vnd.oci.image.layer.v1.tar+zstd"
                                                            : "application/vnd.oci.image.layer.v1.tar";
  for (const auto& tar : spec.layers) {
    std::string blob = compress(tar, spec.compression);
    put_blob(dir, blob);
    layers.push_back({{"mediaType", mt}, {"digest", digest_of(blob)}, {"size", blob.size()}});
    diff_ids.push_back(spec.wrong_diff_id ? digest_of(tar + "x") : digest_of(tar));
    w.layer_digests.push_back(digest_of(blob));
  }
  json cfg = {{"architecture", spec.architecture},
              {"os", "linux"},
              {"config",
               {{"Entrypoint", spec.entrypoint},
                {"Cmd", spec.cmd},
                {"Env", spec.env},
                {"WorkingDir", spec.working_dir},
                {"User", spec.user},
                {"ExposedPorts", {{"9000/tcp", json::object()}}}}},
              {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  std::string cfg_s = cfg.dump();
  put_blob(dir, cfg_s);
  w.config_digest = digest_of(cfg_s);
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"config",
                    {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                     {"digest", w.config_digest},
                     {"size", cfg_s.size()}}},
                   {"layers", layers}};
  std::string man_s = manifest.dump();
  put_blob(dir, man_s);
  w.manifest_digest = digest_of(man_s);
  json index = {{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                {"manifests",
                 {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"digest", w.manifest_digest},
                   {"size", man_s.size()},
                   {"annotations", {{"org.opencontainers.image.ref.name", tag}}}}}}};
  write_file(dir + "/index.json", index.dump());
  return w;
}

void write_docker_archive(const std::string& path, const ImageSpec& spec, const std::string& repo_tag) {
  std::vector<TarEntry> entries;
  json diff_ids = json::array();
  json layer_names = json::array();
  for (const auto& tar : spec.layers) {
    std::string hex = sha256_of(tar).hex;
    entries.push_back(dir(hex));
    entries.push_back(file(hex + "/layer.tar", tar));
    diff_ids.push_back(digest_of(tar));
    layer_names.push_back(hex + "/layer.tar");
  }
  json cfg = {{"architecture", spec.architecture},
              {"os", "linux"},
              {"config", {{"Entrypoint", spec.entrypoint}, {"Cmd", spec.cmd}, {"Env", spec.env},
                          {"WorkingDir", spec.working_dir}, {"User", spec.user}}},
              {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  std::string cfg_s = cfg.dump();
  std::string cfg_name = sha256_of(cfg_s).hex + ".json";
  entries.push_back(file(cfg_name, cfg_s));
  json manifest = json::array({{{"Config", cfg_name}, {"RepoTags", {repo_tag}}, {"Layers", layer_names}}});
  entries.push_back(file("manifest.json", manifest.dump()));
  write_file(path, make_tar(entries));
}

void tar_directory(const std::string& root, const std::string& path) {
  std::vector<TarEntry> entries;
  std::vector<fs::path> paths;
  for (const auto& de : fs::recursive_directory_iterator(root)) paths.push_back(de.path());
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    std::string rel = fs::relative(p, root).string();
    if (fs::is_symlink(p)) entries.push_back(symlink(rel, fs::read_symlink(p).string()));
    else if (fs::is_directory(p)) entries.push_back(dir(rel));
    else entries.push_back(file(rel, read_file(p.string())));
  }
  write_file(path, make_tar(entries));
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/kiln-rootfs-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string read_file(const std::string& path) {
  auto text = io::read_file(path, std::size_t{1} << 32);  // test images and blobs: no real cap
  return text.ok() ? std::move(*text) : std::string();
}

void write_file(const std::string& path, const std::string& data) {
  const std::string parent = fs::path(path).parent_path().string();
  if (auto st = parent.empty() ? ok_status() : io::make_dirs(parent, 0755); !st.ok()) {
    throw std::runtime_error(st.error().message);
  }
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) throw std::runtime_error("create " + path);
  if (auto st = io::write_all(fd.get(), data, path); !st.ok()) throw std::runtime_error(st.error().message);
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

int run(const std::vector<std::string>& argv, std::string* out, bool merge_stderr) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  if (merge_stderr) posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  else posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  std::string prog = argv[0];
  int rc = ::posix_spawnp(&pid, prog.c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return -1;
  }
  std::string o;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) o.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (out) *out = o;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string debugfs_cat(const std::string& image, const std::string& path) {
  std::string out;
  run({"/usr/sbin/debugfs", "-R", "cat " + path, image}, &out, /*merge_stderr=*/false);
  return out;
}

std::string debugfs_stat(const std::string& image, const std::string& path) {
  std::string out;
  run({"/usr/sbin/debugfs", "-R", "stat " + path, image}, &out);
  return out;
}

}  // namespace kiln::rootfs::testing
