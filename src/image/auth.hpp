// Registry authentication pieces that need no network: WWW-Authenticate challenges, the
// credentials in auth files (containers' auth.json, docker's config.json) and writing them for
// `forker login`. The registry client (registry.hpp) uses these for its 401 handshake.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace forker::image {

// One challenge of a WWW-Authenticate header: `Bearer realm="https://auth/token",service="x"`.
struct Challenge {
  std::string scheme;                         // lower case: "bearer", "basic"
  std::map<std::string, std::string> params;  // names lower case, values unquoted
  std::string param(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  }
};

// Parses a header value holding one or more challenges (RFC 7235): quoted values may hold
// commas and backslash escapes. An unterminated quote or a missing scheme is an error.
Result<std::vector<Challenge>> parse_challenges(std::string_view header);

struct Credentials {
  std::string username;
  std::string password;
  bool operator==(const Credentials&) const = default;
};

// "Basic " + base64(user:password), the Authorization header value.
std::string basic_authorization(const Credentials& creds);

// Auth files in lookup order: ${REGISTRY_AUTH_FILE}, ${XDG_RUNTIME_DIR}/containers/auth.json,
// ~/.docker/config.json (only those whose variables are set).
std::vector<std::string> auth_file_candidates();
// Where `forker login` writes: ${REGISTRY_AUTH_FILE}, else ${XDG_RUNTIME_DIR}/containers/
// auth.json, else ~/.docker/config.json.
std::string default_auth_file();

// Looks REGISTRY (and REPOSITORY, for per-repository keys such as "quay.io/org") up in the
// "auths" map of an auth file's JSON. Keys may carry a scheme and path ("https://host/v1/");
// docker.io also matches "https://index.docker.io/v1/". "auth" is base64(user:password).
// The most specific key wins. nullopt when there is no entry; SOURCE names the file in errors.
Result<std::optional<Credentials>> credentials_from_auth_json(std::string_view json,
                                                              std::string_view registry,
                                                              std::string_view repository,
                                                              std::string_view source);
// The first file of FILES with an entry wins; missing files are skipped, unreadable or invalid
// ones are errors naming the file.
Result<std::optional<Credentials>> find_credentials(const std::vector<std::string>& files,
                                                    std::string_view registry,
                                                    std::string_view repository);

// Stores CREDS for REGISTRY in FILE's "auths" map, keeping every other key of the file; writes a
// temporary file with mode 0600, fsyncs and renames it over FILE (parent dirs made 0700).
Status save_credentials(std::string_view registry, const Credentials& creds, const std::string& file);
// Removes REGISTRY's entry (for `forker logout`); not an error when absent.
Status remove_credentials(std::string_view registry, const std::string& file);

}  // namespace forker::image
