// Validation of OCI image-spec documents (manifest.md, image-index.md, config.md,
// descriptor.md) and Docker image manifest v2 schema 2. Every JSON access is type-checked.
#include "rootfs-builder/oci/image_documents.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace kiln::rootfs {

using nlohmann::json;

namespace {

Result<json> parse_json(std::string_view body, const char* what) {
  if (body.size() > kMaxDocumentSize) return make_error(std::string(what) + " is too large");
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(std::string(what) + " is not valid JSON");
  if (!j.is_object()) return make_error(std::string(what) + " is not a JSON object");
  return j;
}

Result<std::string> get_string(const json& o, const char* key, bool required) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) {
    if (required) return make_error(std::string("missing field '") + key + "'");
    return std::string();
  }
  if (!it->is_string()) return make_error(std::string("field '") + key + "' is not a string");
  return it->get<std::string>();
}

Result<std::vector<std::string>> get_string_array(const json& o, const char* key) {
  std::vector<std::string> out;
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return out;
  if (!it->is_array()) return make_error(std::string("field '") + key + "' is not an array");
  for (const auto& v : *it) {
    if (!v.is_string()) return make_error(std::string("field '") + key + "' has a non-string entry");
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<Descriptor> parse_descriptor(const json& j, bool with_platform) {
  if (!j.is_object()) return make_error("descriptor is not an object");
  Descriptor d;
  KILN_ASSIGN_OR_RETURN(d.media_type, get_string(j, "mediaType", true));
  if (d.media_type.empty()) return make_error("descriptor has an empty mediaType");
  KILN_ASSIGN_OR_RETURN(std::string digest, get_string(j, "digest", true));
  KILN_ASSIGN_OR_RETURN(d.digest, Digest::parse(digest));
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer()) {
    return make_error("descriptor " + digest + " has no integer size");
  }
  if (size->is_number_unsigned()) {
    d.size = size->get<uint64_t>();
  } else {
    return make_error("descriptor " + digest + " has a negative size");
  }
  if (with_platform) {
    auto p = j.find("platform");
    if (p != j.end()) {
      if (!p->is_object()) return make_error("descriptor platform is not an object");
      KILN_ASSIGN_OR_RETURN(d.os, get_string(*p, "os", true));
      KILN_ASSIGN_OR_RETURN(d.architecture, get_string(*p, "architecture", true));
      KILN_ASSIGN_OR_RETURN(d.variant, get_string(*p, "variant", false));
    }
    auto a = j.find("annotations");
    if (a != j.end() && a->is_object()) {
      KILN_ASSIGN_OR_RETURN(d.ref_name, get_string(*a, "org.opencontainers.image.ref.name", false));
    }
  }
  return d;
}

Status check_schema_version(const json& j) {
  auto v = j.find("schemaVersion");
  if (v == j.end() || !v->is_number_integer()) return make_error("missing schemaVersion");
  if (*v != 2) return make_error("unsupported schemaVersion (only 2 is supported)");
  return ok_status();
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
                                       std::string* media_type_out) try {
  KILN_ASSIGN_OR_RETURN(json j, parse_json(body, "manifest"));
  KILN_ASSIGN_OR_RETURN(std::string own, get_string(j, "mediaType", false));
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
} catch (const json::exception& e) {
  return make_error(std::string("malformed manifest: ") + e.what());
}

Result<Manifest> parse_manifest(std::string_view body, std::string_view media_type) try {
  KILN_ASSIGN_OR_RETURN(json j, parse_json(body, "manifest"));
  KILN_TRY(check_schema_version(j));
  Manifest m;
  m.media_type = std::string(media_type);
  bool docker = media_type == media_type::kDockerManifest;
  auto cfg = j.find("config");
  if (cfg == j.end()) return make_error("manifest has no config descriptor");
  auto config = parse_descriptor(*cfg, false);
  if (!config.ok()) return config.error().wrap("manifest config");
  m.config = std::move(config).value();
  if (m.config.media_type != (docker ? media_type::kDockerConfig : media_type::kOciConfig)) {
    return make_error("manifest config has unsupported media type '" + m.config.media_type + "'");
  }
  if (m.config.size > kMaxDocumentSize) return make_error("image config is too large");
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) return make_error("manifest has no layers array");
  if (layers->size() > 1000) return make_error("manifest has more than 1000 layers");
  for (const auto& l : *layers) {
    auto d = parse_descriptor(l, false);
    if (!d.ok()) return d.error().wrap("manifest layer");
    KILN_TRY(layer_compression(d->media_type));
    m.layers.push_back(std::move(d).value());
  }
  return m;
} catch (const json::exception& e) {
  return make_error(std::string("malformed manifest: ") + e.what());
}

Result<Index> parse_index(std::string_view body, std::string_view media_type) try {
  KILN_ASSIGN_OR_RETURN(json j, parse_json(body, "index"));
  KILN_TRY(check_schema_version(j));
  Index idx;
  idx.media_type = std::string(media_type);
  auto ms = j.find("manifests");
  if (ms == j.end() || !ms->is_array()) return make_error("index has no manifests array");
  if (ms->size() > 10000) return make_error("index has too many manifests");
  for (const auto& m : *ms) {
    auto d = parse_descriptor(m, true);
    if (!d.ok()) return d.error().wrap("index entry");
    idx.manifests.push_back(std::move(d).value());
  }
  return idx;
} catch (const json::exception& e) {
  return make_error(std::string("malformed index: ") + e.what());
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

Result<ImageConfig> parse_config(std::string_view body) try {
  KILN_ASSIGN_OR_RETURN(json j, parse_json(body, "image config"));
  ImageConfig c;
  KILN_ASSIGN_OR_RETURN(c.os, get_string(j, "os", true));
  KILN_ASSIGN_OR_RETURN(c.architecture, get_string(j, "architecture", true));
  auto cfg = j.find("config");
  if (cfg != j.end() && !cfg->is_null()) {
    if (!cfg->is_object()) return make_error("image config 'config' is not an object");
    KILN_ASSIGN_OR_RETURN(c.entrypoint, get_string_array(*cfg, "Entrypoint"));
    KILN_ASSIGN_OR_RETURN(c.cmd, get_string_array(*cfg, "Cmd"));
    KILN_ASSIGN_OR_RETURN(c.env, get_string_array(*cfg, "Env"));
    KILN_ASSIGN_OR_RETURN(c.working_dir, get_string(*cfg, "WorkingDir", false));
    KILN_ASSIGN_OR_RETURN(c.user, get_string(*cfg, "User", false));
    auto ports = cfg->find("ExposedPorts");
    if (ports != cfg->end() && !ports->is_null()) {
      if (!ports->is_object()) return make_error("ExposedPorts is not an object");
      for (auto it = ports->begin(); it != ports->end(); ++it) c.exposed_ports.push_back(it.key());
      std::sort(c.exposed_ports.begin(), c.exposed_ports.end());
    }
  }
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object()) return make_error("image config has no rootfs");
  KILN_ASSIGN_OR_RETURN(std::string type, get_string(*rootfs, "type", true));
  if (type != "layers") return make_error("image config rootfs.type is not 'layers'");
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> ids, get_string_array(*rootfs, "diff_ids"));
  for (const auto& id : ids) {
    auto d = Digest::parse(id);
    if (!d.ok()) return d.error().wrap("image config diff_id");
    c.diff_ids.push_back(std::move(d).value());
  }
  return c;
} catch (const json::exception& e) {
  return make_error(std::string("malformed image config: ") + e.what());
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
  j["Os"] = c.os;
  j["Architecture"] = c.architecture;
  return j.dump(2) + "\n";
}

Result<ImageConfig> parse_saved_config(std::string_view text) try {
  KILN_ASSIGN_OR_RETURN(json j, parse_json(text, "saved image config"));
  ImageConfig c;
  KILN_ASSIGN_OR_RETURN(c.entrypoint, get_string_array(j, "Entrypoint"));
  KILN_ASSIGN_OR_RETURN(c.cmd, get_string_array(j, "Cmd"));
  KILN_ASSIGN_OR_RETURN(c.env, get_string_array(j, "Env"));
  KILN_ASSIGN_OR_RETURN(c.working_dir, get_string(j, "WorkingDir", false));
  KILN_ASSIGN_OR_RETURN(c.user, get_string(j, "User", false));
  KILN_ASSIGN_OR_RETURN(c.exposed_ports, get_string_array(j, "ExposedPorts"));
  KILN_ASSIGN_OR_RETURN(c.os, get_string(j, "Os", false));
  KILN_ASSIGN_OR_RETURN(c.architecture, get_string(j, "Architecture", false));
  return c;
} catch (const json::exception& e) {
  return make_error(std::string("malformed saved config: ") + e.what());
}

}  // namespace kiln::rootfs
