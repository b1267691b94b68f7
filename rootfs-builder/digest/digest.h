// Content digests ("sha256:<64 hex>") as used by the OCI image-spec (descriptor.md#digests),
// and a streaming SHA-256 over OpenSSL EVP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace kiln::rootfs {

// Only sha256 is accepted: it is the one algorithm registries and the spec require.
struct Digest {
  std::string hex;  // 64 lowercase hex characters

  std::string str() const { return "sha256:" + hex; }
  bool empty() const { return hex.empty(); }
  bool operator==(const Digest&) const = default;

  static Result<Digest> parse(std::string_view text);
};

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t len);
  Digest finish();  // usable once

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

Digest sha256_of(std::string_view data);
// Streams a file through SHA-256; also reports its size.
Result<Digest> sha256_of_file(int fd, uint64_t* size_out);

}  // namespace kiln::rootfs
