// Idmapped mounts (Linux 5.12+): a user namespace carrying the mount's id mappings is made in
// the parent; the init clones the source tree, attaches the mapping with mount_setattr
// (MOUNT_ATTR_IDMAP) and moves it into place.
#pragma once

#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/unique_fd.hpp"
#include "linux/kernel.hpp"
#include "oci/spec.hpp"

namespace forker::linux {

// A user namespace with exactly these mappings, as an fd (its helper process is gone).
Result<UniqueFd> make_userns_fd(const std::vector<oci::IdMapping>& uid_mappings,
                                const std::vector<oci::IdMapping>& gid_mappings);

// open_tree(SOURCE, clone) -> mount_setattr(IDMAP userns_fd) -> move_mount onto TARGET_FD.
Status mount_idmapped(const std::string& source, int target_fd,
                      int userns_fd, bool recursive, const std::string& shown);

}  // namespace forker::linux
