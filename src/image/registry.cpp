#include "image/registry.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/strings.hpp"
#include "core/unique_fd.hpp"
#include "image/http.hpp"

namespace forker::image {
namespace {

const std::string kManifestAccept =
    "Accept: " + std::string(kMediaOciIndex) + ", " + std::string(kMediaOciManifest) + ", " +
    std::string(kMediaDockerManifestList) + ", " + std::string(kMediaDockerManifest);
constexpr int kMaxRedirects = 5;

// Which registry and repository a request is for: the unit of credentials and token scope.
struct Target {
  std::string registry;
  std::string repository;  // empty for the /v2/ ping
  std::string scope() const { return repository.empty() ? "" : "repository:" + repository + ":pull"; }
};

std::string api_host(std::string_view registry) {
  return registry == kDockerHub ? "registry-1.docker.io" : std::string(registry);
}

// Exponential backoff (250 ms doubling, at most 8 s), or the server's Retry-After (at most 30 s);
// wakes early when CANCEL is set.
void backoff(int attempt, const http::Response* r, const std::atomic<bool>* cancel) {
  auto delay = std::chrono::milliseconds(std::min(8000, 250 << std::min(attempt, 5)));
  if (r) {
    if (auto s = parse_uint(r->header("retry-after")))
      delay = std::chrono::milliseconds(std::min<uint64_t>(*s, 30) * 1000);
  }
  auto until = std::chrono::steady_clock::now() + delay;
  while (std::chrono::steady_clock::now() < until) {
    if (cancel && cancel->load()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status write_all_at(int fd, const char* data, size_t size, int64_t offset, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("write", path);
    data += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return ok();
}

// Hashes the first LENGTH bytes of FD (a partial download being resumed).
Status hash_prefix(int fd, int64_t length, Sha256& hash, const std::string& path) {
  char buf[1 << 16];
  int64_t done = 0;
  while (done < length) {
    size_t want = static_cast<size_t>(std::min<int64_t>(sizeof buf, length - done));
    ssize_t n = ::pread(fd, buf, want, done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("read", path);
    if (n == 0) return make_error("read", path + ": file shrank while resuming");
    hash.update(buf, static_cast<size_t>(n));
    done += n;
  }
  return ok();
}

}  // namespace

// Caches shared by all threads (base URLs, tokens, credentials) and the request engine.
struct RegistryClient::State {
  explicit State(const RegistryOptions& o) : options(o) {}
  const RegistryOptions& options;
  std::mutex mu;
  std::map<std::string, std::string> base_urls;  // registry -> "https://host"
  std::map<std::string, std::string> auth_scheme;  // registry -> "bearer" | "basic"
  std::map<std::string, std::string> tokens;       // registry + " " + scope -> token
  std::map<std::string, std::optional<Credentials>> credentials;  // registry/repository

  bool insecure(std::string_view registry) const {
    const auto& list = options.insecure_registries;
    return std::find(list.begin(), list.end(), registry) != list.end();
  }
  bool may_use_http(std::string_view registry) const {
    return is_loopback_registry(registry) || insecure(registry);
  }

  Result<std::optional<Credentials>> credentials_for(const Target& t);
  Result<std::string> base_url(http::Session& s, const std::string& registry);
  std::optional<std::string> authorization(const Target& t);
  Result<bool> answer_challenge(http::Session& s, const Target& t, const http::Response& r);
  Result<std::string> fetch_token(http::Session& s, const Target& t, const Challenge& c,
                                  const std::optional<Credentials>& creds);
  Result<http::Response> request(http::Session& s, const Target& t, const std::string& path,
                                 const std::function<void(http::Request&)>& prepare,
                                 const std::atomic<bool>* cancel = nullptr);
  Error status_error(const Target& t, const http::Response& r);

  struct Manifest {
    std::string bytes, media_type;
    Digest digest;
  };
  Result<Manifest> fetch_manifest(http::Session& s, const Reference& ref, const std::string& what,
                                  const std::optional<Digest>& expected);
  Status download(http::Session& s, const Reference& ref, const Descriptor& blob,
                  const std::string& dest_path, const std::atomic<bool>* cancel);
};

Result<std::optional<Credentials>> RegistryClient::State::credentials_for(const Target& t) {
  if (options.credentials) return options.credentials;
  std::string key = t.registry + "/" + t.repository;
  {
    std::lock_guard lock(mu);
    if (auto it = credentials.find(key); it != credentials.end()) return it->second;
  }
  auto found = FORKER_TRY(find_credentials(options.auth_files, t.registry, t.repository));
  std::lock_guard lock(mu);
  credentials[key] = found;
  return found;
}

Result<std::string> RegistryClient::State::base_url(http::Session& s, const std::string& registry) {
  {
    std::lock_guard lock(mu);
    if (auto it = base_urls.find(registry); it != base_urls.end()) return it->second;
  }
  std::string host = api_host(registry);
  std::string base = "https://" + host;
  if (is_loopback_registry(registry)) {
    base = "http://" + host;
  } else if (insecure(registry)) {
    // docker's order for insecure registries: TLS without verification, then plain HTTP.
    http::Request ping;
    ping.url = base + "/v2/";
    ping.user_agent = options.user_agent;
    ping.verify_tls = false;
    if (!s.perform(ping)) base = "http://" + host;
  }
  std::lock_guard lock(mu);
  base_urls[registry] = base;
  return base;
}

std::optional<std::string> RegistryClient::State::authorization(const Target& t) {
  std::string scheme;
  {
    std::lock_guard lock(mu);
    auto it = auth_scheme.find(t.registry);
    if (it == auth_scheme.end()) return std::nullopt;
    scheme = it->second;
    if (scheme == "bearer") {
      auto tok = tokens.find(t.registry + " " + t.scope());
      if (tok == tokens.end()) return std::nullopt;
      return "Bearer " + tok->second;
    }
  }
  auto creds = credentials_for(t);
  if (scheme == "basic" && creds && *creds) return basic_authorization(**creds);
  return std::nullopt;
}

Result<std::string> RegistryClient::State::fetch_token(http::Session& s, const Target& t,
                                                       const Challenge& c,
                                                       const std::optional<Credentials>& creds) {
  std::string realm = c.param("realm");
  if (realm.empty()) return make_error("bearer challenge from", t.registry + " has no realm");
  std::string scheme = http::url_scheme(realm);
  if (scheme != "https" && !(scheme == "http" && may_use_http(t.registry)))
    return make_error("refusing token realm", realm + " (only https, or http for an insecure registry)");
  std::string url = realm;
  char sep = realm.find('?') == std::string::npos ? '?' : '&';
  if (!c.param("service").empty()) {
    url += sep + std::string("service=") + http::escape(c.param("service"));
    sep = '&';
  }
  std::string scope = c.param("scope").empty() ? t.scope() : c.param("scope");
  if (!scope.empty()) url += sep + std::string("scope=") + http::escape(scope);

  for (int attempt = 0;; ++attempt) {
    http::Request req;
    req.url = url;
    req.user_agent = options.user_agent;
    req.max_redirects = kMaxRedirects;
    req.verify_tls = !insecure(t.registry);
    req.allow_http_redirect = may_use_http(t.registry);
    if (creds) req.headers.push_back("Authorization: " + basic_authorization(*creds));
    auto r = s.perform(req);
    if (!r) {
      if (s.last_transport_error().transient && attempt < options.retries) {
        backoff(attempt, nullptr, nullptr);
        continue;
      }
      return std::move(r.error().add_context("fetch token"));
    }
    if (http::is_transient_status(r->status) && attempt < options.retries) {
      backoff(attempt, &*r, nullptr);
      continue;
    }
    if (r->status != 200) return make_error("fetch token", url + ": " + http::describe_status(*r));
    try {
      auto doc = nlohmann::json::parse(r->body);
      for (const char* key : {"token", "access_token"}) {
        if (doc.contains(key) && doc[key].is_string() && !doc[key].get<std::string>().empty())
          return doc[key].get<std::string>();
      }
    } catch (const nlohmann::json::exception&) {
    }
    return make_error("fetch token", url + ": no token in the answer");
  }
}

Result<bool> RegistryClient::State::answer_challenge(http::Session& s, const Target& t,
                                                     const http::Response& r) {
  std::string header = r.header("www-authenticate");
  if (header.empty()) return false;
  auto challenges = FORKER_TRY(parse_challenges(header).context("401 from " + t.registry));
  auto creds = FORKER_TRY(credentials_for(t));
  for (const char* want : {"bearer", "basic"}) {
    for (const auto& c : challenges) {
      if (c.scheme != want) continue;
      if (c.scheme == "basic") {
        if (!creds) return false;
        std::lock_guard lock(mu);
        auth_scheme[t.registry] = "basic";
        return true;
      }
      std::string token = FORKER_TRY(fetch_token(s, t, c, creds));
      std::lock_guard lock(mu);
      auth_scheme[t.registry] = "bearer";
      tokens[t.registry + " " + t.scope()] = token;
      return true;
    }
  }
  return false;
}

Result<http::Response> RegistryClient::State::request(http::Session& s, const Target& t,
                                                      const std::string& path,
                                                      const std::function<void(http::Request&)>& prepare,
                                                      const std::atomic<bool>* cancel) {
  std::string base = FORKER_TRY(base_url(s, t.registry));
  bool challenge_answered = false;
  for (int attempt = 0;;) {
    http::Request req;
    req.url = base + path;
    req.user_agent = options.user_agent;
    req.verify_tls = !insecure(t.registry);
    req.allow_http_redirect = may_use_http(t.registry);
    req.max_redirects = kMaxRedirects;
    req.cancel = cancel;
    prepare(req);
    if (auto auth = authorization(t)) req.headers.push_back("Authorization: " + *auth);
    auto r = s.perform(req);
    if (!r) {
      if (s.last_transport_error().transient && attempt < options.retries) {
        backoff(attempt++, nullptr, cancel);
        continue;
      }
      return std::move(r).error();
    }
    if (r->status == 401 && !challenge_answered) {
      challenge_answered = true;
      if (FORKER_TRY(answer_challenge(s, t, *r))) continue;
      return r;
    }
    if (http::is_transient_status(r->status) && attempt < options.retries) {
      backoff(attempt++, &*r, cancel);
      continue;
    }
    return r;
  }
}

Error RegistryClient::State::status_error(const Target& t, const http::Response& r) {
  std::string text = r.url + ": " + http::describe_status(r);
  if (r.status == 401 || r.status == 403) {
    auto creds = credentials_for(t);
    if (creds && !*creds) {
      text += "; no credentials for " + t.registry;
      if (!options.auth_files.empty()) text += " in " + join(options.auth_files, ", ");
    }
  }
  return make_error("GET", text);
}

Result<RegistryClient::State::Manifest> RegistryClient::State::fetch_manifest(
    http::Session& s, const Reference& ref, const std::string& what, const std::optional<Digest>& expected) {
  Target t{ref.registry, ref.repository};
  auto r = FORKER_TRY(request(s, t, "/v2/" + ref.repository + "/manifests/" + what, [](http::Request& q) {
    q.headers.push_back(kManifestAccept);
    q.max_body = kMaxManifestSize;
  }));
  if (r.status == 404) {
    Reference shown = ref;
    if (what != ref.manifest_ref()) shown = ref.with_digest(FORKER_TRY(Digest::parse(what)));
    return make_error("manifest unknown:", shown.familiar());
  }
  if (r.status != 200) return status_error(t, r);
  Manifest m;
  m.digest = sha256_of(r.body);
  auto mismatch = [&](const std::string& claimed, std::string_view by) {
    return make_error("manifest digest mismatch:", r.url + " has " + m.digest.str() + ", " +
                                                       std::string(by) + " says " + claimed);
  };
  if (expected && *expected != m.digest) return mismatch(expected->str(), "the reference");
  if (std::string header = r.header("docker-content-digest"); header.starts_with("sha256:")) {
    if (header != m.digest.str()) return mismatch(header, "Docker-Content-Digest");
  }
  m.media_type = FORKER_TRY(manifest_media_type(r.body, r.header("content-type")).context(r.url));
  m.bytes = std::move(r.body);
  return m;
}

Status RegistryClient::State::download(http::Session& s, const Reference& ref, const Descriptor& blob,
                                       const std::string& dest_path, const std::atomic<bool>* cancel) {
  UniqueFd fd(::open(dest_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) return sys_error("open", dest_path);
  struct stat st{};
  if (::fstat(fd.get(), &st) < 0) return sys_error("stat", dest_path);
  Sha256 hash;
  int64_t offset = st.st_size;
  auto restart = [&]() -> Status {
    if (::ftruncate(fd.get(), 0) < 0) return sys_error("truncate", dest_path);
    hash = Sha256();
    offset = 0;
    return ok();
  };
  auto discard = [&](Error e) -> Error {
    fd.reset();
    ::unlink(dest_path.c_str());
    return e;
  };
  if (offset > blob.size) FORKER_TRY(restart());
  if (offset > 0) FORKER_TRY(hash_prefix(fd.get(), offset, hash, dest_path));
  if (offset == blob.size && blob.size > 0) {
    Sha256 copy = std::move(hash);
    if (copy.finish() == blob.digest) {
      if (::fsync(fd.get()) < 0) return sys_error("fsync", dest_path);
      if (options.progress) options.progress(blob.digest, offset, blob.size);
      return ok();
    }
    FORKER_TRY(restart());  // a complete-looking partial file with other content: start over
  }

  Target t{ref.registry, ref.repository};
  std::string path = "/v2/" + ref.repository + "/blobs/" + blob.digest.str();
  Status sink_error;
  bool sink_failed = false;
  auto fail = [&](Error e) {
    sink_error = std::move(e);
    sink_failed = true;
    return false;
  };
  for (int short_reads = 0;; ++short_reads) {
    auto r = request(s, t, path, [&](http::Request& q) {
      if (offset > 0) q.headers.push_back("Range: bytes=" + std::to_string(offset) + "-");
      q.on_start = [&](long status, const http::Headers& h) {
        if (status == 206) {
          auto cr = h.find("content-range");
          std::string want = "bytes " + std::to_string(offset) + "-";
          if (cr == h.end() || !cr->second.starts_with(want))
            return fail(make_error("GET", path + ": Content-Range does not start at " + std::to_string(offset)));
          return true;
        }
        if (offset > 0) {  // 200: the server ignored the Range; take the whole blob again
          if (auto st2 = restart(); !st2) return fail(std::move(st2).error());
        }
        return true;
      };
      q.on_body = [&](const char* data, size_t size) {
        if (offset + static_cast<int64_t>(size) > blob.size)
          return fail(make_error("blob " + blob.digest.str() + " is larger than its descriptor's",
                                 std::to_string(blob.size) + " bytes"));
        if (auto w = write_all_at(fd.get(), data, size, offset, dest_path); !w) return fail(std::move(w).error());
        hash.update(data, size);
        offset += static_cast<int64_t>(size);
        if (options.progress) options.progress(blob.digest, offset, blob.size);
        return true;
      };
    }, cancel);
    if (sink_failed) {
      bool bad_content = sink_error.error().op.starts_with("blob ");
      return bad_content ? discard(std::move(sink_error).error()) : std::move(sink_error).error();
    }
    if (!r) return std::move(r.error().add_context("fetch blob " + blob.digest.str()));
    if (r->status == 416 && offset > 0) {  // our partial file is past the blob's end
      FORKER_TRY(restart());
      continue;
    }
    if (r->status != 200 && r->status != 206)
      return std::move(status_error(t, *r).add_context("fetch blob " + blob.digest.str()));
    // A body that ended early without a transport error (no Content-Length): resume it.
    if (offset < blob.size && short_reads < options.retries) continue;
    break;
  }
  if (offset != blob.size)
    return discard(make_error("blob " + blob.digest.str() + " is short:", std::to_string(offset) +
                                                                             " of " + std::to_string(blob.size) + " bytes"));
  Digest got = hash.finish();
  if (got != blob.digest)
    return discard(make_error("digest mismatch for blob " + blob.digest.str() + ":",
                              "downloaded content has " + got.str() + " (" + dest_path + " removed)"));
  if (::fsync(fd.get()) < 0) return sys_error("fsync", dest_path);
  return ok();
}

RegistryClient::RegistryClient(RegistryOptions options)
    : options_(std::move(options)), state_(std::make_unique<State>(options_)) {}
RegistryClient::~RegistryClient() = default;

Result<ResolvedImage> RegistryClient::resolve(const Reference& ref, const Platform& platform) {
  auto session = FORKER_TRY(http::Session::create());
  std::string ctx = "resolve " + ref.familiar();
  auto top = FORKER_TRY_CTX(state_->fetch_manifest(session, ref, ref.manifest_ref(), ref.digest), ctx);
  ResolvedImage out;
  out.reference = ref;
  State::Manifest chosen = std::move(top);
  if (is_index_media_type(chosen.media_type)) {
    auto entries = FORKER_TRY_CTX(parse_image_index(chosen.bytes), ctx);
    auto entry = FORKER_TRY_CTX(select_platform(entries, platform), ctx);
    auto child = FORKER_TRY_CTX(
        state_->fetch_manifest(session, ref, entry.descriptor.digest.str(), entry.descriptor.digest), ctx);
    if (static_cast<int64_t>(child.bytes.size()) != entry.descriptor.size)
      return std::move(make_error("manifest size mismatch:", entry.descriptor.digest.str() + " is " +
                                                                 std::to_string(child.bytes.size()) + " bytes, the index says " +
                                                                 std::to_string(entry.descriptor.size))
                           .add_context(ctx));
    if (is_index_media_type(child.media_type))
      return std::move(make_error("unsupported manifest:", "nested index " + entry.descriptor.digest.str()).add_context(ctx));
    out.index = std::move(chosen.bytes);
    out.index_media_type = std::move(chosen.media_type);
    out.index_digest = chosen.digest;
    out.platform = entry.platform;
    chosen = std::move(child);
  }
  auto parsed = FORKER_TRY_CTX(parse_image_manifest(chosen.bytes), ctx);
  out.manifest = std::move(chosen.bytes);
  out.media_type = std::move(chosen.media_type);
  out.digest = chosen.digest;
  out.config = std::move(parsed.config);
  out.layers = std::move(parsed.layers);
  return out;
}

Result<std::string> RegistryClient::fetch_blob_bytes(const Reference& ref, const Descriptor& blob,
                                                     int64_t max_size) {
  std::string ctx = "fetch blob " + blob.digest.str();
  if (blob.size > max_size)
    return make_error(ctx + ":", "size " + std::to_string(blob.size) + " above the limit of " + std::to_string(max_size));
  auto session = FORKER_TRY(http::Session::create());
  Target t{ref.registry, ref.repository};
  auto r = FORKER_TRY_CTX(state_->request(session, t, "/v2/" + ref.repository + "/blobs/" + blob.digest.str(),
                                          [&](http::Request& q) { q.max_body = static_cast<size_t>(blob.size); }),
                          ctx);
  if (r.status != 200) return std::move(state_->status_error(t, r).add_context(ctx));
  Digest got = sha256_of(r.body);
  if (static_cast<int64_t>(r.body.size()) != blob.size || got != blob.digest)
    return make_error("digest mismatch for blob " + blob.digest.str() + ":",
                      "downloaded content has " + got.str() + ", " + std::to_string(r.body.size()) + " bytes");
  return std::move(r.body);
}

Status RegistryClient::fetch_blob(const Reference& ref, const Descriptor& blob, const std::string& dest_path) {
  auto session = FORKER_TRY(http::Session::create());
  return state_->download(session, ref, blob, dest_path, nullptr);
}

Status RegistryClient::fetch_blobs(const Reference& ref, const std::vector<BlobJob>& jobs) {
  std::atomic<bool> cancel{false};
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::optional<Error> first_error;
  auto record = [&](Error e) {
    std::lock_guard lock(mu);
    if (!first_error) first_error = std::move(e);
    cancel = true;
  };
  auto worker = [&] {
    auto session = http::Session::create();
    if (!session) return record(std::move(session).error());
    for (;;) {
      size_t i = next++;
      if (i >= jobs.size() || cancel) return;
      Status st = state_->download(*session, ref, jobs[i].descriptor, jobs[i].dest_path, &cancel);
      // A download stopped by another's failure is not the error to report.
      if (!st && !cancel) record(std::move(st).error());
    }
  };
  size_t threads_wanted = std::clamp<size_t>(static_cast<size_t>(std::max(options_.parallel, 1)), 1,
                                             std::max<size_t>(jobs.size(), 1));
  std::vector<std::thread> threads;
  for (size_t i = 1; i < threads_wanted; ++i) {
    try {
      threads.emplace_back(worker);
    } catch (const std::system_error&) {
      break;  // fewer threads; this one still works through the queue
    }
  }
  worker();
  for (auto& th : threads) th.join();
  if (first_error) return std::move(*first_error);
  return ok();
}

Status RegistryClient::check_login(std::string_view registry, const Credentials& creds) {
  RegistryOptions o = options_;
  o.credentials = creds;
  o.auth_files.clear();
  RegistryClient probe(std::move(o));
  auto session = FORKER_TRY(http::Session::create());
  Target t{std::string(registry), ""};
  std::string ctx = "login to " + std::string(registry);
  auto r = FORKER_TRY_CTX(probe.state_->request(session, t, "/v2/", [](http::Request&) {}), ctx);
  if (r.status != 200) return std::move(probe.state_->status_error(t, r).add_context(ctx));
  return ok();
}

}  // namespace forker::image
