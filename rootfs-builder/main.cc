// kiln-rootfs: build an ext4 rootfs image from an OCI image reference, or inspect one.
//   kiln-rootfs build REF -o OUT [--cache-dir D] [--tls-verify=false] [--creds U:P]
//                                [--authfile F] [--ca-file F] [--platform OS/ARCH]
//   kiln-rootfs inspect REF [same options]
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "rootfs-builder/builder/builder.h"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: kiln-rootfs build REF -o OUT [options]\n"
               "       kiln-rootfs inspect REF [options]\n"
               "REF: [docker://]host[:port]/name[:tag|@sha256:...] | oci:DIR[:TAG] |\n"
               "     oci-archive:FILE[:TAG] | docker-archive:FILE[:TAG]\n"
               "options: --cache-dir DIR   (default $KILN_CACHE_DIR or ~/.cache/kiln/rootfs)\n"
               "         --tls-verify=false  allow plain HTTP and unverified certificates\n"
               "         --creds USER:PASS | --authfile FILE | --ca-file PEM\n"
               "         --platform OS/ARCH  (default linux/amd64)\n");
}

std::string default_cache_dir() {
  if (const char* c = std::getenv("KILN_CACHE_DIR")) return std::string(c) + "/rootfs";
  if (const char* x = std::getenv("XDG_CACHE_HOME")) return std::string(x) + "/kiln/rootfs";
  if (const char* h = std::getenv("HOME")) return std::string(h) + "/.cache/kiln/rootfs";
  return "/var/cache/kiln/rootfs";
}

std::string human(uint64_t n) {
  char buf[32];
  if (n >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.1f GiB", n / double(1ull << 30));
  else if (n >= (1 << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", n / double(1 << 20));
  else std::snprintf(buf, sizeof buf, "%.1f KiB", n / 1024.0);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    usage();
    return 2;
  }
  std::string cmd = argv[1];
  kiln::rootfs::BuildRequest req;
  req.reference = argv[2];
  req.cache_dir = default_cache_dir();
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kiln-rootfs: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-o" || a == "--output") req.output_path = value("-o");
    else if (a == "--cache-dir") req.cache_dir = value("--cache-dir");
    else if (a == "--tls-verify=false") req.tls_verify = false;
    else if (a == "--tls-verify=true" || a == "--tls-verify") req.tls_verify = true;
    else if (a == "--creds") req.credentials = value("--creds");
    else if (a == "--authfile") req.auth_file = value("--authfile");
    else if (a == "--ca-file") req.ca_file = value("--ca-file");
    else if (a == "--platform") {
      std::string p = value("--platform");
      size_t slash = p.find('/');
      if (slash == std::string::npos || slash == 0 || slash + 1 == p.size()) {
        std::fprintf(stderr, "kiln-rootfs: --platform wants OS/ARCH, e.g. linux/amd64\n");
        return 2;
      }
      req.os = p.substr(0, slash);
      req.architecture = p.substr(slash + 1);
    }
    else {
      std::fprintf(stderr, "kiln-rootfs: unknown option %s\n", a.c_str());
      usage();
      return 2;
    }
  }
  if (cmd == "inspect") {
    auto r = kiln::rootfs::inspect(req);
    if (!r.ok()) {
      std::fprintf(stderr, "kiln-rootfs: %s\n", r.error().message.c_str());
      return 1;
    }
    std::fputs(kiln::rootfs::inspect_json(*r).c_str(), stdout);
    return 0;
  }
  if (cmd != "build") {
    usage();
    return 2;
  }
  if (req.output_path.empty()) {
    std::fprintf(stderr, "kiln-rootfs: build needs -o OUT\n");
    return 2;
  }
  bool tty = ::isatty(STDERR_FILENO) == 1;
  std::string last_stage;
  auto progress = [&](const kiln::rootfs::Progress& p) {
    if (!tty) return;
    std::string line = p.stage;
    if (p.total > 0 && p.stage != "done") {
      line += " " + human(p.done) + " / " + human(p.total) + " (" +
              std::to_string(p.done * 100 / p.total) + "%)";
    } else if (!p.detail.empty()) {
      line += " " + p.detail;
    }
    if (line.size() > 100) line.resize(100);
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    if (p.stage == "done") std::fputc('\n', stderr);
  };
  auto r = kiln::rootfs::build(req, progress);
  if (!r.ok()) {
    if (tty) std::fputc('\n', stderr);
    std::fprintf(stderr, "kiln-rootfs: %s\n", r.error().message.c_str());
    return 1;
  }
  std::printf("%s %s%s\n", r->manifest_digest.str().c_str(), req.output_path.c_str(),
              r->cache_hit ? " (cached)" : "");
  return 0;
}
