// Validation of OCI image-spec documents (manifest.md, image-index.md, config.md,
// descriptor.md) and Docker image manifest v2 schema 2. Every field is read with kiln_json
// (type-checked, errors name the field path; unknown fields are allowed, as the specs say).
#include "rootfs-builder/oci/image_documents.h"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/json/field_reader.h"

namespace kiln::rootfs {

using nlohmann::json;

namespace {

using kiln::json::FieldResult;
using kiln::json::ObjectReader;

constexpr std::size_t kAnyCount = std::numeric_limits<std::size_t>::max();  // documents are capped

Result<json> parse_json(std::string_view body, const char* what) {
  if (body.size() > kMaxDocumentSize) return make_error(std::string(what) + " is too large");
  auto j = kiln::json::parse(body);
  if (!j.ok()) return make_error(std::string(what) + " is not valid JSON");
  if (!j->is_object()) return make_error(std::string(what) + " is not a JSON object");
  return std::move(j).value();
}

FieldResult<std::string> opt_text(const ObjectReader& r, std::string_view key) {
  KILN_ASSIGN_OR_RETURN(auto v, r.opt_string(key));
  return v.value_or(std::string());
}

FieldResult<std::vector<std::string>> opt_list(const ObjectReader& r, std::string_view key) {
  KILN_ASSIGN_OR_RETURN(auto v, r.opt_strings(key, kAnyCount));
  return v.value_or(std::vector<std::string>());
}

// Labels are string to string (config.md); a label of another type is skipped, not an error,
// so an odd label never stops an image from running.
FieldResult<std::map<std::string, std::string>> opt_labels(const ObjectReader& r, std::string_view key) {
  std::map<std::string, std::string> out;
  KILN_ASSIGN_OR_RETURN(auto labels, r.opt_object(key));
  if (!labels) return out;
  for (const auto& l : labels->value().items()) {
    if (l.value().is_string()) out[l.key()] = l.value().get<std::string>();
  }
  return out;
}

FieldResult<Descriptor> parse_descriptor(const json& j, const std::string& path, bool with_platform) {
  KILN_ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::make(j, path));
  Descriptor d;
  KILN_ASSIGN_OR_RETURN(d.media_type, r.req_string("mediaType"));
  if (d.media_type.empty()) return r.error("mediaType", "must not be empty");
  KILN_ASSIGN_OR_RETURN(std::string digest, r.req_string("digest"));
  auto parsed = Digest::parse(digest);
  if (!parsed.ok()) return r.error("digest", parsed.error().message);
  d.digest = std::move(parsed).value();
  KILN_ASSIGN_OR_RETURN(d.size, r.req_u64("size"));
  KILN_ASSIGN_OR_RETURN(d.artifact_type, opt_text(r, "artifactType"));
  KILN_ASSIGN_OR_RETURN(d.annotations, opt_labels(r, "annotations"));
  if (with_platform) {
    if (j.contains("platform")) {  // present (even null) it must be an object
      KILN_ASSIGN_OR_RETURN(ObjectReader p, ObjectReader::make(j["platform"], r.field("platform")));
      KILN_ASSIGN_OR_RETURN(d.os, p.req_string("os"));
      KILN_ASSIGN_OR_RETURN(d.architecture, p.req_string("architecture"));
      KILN_ASSIGN_OR_RETURN(d.variant, opt_text(p, "variant"));
    }
    auto a = j.find("annotations");
    if (a != j.end() && a->is_object()) {
      KILN_ASSIGN_OR_RETURN(ObjectReader ar, ObjectReader::make(*a, r.field("annotations")));
      KILN_ASSIGN_OR_RETURN(d.ref_name, opt_text(ar, "org.opencontainers.image.ref.name"));
    }
  }
  return d;
}

kiln::json::FieldStatus check_schema_version(const ObjectReader& r) {
  KILN_ASSIGN_OR_RETURN(std::uint64_t v, r.req_u64("schemaVersion"));
  if (v != 2) return r.error("schemaVersion", "unsupported (only 2 is supported)");
  return {};
}

bool is_schema1(std::string_view t) {
  return t == "application/vnd.docker.distribution.manifest.v1+json" ||
         t == "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

// Strips parameters (e.g. "; charset=utf-8") from a Content-Type.
std::string_view bare_type(std::string_view t) {
  size_t semi = t.find(';');
  t = t.substr(0, semi);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return t;
}

}  // namespace

Result<DocumentKind> classify_document(std::string_view body, std::string_view transport_type,
                                       std::string* media_type_out) {
  KILN_ASSIGN_OR_RETURN(json j, parse_json(body, "manifest"));
  KILN_ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::make(j, ""));
  auto own_type = opt_text(r, "mediaType");
  if (!own_type.ok()) return own_type.error().wrap("manifest");
  const std::string& own = *own_type;
  std::string_view ext = bare_type(transport_type);
  // Registries answer generic types for documents they do not recognise; ignore those.
  if (ext == "application/json" || ext == "application/octet-stream" || ext == "text/plain") ext = {};
  if (is_schema1(own) || is_schema1(ext) || (own.empty() && j.contains("fsLayers"))) {
    return make_error("Docker schema 1 manifests are not supported (re-push the image)");
  }
  if (!own.empty() && !ext.empty() && own != ext) {
    return make_error("manifest media type conflict: document says '" + own +
                      "', transport says '" + std::string(ext) + "'");
  }
  std::string mt = own.empty() ? std::string(ext) : own;
  if (mt.empty()) return make_error("manifest has no media type");
  if (media_type_out != nullptr) *media_type_out = mt;
  bool has_layers = j.contains("layers") || j.contains("config");
  bool has_manifests = j.contains("manifests");
  if (has_layers && has_manifests) {
    return make_error("document has both 'manifests' and 'layers'/'config' (ambiguous)");
  }
  if (mt == media_type::kOciManifest || mt == media_type::kDockerManifest) {
    if (has_manifests) return make_error("manifest media type but index content");
    return DocumentKind::kManifest;
  }
  if (mt == media_type::kOciIndex || mt == media_type::kDockerList) {
    if (has_layers) return make_error("index media type but manifest content");
    return DocumentKind::kIndex;
  }
  return make_error("unsupported manifest media type '" + mt + "'");
}

namespace {

FieldResult<Manifest> read_manifest(const json& j, std::string_view media_type) {
  KILN_ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::make(j, ""));
  KILN_TRY(check_schema_version(r));
  Manifest m;
  m.media_type = std::string(media_type);
  bool docker = media_type == media_type::kDockerManifest;
  const json* cfg = r.opt_value("config");
  if (cfg == nullptr) return r.error("config", "missing required field (the config descriptor)");
  KILN_ASSIGN_OR_RETURN(m.config, parse_descriptor(*cfg, "config", false));
  if (m.config.media_type != (docker ? media_type::kDockerConfig : media_type::kOciConfig)) {
    return r.error("config.mediaType", "unsupported media type '" + m.config.media_type + "'");
  }
  if (m.config.size > kMaxDocumentSize) return r.error("config.size", "the image config is too large");
  KILN_ASSIGN_OR_RETURN(const json* layers, r.opt_array("layers"));
  if (layers == nullptr) return r.error("layers", "missing required field");
  if (layers->size() > 1000) return r.error("layers", "more than 1000 layers");
  for (std::size_t i = 0; i < layers->size(); ++i) {
    const std::string at = kiln::json::element_path("layers", i);
    KILN_ASSIGN_OR_RETURN(Descriptor d, parse_descriptor((*layers)[i], at, false));
    if (auto c = layer_compression(d.media_type); !c.ok()) return kiln::json::field_error(at + ".mediaType", c.error().message);
    m.layers.push_back(std::move(d));
  }
  return m;
}

FieldResult<Index> read_index(const json& j, std::string_view media_type) {
  KILN_ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::make(j, ""));
  KILN_TRY(check_schema_version(r));
  Index idx;
  idx.media_type = std::string(media_type);
  KILN_ASSIGN_OR_RETURN(const json* ms, r.opt_array("manifests"));
  if (ms == nullptr) return r.error("manifests", "missing required field");
  if (ms->size() > 10000) return r.error("manifests", "too many manifests");
  for (std::size_t i = 0; i < ms->size(); ++i) {
    KILN_ASSIGN_OR_RETURN(Descriptor d, parse_descriptor((*ms)[i], kiln::json::element_path("manifests", i), true));
    idx.manifests.push_back(std::move(d));
  }
  return idx;
}

FieldResult<ArtifactManifest> read_artifact_manifest(const json& j) {
  KILN_ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::make(j, ""));
  KILN_TRY(check_schema_version(r));
  ArtifactManifest m;
  KILN_ASSIGN_OR_RETURN(m.media_type, r.req_string("mediaType"));
  if (m.media_type != media_type::kOciManifest) return r.error("mediaType", "is not '" + std::string(media_type::kOciManifest) + "'");
  KILN_ASSIGN_OR_RETURN(m.artifact_type, opt_text(r, "artifactType"));
  const json* cfg = r.opt_value("config");
  if (cfg == nullptr) return r.error("config", "missing required field (the config descriptor)");
  KILN_ASSIGN_OR_RETURN(m.config, parse_descriptor(*cfg, "config", false));
  KILN_ASSIGN_OR_RETURN(const json* layers, r.opt_array("layers"));
  if (layers == nullptr) return r.error("layers", "missing required field");
  if (layers->size() > 1000) return r.error("layers", "more than 1000 layers");
  for (std::size_t i = 0; i < layers->size(); ++i) {
    KILN_ASSIGN_OR_RETURN(Descriptor d, parse_descriptor((*layers)[i], kiln::json::element_path("layers", i), false));
    m.layers.push_back(std::move(d));
  }
  if (const json* subject = r.opt_value("subject")) {
    KILN_ASSIGN_OR_RETURN(Descriptor d, parse_descriptor(*subject, "subject", false));
    m.subject = std::move(d);
  }
  KILN_ASSIGN_OR_RETURN(m.annotations, opt_labels(r, "annotations"));
  return m;
}

}  // namespace

Result<ArtifactManifest> parse_artifact_manifest(std::string_view body) {
  KILN_ASSIGN_OR_RETURN(json j, parse_json(body, "manifest"));
  auto m = read_artifact_manifest(j);
  if (!m.ok()) return m.error().wrap("manifest");
  return std::move(m).value();
}

Result<Manifest> parse_manifest(std::string_view body, std::string_view media_type) {
  KILN_ASSIGN_OR_RETURN(json j, parse_json(body, "manifest"));
  auto m = read_manifest(j, media_type);
  if (!m.ok()) return m.error().wrap("manifest");
  return std::move(m).value();
}

Result<Index> parse_index(std::string_view body, std::string_view media_type) {
  KILN_ASSIGN_OR_RETURN(json j, parse_json(body, "index"));
  auto idx = read_index(j, media_type);
  if (!idx.ok()) return idx.error().wrap("index");
  return std::move(idx).value();
}

Result<Descriptor> select_platform(const Index& index, std::string_view os, std::string_view arch) {
  std::string seen;
  for (const auto& d : index.manifests) {
    bool is_manifest = d.media_type == media_type::kOciManifest ||
                       d.media_type == media_type::kDockerManifest;
    if (!is_manifest) continue;
    if (d.os == os && d.architecture == arch) return d;
    if (!d.os.empty()) seen += " " + d.os + "/" + d.architecture;
  }
  return make_error("no manifest for " + std::string(os) + "/" + std::string(arch) +
                    " in the index (has:" + (seen.empty() ? std::string(" none") : seen) + ")");
}

Result<LayerCompression> layer_compression(std::string_view t) {
  if (t == media_type::kOciLayerTar || t == "application/vnd.oci.image.layer.nondistributable.v1.tar") {
    return LayerCompression::kNone;
  }
  if (t == media_type::kOciLayerGzip || t == media_type::kDockerLayerGzip ||
      t == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" ||
      t == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip") {
    return LayerCompression::kGzip;
  }
  if (t == media_type::kOciLayerZstd ||
      t == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd") {
    return LayerCompression::kZstd;
  }
  return make_error("unsupported layer media type '" + std::string(t) + "'");
}

namespace {

FieldResult<ImageConfig> read_config(const json& j) {
  KILN_ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::make(j, ""));
  ImageConfig c;
  KILN_ASSIGN_OR_RETURN(c.os, r.req_string("os"));
  KILN_ASSIGN_OR_RETURN(c.architecture, r.req_string("architecture"));
  KILN_ASSIGN_OR_RETURN(auto cfg, r.opt_object("config"));
  if (cfg) {
    KILN_ASSIGN_OR_RETURN(c.entrypoint, opt_list(*cfg, "Entrypoint"));
    KILN_ASSIGN_OR_RETURN(c.cmd, opt_list(*cfg, "Cmd"));
    KILN_ASSIGN_OR_RETURN(c.env, opt_list(*cfg, "Env"));
    KILN_ASSIGN_OR_RETURN(c.working_dir, opt_text(*cfg, "WorkingDir"));
    KILN_ASSIGN_OR_RETURN(c.user, opt_text(*cfg, "User"));
    KILN_ASSIGN_OR_RETURN(c.labels, opt_labels(*cfg, "Labels"));
    KILN_ASSIGN_OR_RETURN(auto ports, cfg->opt_object("ExposedPorts"));
    if (ports) {
      for (const auto& p : ports->value().items()) c.exposed_ports.push_back(p.key());
      std::sort(c.exposed_ports.begin(), c.exposed_ports.end());
    }
  }
  KILN_ASSIGN_OR_RETURN(auto rootfs, r.opt_object("rootfs"));
  if (!rootfs) return r.error("rootfs", "missing required field");
  KILN_ASSIGN_OR_RETURN(std::string type, rootfs->req_string("type"));
  if (type != "layers") return rootfs->error("type", "is not 'layers'");
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> ids, opt_list(*rootfs, "diff_ids"));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto d = Digest::parse(ids[i]);
    if (!d.ok()) return kiln::json::field_error(kiln::json::element_path("rootfs.diff_ids", i), d.error().message);
    c.diff_ids.push_back(std::move(d).value());
  }
  return c;
}

FieldResult<ImageConfig> read_saved_config(const json& j) {
  KILN_ASSIGN_OR_RETURN(ObjectReader r, ObjectReader::make(j, ""));
  ImageConfig c;
  KILN_ASSIGN_OR_RETURN(c.entrypoint, opt_list(r, "Entrypoint"));
  KILN_ASSIGN_OR_RETURN(c.cmd, opt_list(r, "Cmd"));
  KILN_ASSIGN_OR_RETURN(c.env, opt_list(r, "Env"));
  KILN_ASSIGN_OR_RETURN(c.working_dir, opt_text(r, "WorkingDir"));
  KILN_ASSIGN_OR_RETURN(c.user, opt_text(r, "User"));
  KILN_ASSIGN_OR_RETURN(c.exposed_ports, opt_list(r, "ExposedPorts"));
  KILN_ASSIGN_OR_RETURN(c.labels, opt_labels(r, "Labels"));
  KILN_ASSIGN_OR_RETURN(c.os, opt_text(r, "Os"));
  KILN_ASSIGN_OR_RETURN(c.architecture, opt_text(r, "Architecture"));
  return c;
}

}  // namespace

Result<ImageConfig> parse_config(std::string_view body) {
  KILN_ASSIGN_OR_RETURN(json j, parse_json(body, "image config"));
  auto c = read_config(j);
  if (!c.ok()) return c.error().wrap("image config");
  return std::move(c).value();
}

std::string image_config_json(const ImageConfig& c, const Digest& manifest, const Digest& config) {
  json j = json::object();
  j["ManifestDigest"] = manifest.str();
  j["ConfigDigest"] = config.str();
  j["Entrypoint"] = c.entrypoint;
  j["Cmd"] = c.cmd;
  j["Env"] = c.env;
  j["WorkingDir"] = c.working_dir;
  j["User"] = c.user;
  j["ExposedPorts"] = c.exposed_ports;
  j["Labels"] = c.labels;
  j["Os"] = c.os;
  j["Architecture"] = c.architecture;
  return j.dump(2) + "\n";
}

Result<ImageConfig> parse_saved_config(std::string_view text) {
  KILN_ASSIGN_OR_RETURN(json j, parse_json(text, "saved image config"));
  auto c = read_saved_config(j);
  if (!c.ok()) return c.error().wrap("saved image config");
  return std::move(c).value();
}

}  // namespace kiln::rootfs
