// Writing a new user namespace's id maps from its parent. Root writes /proc/PID/uid_map and
// gid_map itself. A user without privilege may write only one mapping of its own uid (and gid,
// after setgroups is denied; user_namespaces(7)); anything else goes through the setuid helpers
// newuidmap/newgidmap (Debian package uidmap), which allow the ranges /etc/subuid and
// /etc/subgid give the user.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/error.hpp"
#include "oci/spec.hpp"

namespace forker::linux {

// "0 1000 1\n1 100000 65536\n": the text of a uid_map/gid_map file.
std::string id_map_text(const std::vector<oci::IdMapping>& maps);

// How the maps of one namespace get written.
enum class IdMapWriter {
  kDirect,       // we may write the file ourselves
  kDirectOwnId,  // unprivileged, one mapping of our own id (gid: setgroups "deny" first)
  kHelper,       // newuidmap / newgidmap
};
// Which writer MAPS (of uids when IS_UID, else gids) needs for a caller with EUID/EGID.
IdMapWriter choose_id_map_writer(const std::vector<oci::IdMapping>& maps, bool is_uid,
                                 bool privileged, uid_t euid, gid_t egid);

// Writes the uid and gid maps of PID's (new, still unmapped) user namespace. Errors name the
// field and, for the helpers, what they said: "uidMappings: newuidmap 4242 0 1000 1 1 100000
// 65536: newuidmap: uid range [1-65537) -> [100000-165536) not allowed".
Status write_id_maps(pid_t pid, const std::vector<oci::IdMapping>& uid_mappings,
                     const std::vector<oci::IdMapping>& gid_mappings);

}  // namespace forker::linux
