// SHA-256 digests via OpenSSL EVP and the strict "sha256:<hex>" parser.
#include "rootfs-builder/digest/digest.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace kiln::rootfs {

Result<Digest> Digest::parse(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  if (text.substr(0, kPrefix.size()) != kPrefix) {
    return make_error("unsupported digest '" + std::string(text.substr(0, 80)) +
                      "' (only sha256:<64 hex> is accepted)");
  }
  std::string_view hex = text.substr(kPrefix.size());
  if (hex.size() != 64) return make_error("malformed sha256 digest (need 64 hex characters)");
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return make_error("malformed sha256 digest (need lowercase hex)");
    }
  }
  return Digest{std::string(hex)};
}

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1) {
    std::abort();  // only fails on allocation failure or a broken OpenSSL install
  }
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, size_t len) {
  if (len > 0) EVP_DigestUpdate(ctx_->md, data, len);
}

Digest Sha256::finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 0xf]);
  }
  return Digest{std::move(hex)};
}

Digest sha256_of(std::string_view data) {
  Sha256 h;
  h.update(data.data(), data.size());
  return h.finish();
}

Result<Digest> sha256_of_file(int fd, uint64_t* size_out) {
  Sha256 h;
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("read");
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  if (size_out != nullptr) *size_out = total;
  return h.finish();
}

}  // namespace kiln::rootfs
