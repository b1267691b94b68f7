// User resolution for the launch spec's "user" field from the image's own /etc/passwd and
// /etc/group text (parsed directly, never through NSS: the agent is static and the image's
// libc is not ours).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace kiln::agent {

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (membership in /etc/group)
  std::string name;  // empty when the uid has no passwd entry
  std::string home = "/";
};

// spec: "" (root), "uid", "uid:gid", "name", "name:group", "uid:group", "name:gid".
// Like OCI runtimes: a numeric uid without a passwd entry is allowed (gid 0 unless given);
// a name that is not in the file is an error.
Result<Credentials> resolve_user(std::string_view spec, std::string_view passwd,
                                 std::string_view group);

}  // namespace kiln::agent
