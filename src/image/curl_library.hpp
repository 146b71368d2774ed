// libcurl, loaded with dlopen the first time a command talks to a registry. Linked normally it
// would be mapped and relocated, with its ~25 dependencies, at the start of every `forker`
// command (~4.5 ms and ~450 page faults here), `run` included, which never uses it.
#pragma once

#include <curl/curl.h>

#include "core/error.hpp"

namespace forker::image {

struct CurlApi {
  decltype(&::curl_global_init) global_init;
  decltype(&::curl_easy_init) easy_init;
  decltype(&::curl_easy_cleanup) easy_cleanup;
  decltype(&::curl_easy_reset) easy_reset;
  decltype(&::curl_easy_setopt) easy_setopt;
  decltype(&::curl_easy_getinfo) easy_getinfo;
  decltype(&::curl_easy_perform) easy_perform;
  decltype(&::curl_easy_strerror) easy_strerror;
  decltype(&::curl_easy_escape) easy_escape;
  decltype(&::curl_free) free;
  decltype(&::curl_slist_append) slist_append;
  decltype(&::curl_slist_free_all) slist_free_all;
  decltype(&::curl_url) url;
  decltype(&::curl_url_cleanup) url_cleanup;
  decltype(&::curl_url_get) url_get;
  decltype(&::curl_url_set) url_set;
};

// libcurl.so.4's entry points, loaded once (thread-safe). The error names the library and what
// dlopen/dlsym said (the package to install is libcurl4).
Result<const CurlApi*> curl_api();

}  // namespace forker::image
