// Fuzz target: OCI / Docker manifest, index and image-config parsing
// (rootfs-builder/oci/image_documents.h). Parsers must never throw or crash; a parsed config
// must survive the saved-config round trip. Input: a selector byte (transport media type),
// then the document body.
#include <cstdint>
#include <string>
#include <string_view>

#include "rootfs-builder/digest/digest.h"
#include "rootfs-builder/oci/image_documents.h"
#include "tests/fuzz/support/fuzz_input.h"

namespace kiln::fuzz {
namespace {

namespace rootfs = kiln::rootfs;
namespace mt = rootfs::media_type;

constexpr std::string_view kTransportTypes[] = {
    "", mt::kOciManifest, mt::kOciIndex, mt::kDockerManifest, mt::kDockerList, mt::kOciConfig,
    "application/vnd.docker.distribution.manifest.v1+prettyjws", "text/plain",
};

void check_descriptor(const rootfs::Descriptor& d) {
  KILN_FUZZ_CHECK(d.digest.hex.size() == 64);
}

}  // namespace
}  // namespace kiln::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::fuzz;
  namespace rootfs = kiln::rootfs;
  FuzzInput in(data, size);
  uint8_t sel = in.u8();
  std::string_view transport = kTransportTypes[sel % std::size(kTransportTypes)];
  std::string_view body = as_text(in.rest());

  std::string media_type;
  auto kind = rootfs::classify_document(body, transport, &media_type);
  std::string_view parse_as = kind.ok() ? std::string_view(media_type) : transport;

  auto manifest = rootfs::parse_manifest(body, parse_as);
  if (manifest.ok()) {
    check_descriptor(manifest->config);
    for (const auto& l : manifest->layers) {
      check_descriptor(l);
      (void)rootfs::layer_compression(l.media_type);
    }
  }
  auto index = rootfs::parse_index(body, parse_as);
  if (index.ok()) {
    for (const auto& m : index->manifests) check_descriptor(m);
    auto pick = rootfs::select_platform(*index, "linux", "amd64");
    if (pick.ok()) check_descriptor(*pick);
  }
  auto config = rootfs::parse_config(body);
  if (config.ok()) {
    rootfs::Digest d = rootfs::sha256_of(body);
    std::string saved = rootfs::image_config_json(*config, d, d);
    auto back = rootfs::parse_saved_config(saved);
    KILN_FUZZ_CHECK(back.ok());
    KILN_FUZZ_CHECK(back->entrypoint == config->entrypoint && back->cmd == config->cmd &&
                    back->env == config->env && back->working_dir == config->working_dir &&
                    back->user == config->user && back->exposed_ports == config->exposed_ports);
  }
  (void)rootfs::parse_saved_config(body);
  (void)rootfs::layer_compression(body);
  (void)rootfs::Digest::parse(body);
  return 0;
}
