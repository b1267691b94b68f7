// Image reference parsing: skopeo transports, registry/port/tag/digest splitting, bad input.
#include "rootfs-builder/reference/image_reference.h"

#include <gtest/gtest.h>

#include <vector>

namespace kiln::rootfs {
namespace {

const std::string kHex(64, 'a');

TEST(ImageReference, DockerWithPortAndTag) {
  auto r = parse_reference("docker://127.0.0.1:5000/team/app:v1.2");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->transport, Transport::kDocker);
  EXPECT_EQ(r->registry, "127.0.0.1:5000");
  EXPECT_EQ(r->repository, "team/app");
  EXPECT_EQ(r->tag, "v1.2");
  EXPECT_EQ(r->digest, "");
}

TEST(ImageReference, DockerPrefixIsOptional) {
  auto r = parse_reference("localhost:5000/app");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->registry, "localhost:5000");
  EXPECT_EQ(r->repository, "app");
  EXPECT_EQ(r->tag, "latest");
}

TEST(ImageReference, DockerHubDefaults) {
  auto r = parse_reference("busybox");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->registry, "registry-1.docker.io");
  EXPECT_EQ(r->repository, "library/busybox");
  EXPECT_EQ(r->tag, "latest");
  auto r2 = parse_reference("docker.io/org/img:1");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->registry, "registry-1.docker.io");
  EXPECT_EQ(r2->repository, "org/img");
}

TEST(ImageReference, Digest) {
  auto r = parse_reference("registry.example.com/app@sha256:" + kHex);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->digest, "sha256:" + kHex);
  EXPECT_EQ(r->tag, "");
  auto both = parse_reference("registry.example.com/app:v1@sha256:" + kHex);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->tag, "v1");
  EXPECT_EQ(both->digest, "sha256:" + kHex);
}

TEST(ImageReference, Rejects) {
  for (std::string bad : std::vector<std::string>{"", "docker://", "Host.com/UPPER", "x:bad tag", "x@sha256:abc",
                          "x@md5:" + kHex, "host.com/a//b", "host.com/-a", "host.com:port/x",
                          "x:" + std::string(200, 't'), "host.com/a@sha256:" + std::string(64, 'G')}) {
    EXPECT_FALSE(parse_reference(bad).ok()) << bad;
  }
  EXPECT_FALSE(parse_reference(std::string(5000, 'a')).ok());
  EXPECT_FALSE(parse_reference("oci:").ok());
}

TEST(ImageReference, LocalTransports) {
  auto oci = parse_reference("oci:/tmp/layout:v1");
  ASSERT_TRUE(oci.ok());
  EXPECT_EQ(oci->transport, Transport::kOciLayout);
  EXPECT_EQ(oci->path, "/tmp/layout");
  EXPECT_EQ(oci->local_tag, "v1");
  auto untagged = parse_reference("oci:/tmp/layout");
  ASSERT_TRUE(untagged.ok());
  EXPECT_EQ(untagged->local_tag, "");
  auto oa = parse_reference("oci-archive:/tmp/img.tar");
  ASSERT_TRUE(oa.ok());
  EXPECT_EQ(oa->transport, Transport::kOciArchive);
  EXPECT_EQ(oa->path, "/tmp/img.tar");
  auto da = parse_reference("docker-archive:/tmp/img.tar:app:v1");
  ASSERT_TRUE(da.ok());
  EXPECT_EQ(da->transport, Transport::kDockerArchive);
  EXPECT_EQ(da->path, "/tmp/img.tar");
  EXPECT_EQ(da->local_tag, "app:v1");
}

TEST(ImageReference, RoundTrip) {
  auto r = parse_reference("127.0.0.1:5000/a/b:t");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->to_string(), "docker://127.0.0.1:5000/a/b:t");
}

}  // namespace
}  // namespace kiln::rootfs
