// Rootless containers: the runtime runs without privilege on the host (a user's own uid, or root
// inside a user namespace someone else made, as rootless podman runs us). Then the state lives
// under the user's runtime directory, the user namespace maps the user to root, and cgroups are
// used only when one has been delegated to the user; every limit that cannot be applied is named
// in one warning.
#pragma once

#include <string>
#include <vector>

#include "linux/cgroup.hpp"
#include "oci/spec.hpp"

namespace forker::linux {

// Whether this process runs in a user namespace other than the initial one (/proc/self/uid_map
// is not the identity map "0 0 4294967295").
bool in_user_namespace();

// Whether the runtime lacks privilege on the host: not root, or root only in a user namespace.
bool running_rootless();

// The default --root: /run/forker-oci for root on the host; else $XDG_RUNTIME_DIR/forker-oci,
// or /tmp/forker-oci-UID when XDG_RUNTIME_DIR is not set.
std::string default_state_root();

// Whether this process may make the container's cgroup at PATH (resolved) in every hierarchy
// the container uses: the directory (or its deepest existing ancestor) is writable, as a
// delegated cgroup is. REASON says what is not writable when false.
bool cgroup_writable(const CgroupHost& host, const std::string& path, std::string& reason);

// The linux.resources fields RESOURCES sets that only a cgroup can apply ("memory.limit",
// "pids.limit", ...). A device list that only denies is left out: in a user namespace no device
// node can be made, and the nodes of linux.devices are the host's, bound in.
std::vector<std::string> cgroup_limits_set(const oci::Resources& resources);

// The one warning naming every limit of SPEC that is not applied because there is no cgroup;
// empty when none is set.
std::string unapplied_limits_warning(const oci::Spec& spec, const std::string& reason);

}  // namespace forker::linux
