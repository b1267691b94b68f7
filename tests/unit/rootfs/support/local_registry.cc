// Test CA and server certificate via the openssl CLI (argv), bcrypt via libxcrypt, registry
// process via posix_spawn, readiness by polling /v2/ with a deadline.
#include "tests/unit/rootfs/support/local_registry.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "rootfs-builder/registry/http_client.h"
#include "tests/unit/rootfs/support/test_image.h"

extern char** environ;

namespace kiln::rootfs::testing {

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

std::string htpasswd_line(const std::string& user, const std::string& password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$2b$", 5, nullptr, 0, salt, sizeof salt) == nullptr) return {};
  crypt_data data{};
  const char* h = crypt_r(password.c_str(), salt, &data);
  if (h == nullptr || h[0] == '*') return {};
  return user + ":" + h + "\n";
}

LocalRegistryOptions secure_registry(const std::string& user, const std::string& password) {
  LocalRegistryOptions o;
  o.tls = true;
  o.user = user;
  o.password = password;
  return o;
}

std::unique_ptr<LocalRegistry> LocalRegistry::start(const std::string& dir, const LocalRegistryOptions& opts,
                                                    std::string* error) {
  std::unique_ptr<LocalRegistry> r(new LocalRegistry());
  r->dir_ = dir;
  r->opts_ = opts;
  r->storage_ = dir + "/storage";
  std::filesystem::create_directories(r->storage_);
  std::string extra;  // tls: and auth: sections
  if (opts.tls) {
    std::string out;
    write_file(dir + "/san.cnf", "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
    std::vector<std::vector<std::string>> steps = {
        {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", dir + "/ca.key", "-out", dir + "/ca.crt", "-days", "2", "-subj", "/CN=kiln test CA"},
        {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
         dir + "/server.key", "-out", dir + "/server.csr", "-subj", "/CN=127.0.0.1"},
        {"openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.crt", "-CAkey", dir + "/ca.key",
         "-CAcreateserial", "-out", dir + "/server.crt", "-days", "2", "-extfile", dir + "/san.cnf"}};
    for (const auto& argv : steps) {
      if (run(argv, &out) != 0) {
        *error = "openssl failed: " + out;
        return nullptr;
      }
    }
    r->ca_file_ = dir + "/ca.crt";
    extra += "  tls:\n    certificate: " + dir + "/server.crt\n    key: " + dir + "/server.key\n";
  }
  if (!opts.user.empty()) {
    std::string line = htpasswd_line(opts.user, opts.password);
    if (line.empty()) {
      *error = "bcrypt via crypt_r failed";
      return nullptr;
    }
    write_file(dir + "/htpasswd", line);
    extra += "auth:\n  htpasswd:\n    realm: kiln-test\n    path: " + dir + "/htpasswd\n";
  }

  // The registry cannot take a listening fd, so a free port is picked and released first;
  // should another process grab it meanwhile, the registry exits and we try another.
  std::string log = dir + "/registry.log";
  for (int attempt = 0; attempt < 3; ++attempt) {
    r->host_ = opts.address.empty() ? "127.0.0.1:" + std::to_string(free_port()) : opts.address;
    std::string cfg = "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: " +
                      r->storage_ + "\n  delete:\n    enabled: true\nhttp:\n  addr: " + r->host_ + "\n";
    // tls: belongs under http:, auth: is top level.
    size_t auth_at = extra.find("auth:");
    cfg += extra.substr(0, auth_at);
    if (auth_at != std::string::npos) cfg += extra.substr(auth_at);
    write_file(dir + "/config.yml", cfg);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::string cfg_path = dir + "/config.yml";
    std::vector<std::string> args = {"docker-registry", "serve", cfg_path};
    if (!opts.netns.empty()) args.insert(args.begin(), {"ip", "netns", "exec", opts.netns});
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = ::posix_spawnp(&r->pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      r->pid_ = -1;
      *error = "cannot start docker-registry";
      return nullptr;
    }
    // Ready when /v2/ answers (200, or 401 with auth). Poll with a deadline.
    HttpClient http(HttpOptions{false, ""});
    std::string url = (opts.tls ? "https://" : "http://") + r->host_ + "/v2/";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    bool exited = false;
    for (;;) {
      auto resp = http.request("GET", url, {}, 1 << 16);
      if (resp.ok() && (resp->status == 200 || resp->status == 401)) return r;
      int st;
      if (::waitpid(r->pid_, &st, WNOHANG) == r->pid_) {
        r->pid_ = -1;
        exited = true;
        *error = "docker-registry exited: " + read_file(log);
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        *error = "docker-registry did not answer /v2/ within 30 s: " + read_file(log);
        return nullptr;  // the destructor kills it
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval, not a readiness guess
    }
    if (!exited) break;
  }
  return nullptr;
}

LocalRegistry::~LocalRegistry() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int st;
    ::waitpid(pid_, &st, 0);
  }
}

void LocalRegistry::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
}

std::string LocalRegistry::blob_data_path(const std::string& digest) const {
  std::string hex = digest.substr(7);
  return storage_ + "/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
}

std::string LocalRegistry::push(const std::string& layout, const std::string& tag, const std::string& name,
                                std::string* error, const std::vector<std::string>& extra_args) const {
  std::string digest_file = layout + ".digest";
  std::vector<std::string> argv = {"skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
                                   "--digestfile", digest_file};
  if (!opts_.user.empty()) {
    argv.push_back("--dest-creds");
    argv.push_back(opts_.user + ":" + opts_.password);
  }
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  argv.push_back("oci:" + layout + ":" + tag);
  argv.push_back("docker://" + host_ + "/" + name + ":" + tag);
  std::string out;
  if (run(argv, &out) != 0) {
    *error = "skopeo copy failed: " + out;
    return {};
  }
  return read_file(digest_file);
}

}  // namespace kiln::rootfs::testing
