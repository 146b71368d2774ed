// `forker stats`: a container's CPU, memory and pids from its cgroup (the runtime's `events
// --stats` data), counted the way docker's client counts them.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.hpp"
#include "runtime/container.hpp"

namespace forker::engine {

struct StatsSample {
  uint64_t cpu_ns = 0;        // CPU time used so far, all CPUs
  uint64_t memory = 0;        // usage less the inactive file cache, as docker counts it
  uint64_t memory_limit = 0;  // the cgroup's limit; the host's memory when that is lower
  uint64_t pids = 0;
  std::chrono::steady_clock::time_point at;
};

// From runc's types.Stats JSON (linux::cgroup_stats), v1 or v2.
StatsSample stats_from_json(const nlohmann::json& data, uint64_t host_memory);
// Reads the cgroup of runtime container ID now. Fails when it is not running or has no cgroup
// (rootless without delegation).
Result<StatsSample> read_stats(const runtime::GlobalOptions& rt, const std::string& id,
                               uint64_t host_memory);

// docker's CPU %: CPU time over elapsed time between two samples; 100 per busy CPU.
double cpu_percent(const StatsSample& before, const StatsSample& after);
double memory_percent(const StatsSample& s);
// MemTotal from /proc/meminfo, in bytes; 0 when unreadable.
uint64_t host_memory_bytes();
// docker's binary sizes (go-units BytesSize): 4 significant digits, "64MiB", "1.504MiB", "0B".
std::string binary_size(double bytes);

}  // namespace forker::engine
