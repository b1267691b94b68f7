// LazyImages: a map of served images under one mutex; each image's prefetch runs on its own
// thread, ended (stop flag, join) when the image stops or the object goes.
#include "src/lazy/lazy_images.h"

#include "common/io.h"
#include "rootfs-builder/chunks/chunk_index.h"

namespace kiln::kilnd::lazy {

namespace chunks = rootfs::chunks;

Result<std::unique_ptr<LazyImages>> LazyImages::open(const std::string& dir, uint64_t cache_bytes) {
  KILN_TRY(io::make_dirs(dir + "/sockets", 0700));
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<chunks::ChunkCache> cache,
                        chunks::ChunkCache::open(dir + "/chunks", cache_bytes));
  return std::unique_ptr<LazyImages>(new LazyImages(dir, std::shared_ptr<chunks::ChunkCache>(std::move(cache))));
}

LazyImages::~LazyImages() {
  std::lock_guard lock(mu_);
  for (auto& [digest, image] : images_) end_prefetch(image);
}

void LazyImages::end_prefetch(Image& image) {
  *image.stop = true;
  if (image.prefetcher.joinable()) image.prefetcher.join();
  *image.stop = false;
}

std::string LazyImages::socket_path(const std::string& index_digest) const {
  // sha256:<64 hex> -> the first 16 hex digits (a socket path must stay short).
  const std::string hex = index_digest.substr(index_digest.find(':') + 1);
  return dir_ + "/sockets/" + hex.substr(0, 16) + ".sock";
}

Result<std::string> LazyImages::serve(const std::string& index_digest, std::string_view index_bytes,
                                      std::shared_ptr<chunks::ChunkSource> source,
                                      LazyDisk::ErrorListener on_error) {
  std::lock_guard lock(mu_);
  if (auto it = images_.find(index_digest); it != images_.end()) return it->second.server->socket_path();
  const std::string actual = chunks::index_digest(index_bytes).str();
  if (actual != index_digest) {
    return make_error("chunk index " + actual + " is not the pinned " + index_digest);
  }
  KILN_ASSIGN_OR_RETURN(chunks::ChunkIndex index, chunks::parse(index_bytes));
  auto disk = std::make_shared<LazyDisk>(std::move(index), cache_, std::move(source));
  disk->set_error_listener(std::move(on_error));
  NbdServerOptions options;
  options.socket_mode = 0666;  // the directory is kilnd's alone; jails see only their own image's
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<NbdServer> server, NbdServer::start(socket_path(index_digest), disk, options));
  Image& image = images_[index_digest];
  image.disk = std::move(disk);
  image.server = std::move(server);
  return image.server->socket_path();
}

void LazyImages::stop(const std::string& index_digest) {
  std::lock_guard lock(mu_);
  auto it = images_.find(index_digest);
  if (it == images_.end()) return;
  end_prefetch(it->second);
  images_.erase(it);  // the server's destructor ends its sessions
}

void LazyImages::pin(const std::string& instance, const std::string& index_digest) {
  std::lock_guard lock(mu_);
  auto it = images_.find(index_digest);
  if (it == images_.end()) return;
  auto pinned = pins_.find(instance);
  if (pinned != pins_.end() && pinned->second == index_digest) return;
  if (pinned != pins_.end()) cache_->unpin(instance);  // it moved to another image
  pins_[instance] = index_digest;
  cache_->pin(instance, it->second.disk->digests());
}

void LazyImages::unpin(const std::string& instance) {
  std::lock_guard lock(mu_);
  if (pins_.erase(instance) != 0) cache_->unpin(instance);
}

std::vector<uint32_t> LazyImages::read_order(const std::string& index_digest) const {
  std::lock_guard lock(mu_);
  auto it = images_.find(index_digest);
  return it == images_.end() ? std::vector<uint32_t>{} : it->second.disk->read_order();
}

bool LazyImages::prefetch(const std::string& index_digest, std::vector<uint32_t> list) {
  std::lock_guard lock(mu_);
  auto it = images_.find(index_digest);
  if (it == images_.end()) return false;
  Image& image = it->second;
  if (*image.prefetching) return false;
  if (image.prefetcher.joinable()) image.prefetcher.join();  // finished
  *image.prefetching = true;
  image.prefetcher =
      std::thread([this, disk = image.disk, busy = image.prefetching, stop = image.stop, list = std::move(list)] {
        if (!disk->prefetch(list, *stop).ok()) ++prefetch_errors_;
        *busy = false;
      });
  return true;
}

void LazyImages::wait_prefetch(const std::string& index_digest) {
  std::thread t;
  {
    std::lock_guard lock(mu_);
    auto it = images_.find(index_digest);
    if (it == images_.end()) return;
    t = std::move(it->second.prefetcher);
  }
  if (t.joinable()) t.join();
}

namespace {

LazyImageStats stats_of(const std::string& digest, const LazyDisk& disk, const NbdServer& server) {
  LazyImageStats s;
  s.index_digest = digest;
  s.image_size = disk.size();
  for (const chunks::ChunkEntry& e : disk.index().entries) s.stored_chunks += e.zero() ? 0 : 1;
  s.disk = disk.stats();
  s.nbd_connections = server.connections();
  return s;
}

}  // namespace

std::vector<LazyImageStats> LazyImages::image_stats() const {
  std::lock_guard lock(mu_);
  std::vector<LazyImageStats> out;
  for (const auto& [digest, image] : images_) out.push_back(stats_of(digest, *image.disk, *image.server));
  return out;
}

std::optional<LazyImageStats> LazyImages::image_stats(const std::string& index_digest) const {
  std::lock_guard lock(mu_);
  auto it = images_.find(index_digest);
  if (it == images_.end()) return std::nullopt;
  return stats_of(index_digest, *it->second.disk, *it->second.server);
}

LazyCacheStats LazyImages::cache_stats() const { return {cache_->stats(), cache_->max_bytes()}; }

}  // namespace kiln::kilnd::lazy
