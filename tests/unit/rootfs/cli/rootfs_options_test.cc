// kiln-rootfs's command line: every command, every flag, --help, and usage errors; and the
// flags it names in the registry hints.
#include "rootfs-builder/cli/rootfs_options.h"

#include <gtest/gtest.h>

namespace kiln::rootfs {
namespace {

Result<RootfsCommand> parse(const std::vector<std::string>& args) { return parse_rootfs_args(args, "/cache"); }

std::string error_of(const std::vector<std::string>& args) {
  auto r = parse(args);
  EXPECT_FALSE(r.ok());
  return r.ok() ? std::string() : r.error().message;
}

TEST(RootfsOptions, BuildWithEveryFlag) {
  auto c = parse({"build", "docker://r:5000/a:v1", "-o", "/out.ext4", "--cache-dir", "/c", "--tls-verify=false",
                  "--creds", "u:p", "--authfile", "/auth.json", "--ca-file", "/ca.pem", "--platform", "linux/arm64"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->action, RootfsAction::kBuild);
  const BuildRequest& r = c->request;
  EXPECT_EQ(r.reference, "docker://r:5000/a:v1");
  EXPECT_EQ(r.output_path, "/out.ext4");
  EXPECT_EQ(r.cache_dir, "/c");
  EXPECT_FALSE(r.tls_verify);
  EXPECT_EQ(r.credentials, "u:p");
  EXPECT_EQ(r.auth_file, "/auth.json");
  EXPECT_EQ(r.ca_file, "/ca.pem");
  EXPECT_EQ(r.os, "linux");
  EXPECT_EQ(r.architecture, "arm64");
}

TEST(RootfsOptions, InspectWithDefaults) {
  auto c = parse({"inspect", "oci:/layout"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->action, RootfsAction::kInspect);
  EXPECT_EQ(c->request.cache_dir, "/cache");
  EXPECT_TRUE(c->request.tls_verify);
  EXPECT_TRUE(parse({"inspect", "oci:/l", "--tls-verify=false", "--tls-verify"})->request.tls_verify);
  EXPECT_TRUE(parse({"inspect", "oci:/l", "--tls-verify=true"})->request.tls_verify);
  EXPECT_EQ(parse({"build", "oci:/l", "--output=/o"})->request.output_path, "/o");
}

TEST(RootfsOptions, ConvertAndLazyInfo) {
  auto c = parse({"convert", "r:5000/a:v1", "--push", "-o", "/chunks", "--chunk-kib", "64", "--zstd-level", "5",
                  "--tls-verify=false", "--creds", "u:p", "--platform", "linux/arm64"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->action, RootfsAction::kConvert);
  const artifact::ConvertRequest& r = c->convert;
  EXPECT_TRUE(r.push);
  EXPECT_EQ(r.out_dir, "/chunks");
  EXPECT_EQ(r.build.reference, "r:5000/a:v1");
  EXPECT_TRUE(r.build.output_path.empty());
  EXPECT_FALSE(r.build.tls_verify);
  EXPECT_EQ(r.build.credentials, "u:p");
  EXPECT_EQ(r.build.architecture, "arm64");
  EXPECT_EQ(r.chunking.chunk_size, 64u * 1024);
  EXPECT_EQ(r.chunking.zstd_level, 5);
  auto local = parse({"convert", "oci:/l", "-o", "/chunks"});
  ASSERT_TRUE(local.ok()) << local.error().message;
  EXPECT_FALSE(local->convert.push);
  EXPECT_EQ(error_of({"convert", "oci:/l"}), "convert needs -o OUT_DIR or --push");
  EXPECT_EQ(error_of({"build", "x", "-o", "y", "--push"}), "--push applies to convert only");
  EXPECT_EQ(error_of({"chunk", "a", "b", "--push"}), "--push applies to convert only");

  auto info = parse({"lazy-info", "r:5000/a:v1", "--ca-file", "/ca.pem"});
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->action, RootfsAction::kLazyInfo);
  EXPECT_EQ(info->request.ca_file, "/ca.pem");
  EXPECT_FALSE(info->verify_chunks);
  EXPECT_TRUE(parse({"lazy-info", "r/a", "--verify-chunks"})->verify_chunks);
  EXPECT_EQ(error_of({"convert", "r/a", "--push", "--verify-chunks"}), "--verify-chunks applies to lazy-info only");
  EXPECT_EQ(error_of({"lazy-info"}), "lazy-info needs an image REF");
  EXPECT_EQ(error_of({"lazy-info", "x", "-o", "y"}), "-o does not apply to lazy-info");
  EXPECT_EQ(error_of({"lazy-info", "x", "--zstd-level", "3"}), "--zstd-level applies to chunk and convert only");
}

TEST(RootfsOptions, HelpEverywhere) {
  EXPECT_EQ(parse({"--help"})->action, RootfsAction::kHelp);
  EXPECT_EQ(parse({"-h"})->action, RootfsAction::kHelp);
  EXPECT_EQ(parse({"build", "--help"})->action, RootfsAction::kHelp);
  EXPECT_EQ(parse({"inspect", "x", "--help"})->action, RootfsAction::kHelp);
  EXPECT_NE(rootfs_usage().find("usage: kiln-rootfs build REF -o OUT"), std::string::npos);
}

TEST(RootfsOptions, UsageErrors) {
  EXPECT_EQ(error_of({}), "missing command (build, inspect, chunk, convert or lazy-info)");
  EXPECT_EQ(error_of({"pull", "x"}), "unknown command pull (build, inspect, chunk, convert or lazy-info)");
  EXPECT_EQ(error_of({"build"}), "build needs an image REF");
  EXPECT_EQ(error_of({"build", "x"}), "build needs -o OUT");
  EXPECT_EQ(error_of({"build", "x", "-o"}), "-o: missing value");
  EXPECT_EQ(error_of({"build", "x", "-o", "y", "--frobnicate"}), "unknown flag --frobnicate");
  EXPECT_EQ(error_of({"inspect", "x", "y"}), "unexpected argument y");
  EXPECT_EQ(error_of({"inspect", "x", "--tls-verify=no"}), "--tls-verify: want true or false, got 'no'");
  EXPECT_NE(error_of({"inspect", "x", "--platform", "linux"}).find("OS/ARCH"), std::string::npos);
  EXPECT_NE(error_of({"inspect", "x", "--platform", "/amd64"}).find("OS/ARCH"), std::string::npos);
}

TEST(RootfsOptions, Chunk) {
  auto c = parse({"chunk", "/img.ext4", "/out"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->action, RootfsAction::kChunk);
  EXPECT_EQ(c->chunk.image_path, "/img.ext4");
  EXPECT_EQ(c->chunk.out_dir, "/out");
  EXPECT_EQ(c->chunk.options.chunk_size, 512u * 1024);
  EXPECT_EQ(c->chunk.options.zstd_level, 3);
  c = parse({"chunk", "--chunk-kib", "128", "/img.ext4", "/out", "--zstd-level=9"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->chunk.options.chunk_size, 128u * 1024);
  EXPECT_EQ(c->chunk.options.zstd_level, 9);
  EXPECT_EQ(error_of({"chunk", "/img.ext4"}), "chunk needs IMAGE and OUT_DIR");
  EXPECT_EQ(error_of({"chunk", "a", "b", "c"}), "chunk needs IMAGE and OUT_DIR");
  EXPECT_EQ(error_of({"chunk", "a", "b", "--chunk-kib", "100"}), "--chunk-kib: want a power of two in [4, 16384]");
  EXPECT_EQ(error_of({"chunk", "a", "b", "--chunk-kib", "2"}), "--chunk-kib: want a power of two in [4, 16384]");
  EXPECT_NE(error_of({"chunk", "a", "b", "--chunk-kib", "32768"}).find("--chunk-kib"), std::string::npos);
  EXPECT_EQ(error_of({"chunk", "a", "b", "--zstd-level", "0"}), "--zstd-level: want 1..19");
  EXPECT_NE(error_of({"chunk", "a", "b", "--zstd-level", "20"}).find("--zstd-level"), std::string::npos);
  EXPECT_EQ(error_of({"chunk", "a", "b", "--creds", "u:p"}), "--creds does not apply to chunk");
  EXPECT_EQ(error_of({"chunk", "a", "b", "-o", "x"}), "--output does not apply to chunk");
  EXPECT_EQ(error_of({"build", "x", "-o", "y", "--zstd-level", "3"}), "--zstd-level applies to chunk and convert only");
  EXPECT_EQ(error_of({"inspect", "x", "--chunk-kib", "64"}), "--chunk-kib applies to chunk and convert only");
  EXPECT_NE(rootfs_usage().find("kiln-rootfs chunk IMAGE OUT_DIR"), std::string::npos);
}

TEST(RootfsOptions, RegistryHintsNameKilnRootfsFlags) {
  std::string creds = add_flag_hints("registry r:5000 " + std::string(kNoCredentialsHint), kRootfsFlagHints);
  EXPECT_EQ(creds, "registry r:5000 requires authentication and no credentials were given "
                   "(use --creds USER:PASS or --authfile FILE)");
  std::string plain = add_flag_hints("... wrong version number (" + std::string(kPlainHttpHint) + ")", kRootfsFlagHints);
  EXPECT_EQ(plain, "... wrong version number (the registry may speak plain HTTP: use --tls-verify=false)");
  EXPECT_EQ(add_flag_hints("manifest unknown", kRootfsFlagHints), "manifest unknown");
}

}  // namespace
}  // namespace kiln::rootfs
