// ShapedRegistry: ip/tc through /bin/sh (the test host's iproute2), LocalRegistry in the
// namespace, the convert library for the artifact.
#include "tests/e2e/lib/shaped_registry.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "rootfs-builder/artifact/convert.h"
#include "tests/support/process.h"

namespace kiln::e2e {
namespace {

int sh(const std::string& cmd) { return kiln::testing::run({"/bin/sh", "-c", cmd}); }

}  // namespace

Result<std::unique_ptr<ShapedRegistry>> ShapedRegistry::start(const std::string& ns, const std::string& dir,
                                                              const ShapedLink& link) {
  std::unique_ptr<ShapedRegistry> r(new ShapedRegistry(ns, dir));
  const std::string veth = ns + "0";
  sh("ip netns del " + ns + " 2>/dev/null; ip link del " + veth + " 2>/dev/null");
  const std::string in_ns = "ip netns exec " + ns + " ";
  const std::string netem = " root netem delay " + link.delay + " rate " + link.rate;
  if (sh("set -e; ip netns add " + ns + "; ip link add " + veth + " type veth peer name eth0 netns " + ns +
         "; ip addr add 192.0.2.1/24 dev " + veth + "; ip link set " + veth + " up; " + in_ns +
         "ip addr add 192.0.2.2/24 dev eth0; " + in_ns + "ip link set eth0 up; " + in_ns + "ip link set lo up; " +
         "tc qdisc add dev " + veth + netem + "; " + in_ns + "tc qdisc add dev eth0" + netem) != 0) {
    return make_error("could not build the registry's namespace " + ns + " and its shaped link");
  }
  rootfs::testing::LocalRegistryOptions opts;
  opts.netns = ns;
  opts.address = kHost;
  std::string error;
  r->registry_ = rootfs::testing::LocalRegistry::start(dir, opts, &error);
  if (!r->registry_) return make_error("registry: " + error);
  return r;
}

ShapedRegistry::~ShapedRegistry() {
  registry_.reset();
  sh("ip netns del " + ns_ + " 2>/dev/null; ip link del " + ns_ + "0 2>/dev/null");
}

Status ShapedRegistry::push(const std::string& layout, const std::string& tag, const std::string& name) {
  std::string error;
  if (registry_->push(layout, tag, name, &error, {}).empty()) return make_error("skopeo push: " + error);
  return ok_status();
}

Result<Converted> ShapedRegistry::convert(const std::string& ref) {
  const auto t0 = std::chrono::steady_clock::now();
  rootfs::artifact::ConvertRequest req;
  req.build.reference = ref;
  req.build.cache_dir = dir_ + "/convert-cache";
  req.build.tls_verify = false;
  req.push = true;
  KILN_ASSIGN_OR_RETURN(rootfs::artifact::ConvertResult c, rootfs::artifact::convert(req));
  if (!c.pushed) return make_error("convert pushed nothing");
  Converted out;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.artifact = c.pushed->artifact.str();
  out.image_size = c.chunked.index.image_size;
  out.data_size = c.chunked.index.data_size;
  for (const auto& e : c.chunked.index.entries) out.stored_chunks += e.zero() ? 0 : 1;
  // The chunk data blob: the artifact manifest's second layer.
  std::ifstream manifest(registry_->blob_data_path(out.artifact));
  nlohmann::json m = nlohmann::json::parse(manifest, nullptr, false);
  if (!m.is_object() || !m["layers"].is_array() || m["layers"].size() != 2) {
    return make_error("unexpected artifact manifest: " + m.dump());
  }
  out.data_blob = registry_->blob_data_path(m["layers"][1].value("digest", ""));
  std::error_code ec;
  std::filesystem::remove_all(req.build.cache_dir, ec);  // scratch: a large image's copies are big
  return out;
}

}  // namespace kiln::e2e
