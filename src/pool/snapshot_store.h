// SnapshotStore: kilnd's warm-start snapshots on disk, one directory per key under
// <state-dir>/snapshots: <key>/state (kiln-vmm's state file) and <key>/mem (its memory file).
// The key is a SHA-256 over everything that shapes the snapshotted VM: the image (rootfs by
// manifest digest), the launch spec minus per-instance fields, memory and vCPUs, kernel,
// initramfs (kiln-init) and kiln-vmm binaries (identity: path, size, mtime, inode) and the
// VMM's snapshot format version. A snapshot is written under a temporary name and renamed into
// place; one that fails to load is set aside (<key>.bad) and counted, and the caller cold-boots.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "src/pool/vm_backend.h"

namespace kiln::kilnd::pool {

// Inputs outside the instance spec that shape a snapshot.
struct SnapshotInputs {
  std::string kernel_path;
  std::string initrd_path;
  std::string vmm_path;
  std::string boot_args;
  std::uint32_t guest_cid = 3;
};

struct SnapshotPaths {
  std::string dir;
  std::string state;  // PUT /snapshot/create snapshot_path
  std::string mem;  // mem_file_path
};

// A lazy root disk's prefetch list, kept with its snapshot (SNAPSHOT/prefetch: the chunk numbers
// the snapshotted instance read, in first-read order, one per line).
Status write_prefetch_list(const SnapshotPaths& snapshot, const std::vector<std::uint32_t>& chunks);
// The list; empty when the snapshot has none. Errors: unreadable, over 16 MiB, or a line that is
// not a chunk number ("prefetch line N: ...").
Result<std::vector<std::uint32_t>> read_prefetch_list(const SnapshotPaths& snapshot);

class SnapshotStore {
 public:
  // `dir` is created if missing; temporary directories a crashed kilnd left are removed.
  static Result<SnapshotStore> open(std::string dir);

  // Everything a snapshot of `spec` depends on, hashed (64 hex characters).
  static Result<std::string> key_for(const InstanceSpec& spec, const SnapshotInputs& inputs);

  // A complete snapshot for `key`, if one exists.
  std::optional<SnapshotPaths> find(const std::string& key) const;

  // Reserves the right to create `key` (false: it exists or another instance is making it) and
  // returns a fresh temporary directory to write into.
  Result<std::optional<SnapshotPaths>> begin(const std::string& key);
  // Renames the temporary snapshot into place (atomically) or, on failure, removes it.
  Status commit(const std::string& key, const SnapshotPaths& tmp);
  void abandon(const std::string& key, const SnapshotPaths& tmp);

  // A snapshot that did not load: moved aside to <key>.bad (replacing an older one), so the
  // next instance cold-boots and may take a fresh snapshot.
  void set_aside(const std::string& key);

  void count_restore() { ++stats_.restores; }
  const SnapshotStats& stats() const { return stats_; }
  const std::string& dir() const { return dir_; }

 private:
  explicit SnapshotStore(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  std::set<std::string> in_progress_;
  std::uint64_t next_tmp_ = 1;
  SnapshotStats stats_;
};

}  // namespace kiln::kilnd::pool
