#include "net/nftables.hpp"

#include <nftables/libnftables.h>

#include <memory>
#include <mutex>

#include "core/dl_library.hpp"

namespace forker::net {

namespace {

struct NftApi {
  decltype(&::nft_ctx_new) ctx_new;
  decltype(&::nft_ctx_free) ctx_free;
  decltype(&::nft_ctx_buffer_output) ctx_buffer_output;
  decltype(&::nft_ctx_buffer_error) ctx_buffer_error;
  decltype(&::nft_ctx_get_error_buffer) ctx_get_error_buffer;
  decltype(&::nft_run_cmd_from_buffer) run_cmd_from_buffer;
};

// libnftables.so.1's entry points, loaded once (thread-safe).
Result<const NftApi*> nft_api() {
  static NftApi api;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    // Never closed: later rule changes in the same process reuse it.
    void* lib = dl_open("libnftables.so.1", "libnftables1", error);
    if (!lib) return;
    bool ok = dl_symbol(lib, "nft_ctx_new", api.ctx_new, error) &&
              dl_symbol(lib, "nft_ctx_free", api.ctx_free, error) &&
              dl_symbol(lib, "nft_ctx_buffer_output", api.ctx_buffer_output, error) &&
              dl_symbol(lib, "nft_ctx_buffer_error", api.ctx_buffer_error, error) &&
              dl_symbol(lib, "nft_ctx_get_error_buffer", api.ctx_get_error_buffer, error) &&
              dl_symbol(lib, "nft_run_cmd_from_buffer", api.run_cmd_from_buffer, error);
    if (!ok) api = NftApi{};
  });
  if (!error.empty()) return make_error("nftables: load libnftables.so.1:", error);
  return &api;
}

// Runs SCRIPT; a failure reads "nftables: OP: <libnftables' errors>".
Status run_script(const std::string& script, std::string_view op) {
  const NftApi* api = FORKER_TRY(nft_api());
  auto free_ctx = [api](nft_ctx* c) { api->ctx_free(c); };
  std::unique_ptr<nft_ctx, decltype(free_ctx)> ctx(api->ctx_new(NFT_CTX_DEFAULT), free_ctx);
  if (!ctx) return make_error("nftables: " + std::string(op) + ":", "nft_ctx_new failed");
  // Buffered, so nothing reaches our stdout/stderr; the library never prints.
  if (api->ctx_buffer_output(ctx.get()) != 0 || api->ctx_buffer_error(ctx.get()) != 0)
    return make_error("nftables: " + std::string(op) + ":", "cannot buffer libnftables output");
  if (api->run_cmd_from_buffer(ctx.get(), script.c_str()) == 0) return ok();
  const char* text = api->ctx_get_error_buffer(ctx.get());
  return make_error("nftables: " + std::string(op) + ":", summarize_nft_error(text ? text : ""));
}

}  // namespace

Status apply_nft_script(const std::string& script) { return run_script(script, "apply ruleset"); }

Status delete_forker_table(std::string_view table) {
  return run_script(render_delete_table(table), "delete table inet " + std::string(table));
}

}  // namespace forker::net
