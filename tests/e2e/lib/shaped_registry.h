// ShapedRegistry: a docker-registry that an e2e test or benchmark builds for itself, in its own
// network namespace behind a veth link shaped with tc netem (both directions), at an address of
// TEST-NET-1 that only this link reaches. Pushes OCI layouts there (skopeo) and converts and
// pushes their chunked-rootfs artifacts (kiln-rootfs convert --push, as a library). Removed
// (registry killed, namespace and link deleted) on destruction.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "tests/unit/rootfs/support/local_registry.h"

namespace kiln::e2e {

struct ShapedLink {
  std::string delay = "10ms";    // tc netem delay, each way
  std::string rate = "100mbit";  // tc netem rate, each way
};

struct Converted {
  std::string artifact;   // the artifact manifest digest
  std::string data_blob;  // where the registry keeps the chunk data blob (to alter it)
  std::uint64_t image_size = 0;
  std::uint64_t stored_chunks = 0;
  std::uint64_t data_size = 0;
  double seconds = 0;  // build + chunk + push
};

class ShapedRegistry {
 public:
  // Namespace `ns`, host side `<ns>0` = 192.0.2.1/24, registry at 192.0.2.2:5000; `dir` holds
  // its storage and config.
  static Result<std::unique_ptr<ShapedRegistry>> start(const std::string& ns, const std::string& dir,
                                                       const ShapedLink& link);
  ~ShapedRegistry();

  static constexpr const char* kHost = "192.0.2.2:5000";
  // skopeo copy oci:LAYOUT:TAG -> HOST/NAME:TAG.
  Status push(const std::string& layout, const std::string& tag, const std::string& name);
  // kiln-rootfs convert REF --push with a scratch cache under dir.
  Result<Converted> convert(const std::string& ref);
  // Stops the registry (what a registry outage looks like to kilnd).
  void kill() { registry_->kill(); }

 private:
  ShapedRegistry(std::string ns, std::string dir) : ns_(std::move(ns)), dir_(std::move(dir)) {}
  std::string ns_, dir_;
  std::unique_ptr<rootfs::testing::LocalRegistry> registry_;
};

}  // namespace kiln::e2e
