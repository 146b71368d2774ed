#include "image/http.hpp"

#include <curl/curl.h>
#include <strings.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "core/strings.hpp"
#include "image/curl_library.hpp"

namespace forker::image::http {
namespace {

constexpr size_t kMaxErrorBody = 64u << 10;

// Loaded by Session::create, the only way to a request; the URL helpers below are only used
// by code that made a Session first.
const CurlApi& lib() {
  static const CurlApi none{};
  auto api = curl_api();
  return api ? **api : none;
}

struct SlistDeleter {
  void operator()(curl_slist* l) const { lib().slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

struct UrlDeleter {
  void operator()(CURLU* u) const { lib().url_cleanup(u); }
};
using Url = std::unique_ptr<CURLU, UrlDeleter>;

std::string url_part(const std::string& url, CURLUPart part, unsigned flags = 0) {
  if (!curl_api()) return {};
  Url u(lib().url());
  if (!u || lib().url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return {};
  char* out = nullptr;
  if (lib().url_get(u.get(), part, &out, flags) != CURLUE_OK) return {};
  std::string s(out);
  lib().free(out);
  return s;
}

// trim() plus '\r': header lines end in CRLF.
std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// State of one exchange, shared with curl's callbacks.
struct Exchange {
  const Request* request = nullptr;
  Response* response = nullptr;
  CURL* easy = nullptr;
  bool checked_status = false;
  bool streaming = false;
  std::string abort_reason;  // why a callback stopped the transfer
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* x = static_cast<Exchange*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    // A new response (after 100 Continue, say): forget the previous one's headers.
    x->response->headers.clear();
    auto parts = split(trim_ows(line), ' ');
    x->response->reason.clear();
    for (size_t i = 2; i < parts.size(); ++i) x->response->reason += (i > 2 ? " " : "") + parts[i];
    return size * count;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * count;
  std::string name(trim_ows(line.substr(0, colon)));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  x->response->headers[name] = std::string(trim_ows(line.substr(colon + 1)));
  return size * count;
}

size_t on_write(char* data, size_t size, size_t count, void* user) {
  auto* x = static_cast<Exchange*>(user);
  size_t len = size * count;
  if (!x->checked_status) {
    lib().easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->response->status);
    x->checked_status = true;
    x->streaming = x->request->on_body && x->response->status / 100 == 2;
    if (x->streaming && x->request->on_start &&
        !x->request->on_start(x->response->status, x->response->headers)) {
      x->abort_reason = "stopped by the receiver";
      return 0;
    }
  }
  if (x->streaming) {
    if (!x->request->on_body(data, len)) {
      x->abort_reason = "stopped by the receiver";
      return 0;
    }
    return len;
  }
  std::string& body = x->response->body;
  if (x->response->status / 100 == 2) {
    if (body.size() + len > x->request->max_body) {
      x->abort_reason = "response larger than " + std::to_string(x->request->max_body) + " bytes";
      return 0;
    }
    body.append(data, len);
  } else if (body.size() < kMaxErrorBody) {
    body.append(data, std::min(len, kMaxErrorBody - body.size()));
  }
  return len;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* x = static_cast<Exchange*>(user);
  if (x->request->cancel && x->request->cancel->load()) {
    x->abort_reason = "cancelled";
    return 1;
  }
  return 0;
}

TransportError classify(CURLcode code) {
  TransportError e;
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      e.transient = true;
      break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
      e.tls = true;
      break;
    default:
      break;
  }
  return e;
}

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

struct Session::Handle {
  CURL* easy = nullptr;
  char errbuf[CURL_ERROR_SIZE] = {};
  ~Handle() {
    if (easy) lib().easy_cleanup(easy);
  }
};

Session::Session(std::unique_ptr<Handle> h) : handle_(std::move(h)) {}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

Result<Session> Session::create() {
  FORKER_TRY(curl_api());
  // curl_global_init is not thread-safe: run it once, before any thread makes a handle.
  static std::once_flag once;
  static CURLcode init = CURLE_OK;
  std::call_once(once, [] { init = lib().global_init(CURL_GLOBAL_DEFAULT); });
  if (init != CURLE_OK) return make_error("curl_global_init:", lib().easy_strerror(init));
  auto h = std::make_unique<Handle>();
  h->easy = lib().easy_init();
  if (!h->easy) return make_error("curl_easy_init", "");
  return Session(std::move(h));
}

Result<Response> Session::exchange(const Request& request, const std::string& url,
                                   const std::vector<std::string>& headers) {
  CURL* easy = handle_->easy;
  lib().easy_reset(easy);  // keeps the connection cache
  Response response;
  Exchange x{&request, &response, easy};
  Slist list;
  for (const auto& h : headers) {
    curl_slist* next = lib().slist_append(list.get(), h.c_str());
    if (!next) return make_error("curl_slist_append", h);
    (void)list.release();
    list.reset(next);
  }
  handle_->errbuf[0] = '\0';
  lib().easy_setopt(easy, CURLOPT_URL, url.c_str());
  lib().easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  lib().easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  lib().easy_setopt(easy, CURLOPT_ERRORBUFFER, handle_->errbuf);
  lib().easy_setopt(easy, CURLOPT_HTTPHEADER, list.get());
  if (!request.user_agent.empty()) lib().easy_setopt(easy, CURLOPT_USERAGENT, request.user_agent.c_str());
  if (request.method == "HEAD") lib().easy_setopt(easy, CURLOPT_NOBODY, 1L);
  lib().easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer (under 1 byte/s for a minute) fails and is retried, instead of hanging.
  lib().easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  lib().easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, 60L);
  if (!request.verify_tls) {
    lib().easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
    lib().easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  lib().easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
  lib().easy_setopt(easy, CURLOPT_HEADERDATA, &x);
  lib().easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
  lib().easy_setopt(easy, CURLOPT_WRITEDATA, &x);
  lib().easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
  lib().easy_setopt(easy, CURLOPT_XFERINFODATA, &x);
  lib().easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);

  CURLcode rc = lib().easy_perform(easy);
  last_error_ = classify(rc);
  if (rc != CURLE_OK) {
    std::string text = !x.abort_reason.empty() ? x.abort_reason
                       : handle_->errbuf[0]    ? std::string(handle_->errbuf)
                                               : lib().easy_strerror(rc);
    last_error_.cancelled = x.abort_reason == "cancelled";
    return make_error(request.method, url + ": " + text);
  }
  lib().easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
  // A 2xx with an empty body never reached on_write: still tell the receiver it started.
  if (!x.checked_status && request.on_body && response.status / 100 == 2 && request.on_start &&
      !request.on_start(response.status, response.headers)) {
    return make_error(request.method, url + ": stopped by the receiver");
  }
  response.url = url;
  return response;
}

Result<Response> Session::perform(const Request& request) {
  std::string url = request.url;
  std::vector<std::string> headers = request.headers;
  for (int hops = 0;; ++hops) {
    Response r = FORKER_TRY(exchange(request, url, headers));
    std::string location = r.header("location");
    if (!is_redirect(r.status) || location.empty() || hops >= request.max_redirects) return r;
    std::string next = FORKER_TRY(resolve_url(url, location));
    if (url_scheme(next) == "http" && url_scheme(url) == "https" && !request.allow_http_redirect)
      return make_error(request.method, url + ": refusing redirect from https to " + next);
    // Blob storage lives elsewhere (S3, a CDN): the registry's credentials must not follow.
    if (url_origin(next) != url_origin(url)) {
      std::erase_if(headers, [](const std::string& h) {
        return h.size() >= 14 && strncasecmp(h.c_str(), "authorization:", 14) == 0;
      });
    }
    url = std::move(next);
  }
}

Result<std::string> resolve_url(const std::string& base, const std::string& location) {
  FORKER_TRY(curl_api());
  Url u(lib().url());
  if (!u || lib().url_set(u.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK ||
      lib().url_set(u.get(), CURLUPART_URL, location.c_str(), 0) != CURLUE_OK)
    return make_error("resolve redirect", location + " against " + base);
  char* out = nullptr;
  if (lib().url_get(u.get(), CURLUPART_URL, &out, 0) != CURLUE_OK)
    return make_error("resolve redirect", location + " against " + base);
  std::string s(out);
  lib().free(out);
  return s;
}

std::string url_scheme(const std::string& url) { return url_part(url, CURLUPART_SCHEME); }

std::string url_origin(const std::string& url) {
  std::string scheme = url_part(url, CURLUPART_SCHEME);
  std::string host = url_part(url, CURLUPART_HOST);
  std::string port = url_part(url, CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if (scheme.empty() || host.empty()) return {};
  return scheme + "://" + host + ":" + port;
}

std::string escape(std::string_view value) {
  if (!curl_api()) return {};
  char* e = lib().easy_escape(nullptr, value.data(), static_cast<int>(value.size()));
  if (!e) return {};
  std::string s(e);
  lib().free(e);
  return s;
}

std::string describe_status(const Response& response) {
  std::string out = "HTTP " + std::to_string(response.status);
  if (!response.reason.empty()) out += " " + response.reason;
  std::vector<std::string> errors;
  try {
    auto doc = nlohmann::json::parse(response.body);
    if (doc.is_object() && doc.contains("errors") && doc["errors"].is_array()) {
      for (const auto& e : doc["errors"]) {
        if (!e.is_object()) continue;
        std::string code = e.value("code", std::string());
        std::string message = e.value("message", std::string());
        errors.push_back(code.empty() ? message : message.empty() ? code : code + ": " + message);
      }
    }
  } catch (const nlohmann::json::exception&) {
    // Not the registry's JSON (a proxy's HTML page): the status says enough.
  }
  if (!errors.empty()) out += " (" + join(errors, "; ") + ")";
  return out;
}

bool is_transient_status(long status) {
  return status >= 500 || status == 429 || status == 408;
}

}  // namespace forker::image::http
