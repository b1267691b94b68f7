// Snapshot directories by key: lookup, create-then-rename, set aside.
#include "src/pool/snapshot_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>

#include "common/io.h"
#include "common/protocol/launch_spec.h"
#include "rootfs-builder/digest/digest.h"

namespace kiln::kilnd::pool {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTmpMarker = ".tmp-";
constexpr const char* kBadSuffix = ".bad";

// A file's identity for the key: a rebuilt binary or kernel changes size, mtime or inode.
Result<std::string> file_identity(const std::string& path) {
  if (path.empty()) return std::string("-");
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return errno_error("stat " + path);
  return path + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ino);
}

bool complete(const SnapshotPaths& p) {
  std::error_code ec;
  return fs::is_regular_file(p.state, ec) && fs::is_regular_file(p.mem, ec);
}

SnapshotPaths paths_in(const std::string& dir) { return {dir, dir + "/state", dir + "/mem"}; }

}  // namespace

Result<SnapshotStore> SnapshotStore::open(std::string dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("creating " + dir + ": " + ec.message());
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().find(kTmpMarker) != std::string::npos) fs::remove_all(e.path(), ec);
  }
  return SnapshotStore(std::move(dir));
}

Status write_prefetch_list(const SnapshotPaths& snapshot, const std::vector<std::uint32_t>& chunks) {
  std::string text;
  for (std::uint32_t c : chunks) text.append(std::to_string(c)).push_back('\n');
  return io::write_file_atomic(snapshot.dir + "/prefetch", text);
}

Result<std::vector<std::uint32_t>> read_prefetch_list(const SnapshotPaths& snapshot) {
  const std::string path = snapshot.dir + "/prefetch";
  std::vector<std::uint32_t> out;
  if (::access(path.c_str(), F_OK) != 0) return out;
  KILN_ASSIGN_OR_RETURN(std::string text, io::read_file(path, 16u << 20));
  std::size_t line = 0;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = text.find('\n', at);
    const std::string_view l(text.data() + at, (end == std::string::npos ? text.size() : end) - at);
    ++line;
    std::uint32_t v = 0;
    auto [p, ec] = std::from_chars(l.data(), l.data() + l.size(), v);
    if (ec != std::errc() || p != l.data() + l.size() || l.empty()) {
      return make_error("prefetch line " + std::to_string(line) + ": not a chunk number");
    }
    out.push_back(v);
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return out;
}

Result<std::string> SnapshotStore::key_for(const InstanceSpec& spec, const SnapshotInputs& inputs) {
  protocol::LaunchSpec launch = spec.launch;
  launch.instance_id.clear();  // per instance: set after restore through the identity frame
  launch.wall_clock_ns = 0;
  KILN_ASSIGN_OR_RETURN(std::string launch_record, protocol::encode_launch_spec(launch));
  std::string text = "kiln-snapshot-key 1\n";
  auto field = [&text](std::string_view name, std::string_view value) {
    text.append(name).append(" ").append(std::to_string(value.size())).append(" ").append(value).append("\n");
  };
  field("launch", launch_record);
  if (spec.rootfs_index_digest.empty()) {
    KILN_ASSIGN_OR_RETURN(std::string rootfs, file_identity(spec.rootfs_path));
    field("rootfs", rootfs);
  } else {
    field("rootfs", "lazy " + spec.rootfs_index_digest);  // the pinned index names every byte
  }
  field("memory_mib", std::to_string(spec.memory_mib));
  field("vcpus", std::to_string(spec.vcpus));
  field("boot_args", inputs.boot_args);
  field("guest_cid", std::to_string(inputs.guest_cid));
  // The interface's rate limiters are in the VMM's state, so they are part of the snapshot.
  if (spec.network && (spec.network->bandwidth.rx || spec.network->bandwidth.tx)) {
    const net::Bandwidth& b = spec.network->bandwidth;
    field("bandwidth", std::to_string(b.rx.value_or(0)) + " " + std::to_string(b.tx.value_or(0)));
  }
  for (const std::string* p : {&inputs.kernel_path, &inputs.initrd_path, &inputs.vmm_path}) {
    KILN_ASSIGN_OR_RETURN(std::string id, file_identity(*p));
    field("file", id);
  }
  rootfs::Sha256 h;
  h.update(text.data(), text.size());
  return h.finish().hex;
}

std::optional<SnapshotPaths> SnapshotStore::find(const std::string& key) const {
  SnapshotPaths p = paths_in(dir_ + "/" + key);
  if (!complete(p)) return std::nullopt;
  return p;
}

Result<std::optional<SnapshotPaths>> SnapshotStore::begin(const std::string& key) {
  if (find(key) || in_progress_.count(key)) return std::optional<SnapshotPaths>();
  SnapshotPaths tmp = paths_in(dir_ + "/" + key + kTmpMarker + std::to_string(::getpid()) + "-" + std::to_string(next_tmp_++));
  std::error_code ec;
  fs::remove_all(tmp.dir, ec);
  fs::create_directories(tmp.dir, ec);
  if (ec) return make_error("creating " + tmp.dir + ": " + ec.message());
  in_progress_.insert(key);
  return std::optional<SnapshotPaths>(tmp);
}

Status SnapshotStore::commit(const std::string& key, const SnapshotPaths& tmp) {
  in_progress_.erase(key);
  std::error_code ec;
  if (!complete(tmp)) {
    fs::remove_all(tmp.dir, ec);
    ++stats_.create_failures;
    return make_error("snapshot " + tmp.dir + " is incomplete");
  }
  const std::string final_dir = dir_ + "/" + key;
  fs::remove_all(final_dir, ec);  // only a partial leftover can be here (find() said none)
  fs::rename(tmp.dir, final_dir, ec);
  if (ec) {
    fs::remove_all(tmp.dir, ec);
    ++stats_.create_failures;
    return make_error("renaming snapshot into " + final_dir + ": " + ec.message());
  }
  ++stats_.created;
  return ok_status();
}

void SnapshotStore::abandon(const std::string& key, const SnapshotPaths& tmp) {
  in_progress_.erase(key);
  std::error_code ec;
  fs::remove_all(tmp.dir, ec);
  ++stats_.create_failures;
}

void SnapshotStore::set_aside(const std::string& key) {
  ++stats_.load_failures;
  std::error_code ec;
  const std::string from = dir_ + "/" + key, to = from + kBadSuffix;
  fs::remove_all(to, ec);
  fs::rename(from, to, ec);
  if (ec) fs::remove_all(from, ec);
}

}  // namespace kiln::kilnd::pool
