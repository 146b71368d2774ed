#include "image/curl_library.hpp"

#include <mutex>
#include <string>

#include "core/dl_library.hpp"

namespace forker::image {

Result<const CurlApi*> curl_api() {
  static CurlApi api;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    // Never closed: handles may live until exit.
    void* lib = dl_open("libcurl.so.4", "libcurl4", error);
    if (!lib) return;
    bool ok = dl_symbol(lib, "curl_global_init", api.global_init, error) &&
              dl_symbol(lib, "curl_easy_init", api.easy_init, error) &&
              dl_symbol(lib, "curl_easy_cleanup", api.easy_cleanup, error) &&
              dl_symbol(lib, "curl_easy_reset", api.easy_reset, error) &&
              dl_symbol(lib, "curl_easy_setopt", api.easy_setopt, error) &&
              dl_symbol(lib, "curl_easy_getinfo", api.easy_getinfo, error) &&
              dl_symbol(lib, "curl_easy_perform", api.easy_perform, error) &&
              dl_symbol(lib, "curl_easy_strerror", api.easy_strerror, error) &&
              dl_symbol(lib, "curl_easy_escape", api.easy_escape, error) &&
              dl_symbol(lib, "curl_free", api.free, error) &&
              dl_symbol(lib, "curl_slist_append", api.slist_append, error) &&
              dl_symbol(lib, "curl_slist_free_all", api.slist_free_all, error) &&
              dl_symbol(lib, "curl_url", api.url, error) &&
              dl_symbol(lib, "curl_url_cleanup", api.url_cleanup, error) &&
              dl_symbol(lib, "curl_url_get", api.url_get, error) &&
              dl_symbol(lib, "curl_url_set", api.url_set, error);
    if (!ok) api = CurlApi{};
  });
  if (!error.empty()) return make_error("load libcurl.so.4:", error);
  return &api;
}

}  // namespace forker::image
