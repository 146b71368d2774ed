// Image references by docker's rules: "busybox" is docker.io/library/busybox:latest; a first
// component is a registry when it holds '.' or ':' or is "localhost"; name:tag, name@digest
// and name:tag@digest (the digest decides what is pulled; the tag is kept for display).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "image/digest.hpp"

namespace forker::image {

inline constexpr std::string_view kDockerHub = "docker.io";

struct Reference {
  std::string registry;          // "docker.io", "localhost:5000", "quay.io", "[::1]:5000"
  std::string repository;        // "library/busybox", "a/b"
  std::string tag;               // "latest" by default; empty when only a digest was given
  std::optional<Digest> digest;  // set for name@sha256:...

  // Parses and validates TEXT; errors name the text and the part that is wrong.
  static Result<Reference> parse(std::string_view text);

  // "docker.io/library/busybox:latest", ".../x@sha256:...", ".../x:t@sha256:...".
  std::string str() const;
  // docker's short form: "busybox:latest", "user/app:1", "localhost:5000/a/b:t".
  std::string familiar() const;
  // registry/repository, no tag or digest.
  std::string name() const { return registry + "/" + repository; }
  // What goes into /v2/<repository>/manifests/<here>: the digest when there is one, else the tag.
  std::string manifest_ref() const { return digest ? digest->str() : tag; }
  // host[:port] serving the API: registry-1.docker.io for docker.io, else the registry itself.
  std::string api_host() const;
  // Same image name, other tag/digest.
  Reference with_digest(const Digest& d) const;

  bool operator==(const Reference&) const = default;
};

// Registries that speak plain HTTP without being listed as insecure: localhost, 127.0.0.0/8, ::1
// (with or without a port).
bool is_loopback_registry(std::string_view registry);

}  // namespace forker::image
