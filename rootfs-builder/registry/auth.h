// Registry authentication helpers: WWW-Authenticate challenges (RFC 7235 / distribution
// token spec), Docker-style auth files.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/result.h"

namespace kiln::rootfs {

struct AuthChallenge {
  std::string scheme;  // lowercased: "bearer" or "basic"
  std::map<std::string, std::string> params;  // realm, service, scope (keys lowercased)
};

Result<AuthChallenge> parse_www_authenticate(std::string_view header);

// "user:password" for registry host[:port] from a Docker config.json / containers auth.json
// ({"auths": {"HOST": {"auth": base64(user:password)}}}); empty when the file has none.
Result<std::string> credentials_from_auth_file(const std::string& path, const std::string& registry);

}  // namespace kiln::rootfs
