// The RAII nft context and the two calls kilnd makes through it.
#include "src/net/nftables.h"

#include <nftables/libnftables.h>

#include <memory>

namespace kiln::net::nft {
namespace {

struct ContextDeleter {
  void operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }
};
using Context = std::unique_ptr<nft_ctx, ContextDeleter>;

// A context whose output and errors go to buffers (nft would print them on stdout/stderr).
Result<Context> open_context() {
  Context ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) return make_error("nft: cannot create a context");
  if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0) {
    return make_error("nft: cannot buffer output");
  }
  return ctx;
}

std::string text_of(const char* buffer) { return buffer ? std::string(buffer) : std::string(); }

// nft's error text, trimmed, or a fallback when it said nothing.
Error run_error(nft_ctx* ctx, std::string_view what) {
  std::string text = text_of(nft_ctx_get_error_buffer(ctx));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return make_error("nft " + std::string(what) + ": " + (text.empty() ? std::string("failed") : text));
}

Result<std::string> run(std::string_view commands, std::string_view what) {
  KILN_ASSIGN_OR_RETURN(Context ctx, open_context());
  std::string buffer(commands);  // nft wants a C string
  if (buffer.find('\0') != std::string::npos) return make_error("nft " + std::string(what) + ": NUL in ruleset");
  if (nft_run_cmd_from_buffer(ctx.get(), buffer.c_str()) != 0) return run_error(ctx.get(), what);
  return text_of(nft_ctx_get_output_buffer(ctx.get()));
}

}  // namespace

Status apply(std::string_view ruleset) {
  KILN_TRY(run(ruleset, "apply"));
  return {};
}

Result<std::string> list_ruleset() { return run("list ruleset", "list ruleset"); }

}  // namespace kiln::net::nft
