// A new network namespace starts with its loopback down; runc and crun bring it up, and so do
// we: a server bound to 127.0.0.1 in the container must be reachable from inside.
#pragma once

#include "core/error.hpp"

namespace forker::linux {

// Sets IFF_UP on "lo" in the calling thread's network namespace (SIOCGIFFLAGS/SIOCSIFFLAGS).
Status bring_up_loopback();

}  // namespace forker::linux
