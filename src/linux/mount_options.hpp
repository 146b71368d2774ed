// Mount option strings (as in config.json and mount(8)) -> mount(2) flags, propagation, data.
#pragma once

#include <string>
#include <vector>

#include "core/error.hpp"

namespace forker::linux {

struct MountOptions {
  unsigned long flags = 0;        // MS_RDONLY, MS_NOSUID, ... (MS_BIND|MS_REC for bind/rbind)
  unsigned long clear = 0;        // flags explicitly turned off (rw, suid, ...)
  unsigned long propagation = 0;  // MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE (+MS_REC)
  unsigned long long recursive_set = 0;    // MOUNT_ATTR_* from rro, rnosuid, ...
  unsigned long long recursive_clear = 0;  // MOUNT_ATTR_* from rrw, rsuid, ...
  bool idmap = false;            // idmap / ridmap
  bool recursive_idmap = false;  // ridmap
  bool tmpcopyup = false;        // tmpfs only: copy the covered directory's contents into it
  std::string data;              // filesystem-specific options, comma-joined
};

Result<MountOptions> parse_mount_options(const std::vector<std::string>& options);
// "MS_BIND|MS_REC|MS_RDONLY" style names, for error messages (as runc prints them).
std::string mount_flags_to_string(unsigned long flags);
// Propagation from linux.rootfsPropagation ("rslave" -> MS_SLAVE|MS_REC); 0 for "".
unsigned long parse_propagation(const std::string& name);

}  // namespace forker::linux
