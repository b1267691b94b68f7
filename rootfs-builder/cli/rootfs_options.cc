// kiln-rootfs's flags (see rootfs_options.h) on the shared option parser.
#include "rootfs-builder/cli/rootfs_options.h"

#include <cstdlib>
#include <utility>

#include "common/cli/option_parser.h"

namespace kiln::rootfs {
namespace {

using cli::Value;

constexpr cli::Flag kFlags[] = {
    {"help", 'h'},
    {"output", 'o', Value::kRequired},
    {"cache-dir", 0, Value::kRequired},
    {"tls-verify", 0, Value::kOptional},
    {"creds", 0, Value::kRequired},
    {"authfile", 0, Value::kRequired},
    {"ca-file", 0, Value::kRequired},
    {"platform", 0, Value::kRequired},
    {"chunk-kib", 0, Value::kRequired},
    {"zstd-level", 0, Value::kRequired},
    {"push", 0},
    {"verify-chunks", 0},
};

Status apply_chunk(chunks::ChunkOptions& o, const cli::Arg& a) {
  if (a.is("chunk-kib")) {
    KILN_ASSIGN_OR_RETURN(uint64_t kib, cli::parse_number("--chunk-kib", a.value, chunks::kMaxChunkSize / 1024));
    o.chunk_size = static_cast<uint32_t>(kib * 1024);
    if (!chunks::valid_chunk_size(o.chunk_size)) return make_error("--chunk-kib: want a power of two in [4, 16384]");
  } else if (a.is("zstd-level")) {
    KILN_ASSIGN_OR_RETURN(uint64_t level, cli::parse_number("--zstd-level", a.value, 19));
    if (level == 0) return make_error("--zstd-level: want 1..19");
    o.zstd_level = static_cast<int>(level);
  }
  return ok_status();
}

Status apply(BuildRequest& req, const cli::Arg& a) {
  if (a.is("output")) {
    req.output_path = a.value;
  } else if (a.is("cache-dir")) {
    req.cache_dir = a.value;
  } else if (a.is("tls-verify")) {
    if (a.has_value && a.value != "true" && a.value != "false") {
      return make_error("--tls-verify: want true or false, got '" + a.value + "'");
    }
    req.tls_verify = !a.has_value || a.value == "true";
  } else if (a.is("creds")) {
    req.credentials = a.value;
  } else if (a.is("authfile")) {
    req.auth_file = a.value;
  } else if (a.is("ca-file")) {
    req.ca_file = a.value;
  } else if (a.is("platform")) {
    const std::size_t slash = a.value.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == a.value.size()) {
      return make_error("--platform wants OS/ARCH, e.g. linux/amd64");
    }
    req.os = a.value.substr(0, slash);
    req.architecture = a.value.substr(slash + 1);
  }
  return ok_status();
}

}  // namespace

Result<RootfsCommand> parse_rootfs_args(const std::vector<std::string>& args, const std::string& cache_dir) {
  KILN_ASSIGN_OR_RETURN(cli::ParsedArgs parsed, cli::parse(kFlags, args));
  RootfsCommand c;
  c.request.cache_dir = cache_dir;
  std::vector<std::string> positionals;
  std::string chunk_flag, image_flag;  // one of each kind seen, to refuse it on the other command
  bool push = false;
  for (const cli::Arg& a : parsed.args) {
    if (a.is("help")) return RootfsCommand{};
    if (a.flag == nullptr) {
      positionals.push_back(a.value);
    } else {
      if (a.is("push")) {
        push = true;
        continue;
      }
      if (a.is("verify-chunks")) {
        c.verify_chunks = true;
        continue;
      }
      (a.is("chunk-kib") || a.is("zstd-level") ? chunk_flag : image_flag) = "--" + std::string(a.flag->name);
      KILN_TRY(apply(c.request, a));
      KILN_TRY(apply_chunk(c.chunk.options, a));
    }
  }
  positionals.insert(positionals.end(), parsed.rest.begin(), parsed.rest.end());
  if (positionals.empty()) return make_error("missing command (build, inspect, chunk, convert or lazy-info)");
  const std::string& command = positionals[0];
  if (command == "build") {
    c.action = RootfsAction::kBuild;
  } else if (command == "inspect") {
    c.action = RootfsAction::kInspect;
  } else if (command == "convert") {
    c.action = RootfsAction::kConvert;
  } else if (command == "lazy-info") {
    c.action = RootfsAction::kLazyInfo;
  } else if (command == "chunk") {
    if (positionals.size() != 3) return make_error("chunk needs IMAGE and OUT_DIR");
    if (!image_flag.empty()) return make_error(image_flag + " does not apply to chunk");
    if (push) return make_error("--push applies to convert only");
    if (c.verify_chunks) return make_error("--verify-chunks applies to lazy-info only");
    c.action = RootfsAction::kChunk;
    c.chunk.image_path = positionals[1];
    c.chunk.out_dir = positionals[2];
    return c;
  } else {
    return make_error("unknown command " + command + " (build, inspect, chunk, convert or lazy-info)");
  }
  if (!chunk_flag.empty() && c.action != RootfsAction::kConvert) {
    return make_error(chunk_flag + " applies to chunk and convert only");
  }
  if (push && c.action != RootfsAction::kConvert) return make_error("--push applies to convert only");
  if (c.verify_chunks && c.action != RootfsAction::kLazyInfo) {
    return make_error("--verify-chunks applies to lazy-info only");
  }
  if (positionals.size() < 2) return make_error(command + " needs an image REF");
  if (positionals.size() > 2) return make_error("unexpected argument " + positionals[2]);
  c.request.reference = positionals[1];
  if (c.action == RootfsAction::kBuild && c.request.output_path.empty()) return make_error("build needs -o OUT");
  if (c.action == RootfsAction::kConvert) {
    if (c.request.output_path.empty() && !push) return make_error("convert needs -o OUT_DIR or --push");
    c.convert.out_dir = std::exchange(c.request.output_path, {});
    c.convert.build = c.request;
    c.convert.chunking = c.chunk.options;
    c.convert.push = push;
  }
  if (c.action == RootfsAction::kLazyInfo && !c.request.output_path.empty()) {
    return make_error("-o does not apply to lazy-info");
  }
  return c;
}

std::string default_cache_dir() {
  if (const char* c = std::getenv("KILN_CACHE_DIR")) return std::string(c) + "/rootfs";
  if (const char* x = std::getenv("XDG_CACHE_HOME")) return std::string(x) + "/kiln/rootfs";
  if (const char* h = std::getenv("HOME")) return std::string(h) + "/.cache/kiln/rootfs";
  return "/var/cache/kiln/rootfs";
}

std::string rootfs_usage() {
  return "usage: kiln-rootfs build REF -o OUT [options]\n"
         "       kiln-rootfs inspect REF [options]\n"
         "       kiln-rootfs chunk IMAGE OUT_DIR [--chunk-kib N] [--zstd-level N]\n"
         "       kiln-rootfs convert REF [--push] [-o OUT_DIR] [--chunk-kib N] [--zstd-level N] [options]\n"
         "       kiln-rootfs lazy-info REF [--verify-chunks] [options]   (exit 1: no chunked artifact)\n"
         "REF: [docker://]host[:port]/name[:tag|@sha256:...] | oci:DIR[:TAG] |\n"
         "     oci-archive:FILE[:TAG] | docker-archive:FILE[:TAG]\n"
         "options: --cache-dir DIR   (default $KILN_CACHE_DIR or ~/.cache/kiln/rootfs)\n"
         "         --tls-verify=false  allow plain HTTP and unverified certificates\n"
         "         --creds USER:PASS | --authfile FILE | --ca-file PEM\n"
         "         --platform OS/ARCH  (default linux/amd64)\n"
         "         --chunk-kib N     chunk, convert: chunk size in KiB, a power of two (default 512)\n"
         "         --zstd-level N    chunk, convert: zstd level 1..19 (default 3)\n"
         "         --push            convert: publish the chunks as the image's artifact in REF's repository\n"
         "         --verify-chunks   lazy-info: read every stored chunk with Range requests and verify it\n"
         "         -h, --help        print this text\n";
}

}  // namespace kiln::rootfs
