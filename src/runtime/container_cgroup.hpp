// The container's cgroup as create makes it, or none when the runtime is rootless and no cgroup
// has been delegated to the user: then one warning names every limit that is not applied.
#pragma once

#include <optional>
#include <string>

#include "core/error.hpp"
#include "linux/cgroup.hpp"
#include "oci/spec.hpp"

namespace forker::runtime {

// RESOURCES may be null. nullopt: rootless without a writable cgroup (the warning is logged).
Result<std::optional<linux::Cgroup>> make_container_cgroup(const linux::CgroupHost& host,
                                                           const std::string& path,
                                                           const oci::Resources* resources,
                                                           const oci::Spec& spec);

}  // namespace forker::runtime
