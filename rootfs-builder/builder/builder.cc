// build(): resolve -> (cache hit?) -> fetch config and layers -> apply layers -> mkfs -> publish.
// Nothing is published under images/ unless every step succeeded.
#include "rootfs-builder/builder/builder.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>
#include <optional>
#include <cstdlib>
#include <vector>
#include <nlohmann/json.hpp>

#include "common/io.h"
#include "common/unique_fd.h"
#include "rootfs-builder/digest/blob_store.h"
#include "rootfs-builder/image/ext4_image.h"
#include "rootfs-builder/reference/image_reference.h"
#include "rootfs-builder/source/image_source.h"
#include "rootfs-builder/unpack/dir_list.h"

namespace kiln::rootfs {

namespace {

// Removes scratch entries ("build-PID-N", "PID-N.partial") left by builders that died.
void reap_stale(const std::string& dir, const std::string& prefix) {
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d) return;
  auto names = list_dir(d.get());
  if (!names.ok()) return;
  std::vector<std::string> stale;
  for (const auto& n : *names) {
    if (n.rfind(prefix, 0) != 0) continue;
    long pid = std::strtol(n.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && pid != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      stale.push_back(n);
    }
  }
  for (const auto& n : stale) (void)remove_tree_at(d.get(), n);
}

// The cache-wide lock: shared while building, exclusive for housekeeping.
Result<UniqueFd> lock_cache(const std::string& cache_dir, int how) {
  KILN_TRY(io::make_dirs(cache_dir, 0755));
  std::string path = cache_dir + "/.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return errno_error("open " + path);
  while (::flock(fd.get(), how) != 0) {
    if (errno != EINTR) return errno_error("flock " + path);
  }
  return fd;
}

// Cache files are world-readable, like the images beside them (kilnd may run as another user).
constexpr io::AtomicWriteOptions kCacheFile{.mode = 0644};

struct Resolved {
  std::unique_ptr<ImageSource> source;
  Manifest manifest;
  Digest manifest_digest;
  std::optional<Digest> index_digest;  // when the reference named an index
};

// images/<index hex>.<os>-<arch>.index holds the manifest digest an index resolved to, so a
// by-digest reference to an index is a cache hit without asking the registry again.
std::string alias_path(const std::string& cache_dir, const Digest& index, const BuildRequest& req) {
  return cache_dir + "/images/" + index.hex + "." + req.os + "-" + req.architecture + ".index";
}

// The cache entry for a by-digest registry reference, found without any network access.
std::optional<BuiltImage> cached_by_reference_digest(const BuildRequest& req) {
  auto ref = parse_reference(req.reference);
  if (!ref.ok() || ref->transport != Transport::kDocker || ref->digest.empty()) return std::nullopt;
  auto d = Digest::parse(ref->digest);
  if (!d.ok()) return std::nullopt;
  if (auto hit = find_cached(req.cache_dir, *d); hit.ok()) return std::move(hit).value();
  auto alias = io::read_file(alias_path(req.cache_dir, *d, req), 256);
  if (!alias.ok()) return std::nullopt;
  auto m = Digest::parse(*alias);
  if (!m.ok()) return std::nullopt;
  if (auto hit = find_cached(req.cache_dir, *m); hit.ok()) return std::move(hit).value();
  return std::nullopt;
}

Result<Resolved> resolve(const BuildRequest& req, const std::string& work_dir) {
  KILN_ASSIGN_OR_RETURN(ImageReference ref, parse_reference(req.reference));
  SourceOptions so = source_options(req);
  so.work_dir = work_dir;
  Resolved r;
  KILN_ASSIGN_OR_RETURN(r.source, open_source(ref, so));
  KILN_ASSIGN_OR_RETURN(ManifestDoc doc, r.source->root_manifest());
  std::string mt;
  KILN_ASSIGN_OR_RETURN(DocumentKind kind, classify_document(doc.body, doc.media_type, &mt));
  if (kind == DocumentKind::kIndex) {
    r.index_digest = doc.digest;
    KILN_ASSIGN_OR_RETURN(Index idx, parse_index(doc.body, mt));
    KILN_ASSIGN_OR_RETURN(Descriptor d, select_platform(idx, req.os, req.architecture));
    KILN_ASSIGN_OR_RETURN(doc, r.source->manifest(d));
    KILN_ASSIGN_OR_RETURN(kind, classify_document(doc.body, d.media_type, &mt));
    if (kind != DocumentKind::kManifest) return make_error("index entry is not an image manifest");
  }
  KILN_ASSIGN_OR_RETURN(r.manifest, parse_manifest(doc.body, mt));
  r.manifest_digest = doc.digest;
  return r;
}

Result<ImageConfig> fetch_config(ImageSource& src, const Manifest& m, BlobStore& store,
                                 const BuildRequest& req) {
  KILN_TRY(src.fetch_blob(m.config, store, {}));
  KILN_ASSIGN_OR_RETURN(std::string body, store.read(m.config.digest, kMaxDocumentSize));
  // The store only admits verified blobs, but the config is small: check it again on use.
  KILN_TRY(verify_document(body, m.config));
  KILN_ASSIGN_OR_RETURN(ImageConfig c, parse_config(body));
  if (c.os != req.os || c.architecture != req.architecture) {
    return make_error("image is for " + c.os + "/" + c.architecture + ", not " + req.os + "/" +
                      req.architecture);
  }
  if (c.diff_ids.size() != m.layers.size()) {
    return make_error("image config lists " + std::to_string(c.diff_ids.size()) +
                      " diff_ids but the manifest has " + std::to_string(m.layers.size()) + " layers");
  }
  return c;
}

// Downloads blobs into the store, up to kParallelDownloads at a time when the source can. The
// workers only count bytes; progress is reported from this (the caller's) thread.
template <typename Report>
Status download_layers(ImageSource& source, const std::vector<const Descriptor*>& layers, BlobStore& store,
                       Report& report) {
  constexpr size_t kParallelDownloads = 3;
  uint64_t total = 0;
  for (const Descriptor* l : layers) total += l->size;
  std::vector<std::unique_ptr<ImageSource>> clones;
  for (size_t i = 1; i < std::min(kParallelDownloads, layers.size()); ++i) {
    auto c = source.clone_for_download();
    if (!c) break;
    clones.push_back(std::move(c));
  }
  if (clones.empty()) {  // sequential
    uint64_t done = 0;
    for (const Descriptor* l : layers) {
      report("fetch", l->digest.str(), done, total);
      KILN_TRY(source.fetch_blob(*l, store, [&](uint64_t n) { report("fetch", l->digest.str(), done + n, total); }));
      done += l->size;
    }
    return ok_status();
  }
  std::mutex mu;
  std::condition_variable cv;
  size_t next = 0, finished = 0;
  std::optional<Error> first_error;
  std::vector<std::atomic<uint64_t>> got(layers.size());
  auto work = [&](ImageSource& src) {
    for (;;) {
      size_t k;
      {
        std::lock_guard<std::mutex> l(mu);
        if (first_error || next >= layers.size()) break;
        k = next++;
      }
      Status s = src.fetch_blob(*layers[k], store, [&got, k](uint64_t n) { got[k].store(n); });
      std::lock_guard<std::mutex> l(mu);
      if (!s.ok() && !first_error) first_error = s.error();
      if (s.ok()) got[k].store(layers[k]->size);
    }
    std::lock_guard<std::mutex> l(mu);
    ++finished;
    cv.notify_all();
  };
  std::vector<std::thread> threads;
  try {
    threads.emplace_back(work, std::ref(source));
    for (auto& c : clones) threads.emplace_back(work, std::ref(*c));
  } catch (const std::system_error&) {
    // Out of threads: the ones that started drain the queue; with none, work here.
    if (threads.empty()) work(source);
  }
  {
    std::unique_lock<std::mutex> l(mu);
    while (finished < threads.size()) {
      cv.wait_for(l, std::chrono::milliseconds(200));
      uint64_t sum = 0;
      for (const auto& g : got) sum += g.load();
      l.unlock();
      report("fetch", std::to_string(layers.size()) + " layers", sum, total);
      l.lock();
    }
  }
  for (auto& t : threads) t.join();
  if (first_error) return *first_error;
  return ok_status();
}

}  // namespace

Result<BuiltImage> build(const BuildRequest& req, const ProgressCallback& progress) {
  // Throttled: a new stage or item, every MiB, and the end of an item get through.
  Progress last;
  bool any = false;
  auto report = [&](std::string stage, std::string detail, uint64_t done, uint64_t total) {
    if (!progress) return;
    bool same_item = any && stage == last.stage && detail == last.detail;
    if (same_item && done < last.done + (1 << 20) && done != total) return;
    last = Progress{std::move(stage), std::move(detail), done, total};
    any = true;
    progress(last);
  };
  if (req.cache_dir.empty()) return make_error("no cache directory given");
  KILN_ASSIGN_OR_RETURN(UniqueFd cache_lock, lock_cache(req.cache_dir, LOCK_SH));
  std::string images = req.cache_dir + "/images";
  std::string tmp = req.cache_dir + "/tmp";
  KILN_TRY(io::make_dirs(images, 0755));
  KILN_TRY(io::make_dirs(tmp, 0755));
  KILN_ASSIGN_OR_RETURN(BlobStore store, BlobStore::open(req.cache_dir + "/blobs"));
  reap_stale(tmp, "build-");
  reap_stale(store.dir() + "/tmp", "");
  KILN_ASSIGN_OR_RETURN(ScratchDir scratch, ScratchDir::create(tmp));

  auto deliver = [&](const BuiltImage& img) -> Status {
    if (!req.output_path.empty()) {
      report("copy", req.output_path, 0, 0);
      KILN_TRY(copy_file_sparse(img.image_path, req.output_path));
    }
    report("done", img.image_path, 1, 1);
    return ok_status();
  };
  if (auto hit = cached_by_reference_digest(req)) {
    KILN_TRY(deliver(*hit));
    return std::move(*hit);
  }

  report("resolve", req.reference, 0, 0);
  KILN_ASSIGN_OR_RETURN(Resolved res, resolve(req, scratch.path()));
  if (res.index_digest) {
    KILN_TRY(io::write_file_atomic(alias_path(req.cache_dir, *res.index_digest, req), res.manifest_digest.str(), kCacheFile));
  }
  const std::string hex = res.manifest_digest.hex;
  BuiltImage out;
  out.manifest_digest = res.manifest_digest;
  out.image_path = images + "/" + hex + ".ext4";
  out.config_path = images + "/" + hex + ".json";

  // One builder per digest at a time; a second one waits and then finds the cache entry.
  std::string lock_path = images + "/" + hex + ".lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock) return errno_error("open " + lock_path);
  if (::flock(lock.get(), LOCK_EX) != 0) return errno_error("flock " + lock_path);

  if (auto hit = find_cached(req.cache_dir, res.manifest_digest); hit.ok()) {
    out = std::move(hit).value();
    KILN_TRY(deliver(out));
    return out;
  }

  KILN_ASSIGN_OR_RETURN(out.config, fetch_config(*res.source, res.manifest, store, req));
  uint64_t total = 0;
  for (const auto& l : res.manifest.layers) total += l.size;
  uint64_t done = 0;
  // Remote layers are downloaded (verified) into the store first; local ones are read in
  // place and verified while they are unpacked.
  std::vector<std::optional<Result<UniqueFd>>> local(res.manifest.layers.size());
  std::vector<const Descriptor*> remote;
  for (size_t i = 0; i < res.manifest.layers.size(); ++i) {
    const Descriptor& l = res.manifest.layers[i];
    if (store.has(l.digest)) continue;
    local[i] = res.source->open_local_blob(l);
    bool listed = std::any_of(remote.begin(), remote.end(), [&](const Descriptor* d) { return d->digest == l.digest; });
    if (!local[i] && !listed) remote.push_back(&l);
  }
  KILN_TRY(download_layers(*res.source, remote, store, report));

  std::string root = scratch.path() + "/rootfs";
  if (::mkdir(root.c_str(), 0755) != 0) return errno_error("mkdir " + root);
  KILN_ASSIGN_OR_RETURN(TreeBuilder tree, TreeBuilder::create(root, req.limits));
  done = 0;
  for (size_t i = 0; i < res.manifest.layers.size(); ++i) {
    const Descriptor& l = res.manifest.layers[i];
    UniqueFd fd;
    TreeBuilder::BlobCheck check{l.digest, l.size};
    const TreeBuilder::BlobCheck* verify = nullptr;
    if (local[i]) {
      if (!local[i]->ok()) return local[i]->error().wrap("layer " + std::to_string(i + 1));
      fd = std::move(**local[i]);
      verify = &check;
    } else {
      fd.reset(::open(store.path(l.digest).c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) return errno_error("open blob " + l.digest.str());
    }
    auto diff_id = tree.apply_layer(
        fd.get(), [&](uint64_t n) { report("unpack", l.digest.str(), done + n, total); }, verify);
    if (!diff_id.ok()) return diff_id.error().wrap("layer " + std::to_string(i + 1) + " (" + l.digest.str() + ")");
    if (*diff_id != out.config.diff_ids[i]) {
      return make_error("layer " + std::to_string(i + 1) + " diff_id mismatch: config says " +
                        out.config.diff_ids[i].str() + ", content is " + diff_id->str());
    }
    done += l.size;
  }
  KILN_TRY(tree.finish());

  report("mkfs", out.image_path, 0, 0);
  std::string partial = scratch.path() + "/image.ext4";
  KILN_TRY(make_ext4(root, partial, Ext4Options{res.manifest_digest.str(), 1}));
  KILN_TRY(io::write_file_atomic(out.config_path,
                                 image_config_json(out.config, res.manifest_digest, res.manifest.config.digest),
                                 kCacheFile));
  if (::rename(partial.c_str(), out.image_path.c_str()) != 0) {
    Error e = errno_error("publish " + out.image_path);
    ::unlink(out.config_path.c_str());
    return e;
  }
  KILN_TRY(deliver(out));
  return out;
}

SourceOptions source_options(const BuildRequest& req) {
  SourceOptions so;
  so.tls_verify = req.tls_verify;
  so.credentials = req.credentials;
  so.auth_file = req.auth_file;
  so.ca_file = req.ca_file;
  return so;
}

Result<ScratchDir> ScratchDir::create(const std::string& parent) {
  static std::atomic<uint64_t> n{0};
  std::string name = "build-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  std::string path = parent + "/" + name;
  if (::mkdir(path.c_str(), 0700) != 0) return errno_error("mkdir " + path);
  ScratchDir s;
  s.parent_ = parent;
  s.name_ = name;
  return s;
}

ScratchDir::~ScratchDir() {
  if (name_.empty()) return;
  UniqueFd p(::open(parent_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (p) (void)remove_tree_at(p.get(), name_);
}

Result<BuiltImage> find_cached(const std::string& cache_dir, const Digest& manifest_digest) {
  BuiltImage out;
  out.manifest_digest = manifest_digest;
  out.image_path = cache_dir + "/images/" + manifest_digest.hex + ".ext4";
  out.config_path = cache_dir + "/images/" + manifest_digest.hex + ".json";
  struct stat st;
  if (::stat(out.image_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return make_error("no cached image for " + manifest_digest.str());
  }
  KILN_ASSIGN_OR_RETURN(std::string saved, io::read_file(out.config_path, kMaxDocumentSize));
  KILN_ASSIGN_OR_RETURN(out.config, parse_saved_config(saved));
  out.cache_hit = true;
  return out;
}

Status remove_image(const std::string& cache_dir, const Digest& manifest_digest) {
  KILN_ASSIGN_OR_RETURN(UniqueFd lock, lock_cache(cache_dir, LOCK_EX));
  for (const char* ext : {".ext4", ".json", ".lock"}) {
    std::string p = cache_dir + "/images/" + manifest_digest.hex + ext;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return errno_error("unlink " + p);
  }
  return ok_status();
}

Result<uint64_t> prune_blobs(const std::string& cache_dir) {
  KILN_ASSIGN_OR_RETURN(UniqueFd lock, lock_cache(cache_dir, LOCK_EX));
  std::string dir = cache_dir + "/blobs/sha256";
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d) {
    if (errno == ENOENT) return uint64_t{0};
    return errno_error("open " + dir);
  }
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> names, list_dir(d.get()));
  uint64_t freed = 0;
  for (const auto& n : names) {
    struct stat st;
    if (::fstatat(d.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
      freed += static_cast<uint64_t>(st.st_size);
    }
    KILN_TRY(remove_tree_at(d.get(), n));
  }
  return freed;
}

Result<InspectResult> inspect(const BuildRequest& req) {
  std::string cache = req.cache_dir;
  if (cache.empty()) return make_error("no cache directory given");
  KILN_ASSIGN_OR_RETURN(UniqueFd cache_lock, lock_cache(cache, LOCK_SH));
  KILN_TRY(io::make_dirs(cache + "/tmp", 0755));
  KILN_ASSIGN_OR_RETURN(BlobStore store, BlobStore::open(cache + "/blobs"));
  KILN_ASSIGN_OR_RETURN(ScratchDir scratch, ScratchDir::create(cache + "/tmp"));
  KILN_ASSIGN_OR_RETURN(Resolved res, resolve(req, scratch.path()));
  InspectResult r;
  r.manifest_digest = res.manifest_digest;
  r.manifest_media_type = res.manifest.media_type;
  r.config_digest = res.manifest.config.digest;
  KILN_ASSIGN_OR_RETURN(r.config, fetch_config(*res.source, res.manifest, store, req));
  return r;
}

std::string inspect_json(const InspectResult& r) {
  nlohmann::json j = nlohmann::json::parse(image_config_json(r.config, r.manifest_digest, r.config_digest));
  j["MediaType"] = r.manifest_media_type;
  return j.dump(2) + "\n";
}

}  // namespace kiln::rootfs
