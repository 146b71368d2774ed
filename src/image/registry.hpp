// A client for the OCI distribution API (registry v2) over libcurl: resolve a reference to the
// manifest for one platform, and download blobs with resume, retries and digest checks.
//
// Transport: HTTPS with the system CA store. Plain HTTP is used directly for loopback
// registries (localhost, 127.0.0.0/8, [::1]), as docker treats them as insecure; a registry in
// RegistryOptions::insecure_registries is tried over HTTPS without certificate checks first and
// over HTTP when TLS fails (docker's order). Anything else is HTTPS only.
//
// Authentication: requests go out anonymously (or with what was learned before); on a 401 the
// WWW-Authenticate challenge decides: Bearer -> a token from the realm (with basic credentials
// when we have them, anonymous otherwise), cached per registry and scope; Basic -> the
// credentials themselves. Credentials come from RegistryOptions::credentials, else the auth
// files (auth.hpp). Credentials never follow a redirect to another host.
//
// Threads: one RegistryClient may be used from several threads; the progress callback runs on
// the downloading threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "image/auth.hpp"
#include "image/digest.hpp"
#include "image/platform.hpp"
#include "image/reference.hpp"
#include "image/store.hpp"  // Descriptor, media type names

namespace forker::image {

inline constexpr std::string_view kMediaDockerSchema1 =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kMediaDockerSchema1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
inline constexpr std::string_view kMediaDockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr int64_t kMaxManifestSize = 4 << 20;
inline constexpr int64_t kMaxConfigSize = 16 << 20;

struct RegistryOptions {
  // "host[:port]" that may be reached over plain HTTP or TLS without verification.
  std::vector<std::string> insecure_registries;
  // Used for every registry when set (forker login --username/--password); else the auth files.
  std::optional<Credentials> credentials;
  std::vector<std::string> auth_files = auth_file_candidates();
  int parallel = 3;  // blobs downloaded at once by fetch_blobs
  int retries = 3;   // extra attempts after a transient failure (connection, 5xx, 429)
  // Called as bytes of a blob arrive (from a download thread): done includes resumed bytes.
  std::function<void(const Digest& blob, int64_t done, int64_t total)> progress;
  std::string user_agent = "forker/" FORKER_VERSION;
};

// What resolve() found: the image manifest for the wanted platform, verified.
struct ResolvedImage {
  Reference reference;     // as asked
  std::string manifest;    // the exact bytes served (their sha256 is `digest`)
  std::string media_type;  // kMediaOciManifest or kMediaDockerManifest
  Digest digest;
  Descriptor config;
  std::vector<Descriptor> layers;  // bottom first; media types checked (see parse_image_manifest)
  // When the reference named an index / manifest list: its bytes, type, digest and the platform
  // of the entry chosen.
  std::string index;
  std::string index_media_type;
  std::optional<Digest> index_digest;
  std::optional<Platform> platform;
};

struct BlobJob {
  Descriptor descriptor;
  std::string dest_path;
};

class RegistryClient {
 public:
  explicit RegistryClient(RegistryOptions options = {});
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  const RegistryOptions& options() const { return options_; }

  // GET /v2/<repo>/manifests/<tag|digest>. An index or manifest list is narrowed to PLATFORM
  // (Platform::accepts) and that manifest fetched by digest. Every manifest's sha256 must match
  // the reference's digest, the Docker-Content-Digest header and the index entry, whichever
  // apply. Schema 1, nested indexes, non-image configs, foreign layers and manifests above
  // kMaxManifestSize are refused. A single-platform manifest is not checked against PLATFORM
  // here: its config (fetch_blob_bytes) says what it is.
  // Errors: "manifest unknown: <ref>" on 404; HTTP status with the registry's message else.
  Result<ResolvedImage> resolve(const Reference& ref, const Platform& platform = Platform::host());

  // A small blob (the image config) into memory, size and digest verified.
  Result<std::string> fetch_blob_bytes(const Reference& ref, const Descriptor& blob,
                                       int64_t max_size = kMaxConfigSize);

  // Downloads BLOB into DEST_PATH and nowhere else. An existing file is a partial download:
  // its bytes are hashed and the rest fetched with Range (from 0 if the server ignores it).
  // Redirects are followed (credentials only to the registry's own origin); transient failures
  // are retried with backoff. At the end the size and sha256 are checked and the file fsynced;
  // a mismatch (or more bytes than the descriptor says) removes DEST_PATH and is an error
  // naming the blob. Other failures leave the partial file for a later resume.
  Status fetch_blob(const Reference& ref, const Descriptor& blob, const std::string& dest_path);

  // fetch_blob for each job, options.parallel at a time. The first error is returned and the
  // other downloads are cancelled (their partial files stay).
  Status fetch_blobs(const Reference& ref, const std::vector<BlobJob>& jobs);

  // GET /v2/ on REGISTRY with CREDS (bearer token or basic auth as the registry asks); an
  // error when the registry refuses them. For `forker login`, before save_credentials.
  Status check_login(std::string_view registry, const Credentials& creds);

 private:
  struct State;
  RegistryOptions options_;
  std::unique_ptr<State> state_;
};

// Parsing, exposed for tests.
struct ImageManifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};
struct PlatformEntry {
  Descriptor descriptor;
  std::optional<Platform> platform;
};

bool is_index_media_type(std::string_view media_type);
// The media type of manifest BYTES: their "mediaType" field, else CONTENT_TYPE (without
// parameters), else guessed from the shape ("manifests" -> OCI index, "layers" -> OCI manifest).
// Schema 1 is an "unsupported" error.
Result<std::string> manifest_media_type(std::string_view bytes, std::string_view content_type);
// An OCI or docker schema2 manifest: config must be an image config, layers tar / tar+gzip /
// tar+zstd (OCI) or docker rootfs.diff.tar(.gzip); foreign / non-distributable layers refused.
Result<ImageManifest> parse_image_manifest(std::string_view bytes);
Result<std::vector<PlatformEntry>> parse_image_index(std::string_view bytes);
// The entry for WANTED: exact variant matches before variant-less ones; an error listing the
// platforms the index has when none fits.
Result<PlatformEntry> select_platform(const std::vector<PlatformEntry>& entries, const Platform& wanted);

}  // namespace forker::image
