// The config.json `forker-oci spec` writes (runc's defaults) and the features document.
#pragma once

#include <string>

namespace forker::oci {

// runc's default spec: busybox-friendly `sh` with a terminal, the default mounts, masked paths.
// `rootless` maps the calling user to root in a user namespace and drops what needs privilege.
std::string default_spec_json(bool rootless, unsigned int uid, unsigned int gid);
// The runtime-spec features document (features.md) of this runtime.
std::string features_json();

}  // namespace forker::oci
