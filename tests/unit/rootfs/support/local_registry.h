// A real CNCF distribution registry (Debian's docker-registry) on loopback for tests, with
// optional TLS from a throwaway test CA and htpasswd basic auth. Killed on destruction.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace kiln::rootfs::testing {

struct LocalRegistryOptions {
  bool tls = false;
  std::string user;  // with password: enables htpasswd auth
  std::string password;
  // Run it in this network namespace (`ip netns exec NETNS`), listening on `address` (HOST:PORT
  // in that namespace, reachable from the caller's); empty: loopback, a free port.
  std::string netns;
  std::string address;
};

// TLS (a throwaway CA) and htpasswd auth for `user`.
LocalRegistryOptions secure_registry(const std::string& user, const std::string& password);

class LocalRegistry {
 public:
  // Starts the registry under dir and waits (deadline 30 s) until /v2/ answers.
  static std::unique_ptr<LocalRegistry> start(const std::string& dir, const LocalRegistryOptions& opts,
                                              std::string* error);
  ~LocalRegistry();

  const std::string& host() const { return host_; }        // 127.0.0.1:PORT
  const std::string& ca_file() const { return ca_file_; }  // empty without TLS
  // Stops the registry process (SIGKILL, reaped); later requests find nobody listening.
  void kill();
  // Where the registry keeps a blob's bytes (filesystem driver layout).
  std::string blob_data_path(const std::string& digest) const;

  // skopeo copy oci:LAYOUT:TAG docker://HOST/NAME:TAG; returns the pushed manifest digest.
  std::string push(const std::string& layout, const std::string& tag, const std::string& name,
                   std::string* error, const std::vector<std::string>& extra_args = {}) const;

 private:
  LocalRegistry() = default;
  pid_t pid_ = -1;
  std::string dir_, host_, ca_file_, storage_;
  LocalRegistryOptions opts_;
};

// A bcrypt htpasswd line ("user:$2b$...") made with libxcrypt.
std::string htpasswd_line(const std::string& user, const std::string& password);

// An unused loopback TCP port (bound to port 0 and released).
int free_port();

}  // namespace kiln::rootfs::testing
