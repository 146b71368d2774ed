// Seccomp profiles in docker's format (docker, podman and forker's own default use it): rules
// carry "includes"/"excludes" conditions on capabilities, the architecture and the kernel
// version, and "archMap" lists each architecture's companions. resolve_seccomp_profile turns one
// into the runtime-spec's linux.seccomp for one container, as docker does when it creates one.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace forker::oci {

// What a profile's conditions are checked against.
struct SeccompTarget {
  std::vector<std::string> caps;  // the container's bounding set: "CAP_SYS_ADMIN", ...
  std::string arch;               // Go's name of the native architecture: "amd64", "arm64", ...
  std::string kernel;             // the running kernel's release: "6.1.0-13-amd64"
};

// The target for this binary's architecture and the running kernel.
SeccompTarget host_seccomp_target(std::vector<std::string> caps);

// PROFILE_TEXT (docker's format, or a plain linux.seccomp, which passes through unchanged but
// for the conditions) -> linux.seccomp. Errors name the field: "seccomp profile syscalls[3]...".
Result<nlohmann::json> resolve_seccomp_profile(std::string_view profile_text,
                                               const SeccompTarget& target);

// forker's default profile (profiles/seccomp-default.json, built into the binary).
std::string_view default_seccomp_profile();

// SPEC_TEXT (a config.json) with linux.seccomp set to the default profile resolved for its
// process.capabilities.bounding on this host: `forker-oci spec --seccomp-default`.
Result<std::string> with_default_seccomp(std::string_view spec_text);

}  // namespace forker::oci
