// A Lambda-style test image: the static Runtime API client written for the tests
// (runtime_client.cc) as Lambda's base images lay it out, packed at run time into an OCI layout
// (tests/unit/rootfs/support/test_image.h). Used by e2e_kilnd_lambda and bench_lambda.
#pragma once

#include <string>

namespace kiln::e2e {

// An OCI layout at `dir` (tag latest): the runtime client as /var/runtime/bootstrap behind a
// one-element ENTRYPOINT with the handler `echo` as CMD (Lambda's base image layout), busybox
// for `ps` and `kill`, Env with LAMBDA_TASK_ROOT (so kilnd detects a Lambda image), running as
// `user`. Throws (the test support's writers do) when it cannot be written.
void write_lambda_image(const std::string& dir, const std::string& user);

}  // namespace kiln::e2e
