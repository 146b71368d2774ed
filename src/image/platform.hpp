// Platforms as OCI image indexes name them (os, architecture, variant), the host's own, and the
// rule that picks an index entry for a wanted platform.
#pragma once

#include <string>
#include <string_view>

#include "core/error.hpp"

namespace forker::image {

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // GOARCH names: "amd64", "arm64", "arm", "386", "ppc64le", ...
  std::string variant;       // "v8", "v7", ...; may be empty

  // The running machine from uname(2): x86_64 -> amd64, aarch64 -> arm64/v8, armv7l -> arm/v7.
  static Platform host();
  // "os/arch[/variant]" ("linux/arm64/v8"); kernel names are accepted (linux/x86_64 = amd64).
  static Result<Platform> parse(std::string_view text);

  // "linux/amd64", "linux/arm64/v8".
  std::string str() const;

  // Whether an index entry for platform CANDIDATE serves a request for *this: os and
  // architecture must be equal; the variant is compared only when *this names one, with
  // arm64's missing variant counting as v8.
  bool accepts(const Platform& candidate) const;

  bool operator==(const Platform&) const = default;
};

}  // namespace forker::image
