// A thin libcurl layer for the registry client: one exchange per call on a reusable easy
// handle, redirects followed by hand (so credentials never go to another host and https never
// drops to http unless allowed), bodies streamed to a callback or kept in memory.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace forker::image::http {

using Headers = std::map<std::string, std::string>;  // names in lower case

struct Request {
  std::string method = "GET";  // GET or HEAD
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string user_agent;
  bool verify_tls = true;          // false only for registries listed as insecure
  int max_redirects = 0;           // 0: a 3xx is returned as is
  bool allow_http_redirect = false;  // may a redirect go from https to http?
  size_t max_body = 4u << 20;      // in-memory bodies above this abort the transfer
  // When set, the body of a 2xx answer goes here instead of Response::body; on_start runs
  // first with the status and headers. Either returning false aborts the transfer.
  std::function<bool(long status, const Headers& headers)> on_start;
  std::function<bool(const char* data, size_t size)> on_body;
  const std::atomic<bool>* cancel = nullptr;  // set by another thread: abort soon
};

struct Response {
  long status = 0;
  std::string reason;  // "Not Found"
  Headers headers;
  std::string body;    // error bodies always (first 64 KiB), 2xx bodies unless on_body is set
  std::string url;     // after redirects
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Transport failures that a retry may cure (connection refused or reset, timeouts, stalls).
struct TransportError {
  bool transient = false;
  bool tls = false;        // TLS handshake or verification failed (insecure fallback to http)
  bool cancelled = false;  // Request::cancel was set
};

class Session {
 public:
  static Result<Session> create();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();

  // One request, following up to max_redirects. A transport failure is an Error naming the
  // method, URL and curl's text; last_transport_error() classifies it. HTTP errors are not
  // Errors: the caller reads Response::status.
  Result<Response> perform(const Request& request);
  const TransportError& last_transport_error() const { return last_error_; }

 private:
  struct Handle;
  explicit Session(std::unique_ptr<Handle> h);
  Result<Response> exchange(const Request& request, const std::string& url,
                            const std::vector<std::string>& headers);
  std::unique_ptr<Handle> handle_;
  TransportError last_error_;
};

// Resolves LOCATION (absolute or relative) against BASE.
Result<std::string> resolve_url(const std::string& base, const std::string& location);
// "https://host:443": scheme, host and port (the default one when not written); empty when
// URL does not parse. Two URLs with one origin may share credentials.
std::string url_origin(const std::string& url);
std::string url_scheme(const std::string& url);
// Percent-encodes a query value.
std::string escape(std::string_view value);

// "HTTP 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)": the status and the registry's
// {"errors":[{"code":..,"message":..}]} when the body has them.
std::string describe_status(const Response& response);
// 5xx, 429 and 408: worth retrying.
bool is_transient_status(long status);

}  // namespace forker::image::http
