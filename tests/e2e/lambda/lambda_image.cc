// The Lambda-style test image (lambda_image.h).
#include "tests/e2e/lambda/lambda_image.h"

#include <vector>

#include "tests/support/process.h"
#include "tests/support/test_paths.h"
#include "tests/unit/rootfs/support/test_image.h"

namespace kiln::e2e {

namespace img = kiln::rootfs::testing;

void write_lambda_image(const std::string& dir, const std::string& user) {
  std::vector<img::TarEntry> entries = {
      img::dir("bin"),
      img::file("bin/busybox", kiln::testing::slurp("/bin/busybox"), 0755),
      img::dir("etc"),
      img::file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nsbx:x:1000:1000::/tmp:/bin/sh\n"),
      img::file("etc/group", "root:x:0:\nsbx:x:1000:\n"),
      img::dir("var"),
      img::dir("var/runtime"),
      img::file("var/runtime/bootstrap", kiln::testing::slurp(kiln::testing::build_path("tests/e2e/lambda/kiln-e2e-lambda-runtime")),
                0755),
      img::dir("var/task"),
      img::dir("tmp", 01777),
      img::dir("proc"),
      img::dir("sys"),
      img::dir("dev"),
      img::dir("root", 0700),
  };
  for (const char* applet : {"sh", "ps", "kill", "ls", "cat"}) entries.push_back(img::symlink(std::string("bin/") + applet, "busybox"));
  img::ImageSpec spec;
  spec.layers = {img::make_tar(entries)};
  spec.entrypoint = {"/var/runtime/bootstrap"};
  spec.cmd = {"echo"};
  spec.env = {"PATH=/usr/bin:/bin", "LAMBDA_TASK_ROOT=/var/task"};
  spec.working_dir = "/var/task";
  spec.user = user;
  img::write_oci_layout(dir, spec, "latest");
}

}  // namespace kiln::e2e
