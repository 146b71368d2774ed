#include "image/curl_library.hpp"

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace forker::image {

namespace {

template <typename F>
bool load(void* lib, const char* name, F& out, std::string& error) {
  void* sym = dlsym(lib, name);
  if (!sym) {
    error = std::string("dlsym ") + name + ": " + dlerror();
    return false;
  }
  out = reinterpret_cast<F>(sym);
  return true;
}

}  // namespace

Result<const CurlApi*> curl_api() {
  static CurlApi api;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    // Never closed: handles may live until exit.
    void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      error = std::string("dlopen: ") + dlerror() + " (install the libcurl4 package)";
      return;
    }
    bool ok = load(lib, "curl_global_init", api.global_init, error) &&
              load(lib, "curl_easy_init", api.easy_init, error) &&
              load(lib, "curl_easy_cleanup", api.easy_cleanup, error) &&
              load(lib, "curl_easy_reset", api.easy_reset, error) &&
              load(lib, "curl_easy_setopt", api.easy_setopt, error) &&
              load(lib, "curl_easy_getinfo", api.easy_getinfo, error) &&
              load(lib, "curl_easy_perform", api.easy_perform, error) &&
              load(lib, "curl_easy_strerror", api.easy_strerror, error) &&
              load(lib, "curl_easy_escape", api.easy_escape, error) &&
              load(lib, "curl_free", api.free, error) &&
              load(lib, "curl_slist_append", api.slist_append, error) &&
              load(lib, "curl_slist_free_all", api.slist_free_all, error) &&
              load(lib, "curl_url", api.url, error) &&
              load(lib, "curl_url_cleanup", api.url_cleanup, error) &&
              load(lib, "curl_url_get", api.url_get, error) &&
              load(lib, "curl_url_set", api.url_set, error);
    if (!ok) api = CurlApi{};
  });
  if (!error.empty()) return make_error("load libcurl.so.4:", error);
  return &api;
}

}  // namespace forker::image
