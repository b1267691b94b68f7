// Fuzz target: kiln's chunked-rootfs artifact documents (rootfs-builder/artifact/chunk_artifact.h):
// the artifact manifest check and the referrers index reader/updater, over untrusted registry
// bytes. They must never throw or crash; an accepted manifest must satisfy the format's rules,
// and an index that add_referrer extended must list the new entry exactly once.
// Input: a selector byte (transport media type), then the document.
#include <cstdint>
#include <string>
#include <string_view>

#include "rootfs-builder/artifact/chunk_artifact.h"
#include "rootfs-builder/chunks/chunk_index.h"
#include "tests/fuzz/support/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::fuzz;
  namespace rootfs = kiln::rootfs;
  namespace artifact = kiln::rootfs::artifact;
  constexpr std::string_view kTransportTypes[] = {"", rootfs::media_type::kOciIndex, rootfs::media_type::kOciManifest,
                                                  "application/json"};
  FuzzInput in(data, size);
  std::string_view transport = kTransportTypes[in.u8() % std::size(kTransportTypes)];
  std::string_view body = as_text(in.rest());
  const rootfs::Digest subject = rootfs::sha256_of("subject");

  if (auto m = rootfs::parse_artifact_manifest(body); m.ok()) {
    KILN_FUZZ_CHECK(m->media_type == rootfs::media_type::kOciManifest);
  }
  if (auto layers = artifact::check_artifact_manifest(body, subject); layers.ok()) {
    KILN_FUZZ_CHECK(layers->index.media_type == artifact::kIndexMediaType);
    KILN_FUZZ_CHECK(layers->data.media_type == artifact::kDataMediaType);
    KILN_FUZZ_CHECK(layers->index.size <= kiln::rootfs::chunks::kMaxIndexBytes);
    KILN_FUZZ_CHECK(layers->chunk_size >= kiln::rootfs::chunks::kMinChunkSize);
  }
  if (auto picked = artifact::pick_artifact(body, transport); picked.ok() && picked->has_value()) {
    KILN_FUZZ_CHECK((*picked)->artifact_type == artifact::kArtifactType);
    KILN_FUZZ_CHECK((*picked)->size <= rootfs::kMaxDocumentSize);
  }
  artifact::ArtifactLayers l;
  l.image_size = 4096;
  l.chunk_size = 4096;
  const rootfs::Descriptor entry = artifact::referrer_descriptor(subject, 100, l);
  auto added = artifact::add_referrer(std::string(body), transport, entry);
  if (added.ok() && added->has_value()) {
    auto again = artifact::add_referrer(**added, "", entry);
    KILN_FUZZ_CHECK(again.ok() && !again->has_value());
  }
  return 0;
}
