// What a container's cgroup has used, in the shape of runc's `events` data (runc types.Stats:
// cpu, cpuset, memory, pids, blkio, hugetlb), read from the v1 or v2 files; and the OOM-kill
// counter that `events` polls.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

#include "linux/cgroup.hpp"

namespace forker::linux {

// Figures whose file is missing (a controller the host does not mount) are left out or zero, as
// runc leaves them. Units as runc's: nanoseconds of CPU, bytes of memory.
nlohmann::json cgroup_stats(const Cgroup& cg);

// OOM kills in the cgroup so far: v1 memory.oom_control "oom_kill", v2 memory.events
// "oom_kill". nullopt when there is no memory controller or the file cannot be read (the
// cgroup is gone).
std::optional<uint64_t> cgroup_oom_kills(const Cgroup& cg);

}  // namespace forker::linux
