// OCI layout, oci-archive and docker-archive sources.
#include "rootfs-builder/source/layout_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits>

#include <nlohmann/json.hpp>

#include "common/json/field_reader.h"
#include "common/unique_fd.h"
#include "rootfs-builder/unpack/tree_builder.h"

namespace kiln::rootfs {

using nlohmann::json;

Status verify_document(std::string_view body, const Descriptor& d) {
  if (body.size() != d.size) {
    return make_error("size mismatch for " + d.digest.str() + ": descriptor says " +
                      std::to_string(d.size) + ", got " + std::to_string(body.size()));
  }
  Digest got = sha256_of(body);
  if (got != d.digest) {
    return make_error("digest mismatch: expected " + d.digest.str() + ", got " + got.str());
  }
  return ok_status();
}

Status unpack_archive_file(const std::string& archive_path, const std::string& dir) {
  UniqueFd fd(::open(archive_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open " + archive_path);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("mkdir " + dir);
  KILN_ASSIGN_OR_RETURN(TreeBuilder tb, TreeBuilder::create(dir, UnpackLimits{}));
  auto r = tb.apply_layer(fd.get());
  if (!r.ok()) return r.error().wrap("unpacking " + archive_path);
  return ok_status();
}

Result<std::unique_ptr<ImageSource>> LayoutSource::open(const std::string& dir, const std::string& tag) {
  KILN_ASSIGN_OR_RETURN(LocalDir ld, LocalDir::open(dir));
  auto layout = ld.read("oci-layout", 4096);
  if (!layout.ok()) return layout.error().wrap("not an OCI image layout");
  auto version = [&]() -> kiln::json::FieldResult<std::string> {
    KILN_ASSIGN_OR_RETURN(json j, kiln::json::parse(*layout));
    KILN_ASSIGN_OR_RETURN(auto r, kiln::json::ObjectReader::make(j, ""));
    return r.req_string("imageLayoutVersion");
  }();
  if (!version.ok()) return make_error(dir + "/oci-layout has no imageLayoutVersion");
  KILN_ASSIGN_OR_RETURN(std::string index_body, ld.read("index.json", kMaxDocumentSize));
  auto index = parse_index(index_body, media_type::kOciIndex);
  if (!index.ok()) return index.error().wrap(dir + "/index.json");
  const Descriptor* pick = nullptr;
  for (const auto& d : index->manifests) {
    if (tag.empty()) {
      if (pick != nullptr) {
        return make_error("OCI layout " + dir + " holds several images: name one with oci:DIR:TAG");
      }
      pick = &d;
    } else if (d.ref_name == tag) {
      pick = &d;
    }
  }
  if (pick == nullptr) {
    return make_error("no image " + (tag.empty() ? std::string() : "tagged '" + tag + "' ") +
                      "in OCI layout " + dir);
  }
  return std::unique_ptr<ImageSource>(new LayoutSource(std::move(ld), *pick));
}

Result<ManifestDoc> LayoutSource::root_manifest() { return manifest(root_); }

Result<ManifestDoc> LayoutSource::manifest(const Descriptor& d) {
  if (d.size > kMaxDocumentSize) return make_error("manifest " + d.digest.str() + " is too large");
  KILN_ASSIGN_OR_RETURN(std::string body, dir_.read(blob_path(d.digest), kMaxDocumentSize));
  KILN_TRY(verify_document(body, d));
  return ManifestDoc{std::move(body), d.media_type, d.digest};
}

Status LayoutSource::fetch_blob(const Descriptor& d, BlobStore& store, const ByteProgress& progress) {
  if (!store.has(d.digest)) {
    KILN_ASSIGN_OR_RETURN(UniqueFd fd, dir_.open_file(blob_path(d.digest)));
    auto r = store.import_fd(fd.get(), d.digest, d.size);
    if (!r.ok()) return r.error().wrap("blob " + d.digest.str());
  }
  if (progress) progress(d.size);
  return ok_status();
}

namespace {

// A member named inside a docker archive, as a path below the archive directory.
Result<std::string> archive_member(const std::string& name) {
  auto comps = clean_entry_path(name, 4096);
  if (!comps.ok()) return comps.error().wrap("docker-archive member '" + name + "'");
  if (comps->empty()) return make_error("docker-archive member is empty");
  std::string path;
  for (const auto& c : *comps) path += (path.empty() ? "" : "/") + c;
  return path;
}

Result<std::string> sniff_layer_type(int fd) {
  unsigned char m[4] = {};
  ssize_t n = ::pread(fd, m, sizeof m, 0);
  if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b) return std::string(media_type::kOciLayerGzip);
  if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) {
    return std::string(media_type::kOciLayerZstd);
  }
  return std::string(media_type::kOciLayerTar);
}

}  // namespace

Result<std::unique_ptr<ImageSource>> DockerArchiveSource::open(const std::string& dir,
                                                               const std::string& tag) {
  KILN_ASSIGN_OR_RETURN(LocalDir ld, LocalDir::open(dir));
  KILN_ASSIGN_OR_RETURN(std::string body, ld.read("manifest.json", kMaxDocumentSize));
  auto parsed = kiln::json::parse(body);
  const json j = parsed.ok() ? std::move(parsed).value() : json();
  if (!j.is_array() || j.empty()) return make_error("docker-archive manifest.json is not a non-empty array");
  const json* pick = nullptr;
  for (const auto& m : j) {
    if (!m.is_object()) return make_error("docker-archive manifest entry is not an object");
    if (tag.empty()) {
      if (pick != nullptr) return make_error("docker-archive holds several images: name one with :TAG");
      pick = &m;
      continue;
    }
    auto tags = m.find("RepoTags");
    if (tags != m.end() && tags->is_array()) {
      for (const auto& t : *tags) {
        if (t.is_string() && (t.get<std::string>() == tag)) pick = &m;
      }
    }
  }
  if (pick == nullptr) return make_error("no image tagged '" + tag + "' in docker-archive");
  KILN_ASSIGN_OR_RETURN(auto entry, kiln::json::ObjectReader::make(*pick, ""));
  auto config_name = entry.req_string("Config");
  auto layers = entry.opt_strings("Layers", std::numeric_limits<std::size_t>::max());
  if (!config_name.ok()) return config_name.error().wrap("docker-archive manifest.json");
  if (!layers.ok()) return layers.error().wrap("docker-archive manifest.json");
  if (!*layers) return make_error("docker-archive manifest.json: Layers: missing required field");
  std::unique_ptr<DockerArchiveSource> src(new DockerArchiveSource(std::move(ld)));
  // Layers may be symlinks to identical layers (docker save does that); they resolve inside.
  auto describe = [&](const std::string& name, bool is_config) -> Result<json> {
    KILN_ASSIGN_OR_RETURN(std::string path, archive_member(name));
    KILN_ASSIGN_OR_RETURN(UniqueFd fd, src->dir_.open_file(path));
    std::string mt(media_type::kOciConfig);
    if (!is_config) {
      KILN_ASSIGN_OR_RETURN(mt, sniff_layer_type(fd.get()));
    }
    uint64_t size = 0;
    KILN_ASSIGN_OR_RETURN(Digest d, sha256_of_file(fd.get(), &size));
    src->files_[d.hex] = path;
    return json{{"mediaType", mt}, {"digest", d.str()}, {"size", size}};
  };
  json manifest = json::object();
  manifest["schemaVersion"] = 2;
  manifest["mediaType"] = media_type::kOciManifest;
  KILN_ASSIGN_OR_RETURN(manifest["config"], describe(*config_name, true));
  manifest["layers"] = json::array();
  for (const auto& l : **layers) {
    KILN_ASSIGN_OR_RETURN(json desc, describe(l, false));
    manifest["layers"].push_back(std::move(desc));
  }
  src->root_.body = manifest.dump();
  src->root_.media_type = std::string(media_type::kOciManifest);
  src->root_.digest = sha256_of(src->root_.body);
  return std::unique_ptr<ImageSource>(std::move(src));
}

std::optional<Result<UniqueFd>> DockerArchiveSource::open_local_blob(const Descriptor& d) {
  auto it = files_.find(d.digest.hex);
  if (it == files_.end()) return Result<UniqueFd>(make_error("docker-archive has no blob " + d.digest.str()));
  return dir_.open_file(it->second);
}

Status DockerArchiveSource::fetch_blob(const Descriptor& d, BlobStore& store, const ByteProgress& progress) {
  auto it = files_.find(d.digest.hex);
  if (it == files_.end()) return make_error("docker-archive has no blob " + d.digest.str());
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, dir_.open_file(it->second));
  auto r = store.import_fd(fd.get(), d.digest, d.size);
  if (!r.ok()) return r.error().wrap("blob " + d.digest.str());
  if (progress) progress(d.size);
  return ok_status();
}

}  // namespace kiln::rootfs
