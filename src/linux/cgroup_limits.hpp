// Internals of cgroup.cpp shared with cgroup_v1.cpp, cgroup_v2.cpp and the unit tests: the limit
// writers and freezers for each cgroup version, each taking its directories as parameters.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "oci/spec.hpp"

namespace forker::linux::cgroup_internal {

// Writes VALUE to DIR/FILE; a failure names FIELD, the config.json field it came from.
Status write_knob(const std::string& dir, std::string_view file, std::string_view value,
                  std::string_view field);

// "mlx4_0 hca_handle=2 hca_object=2000": the same line in v1 and v2.
std::string rdma_line(const std::string& device, const oci::RdmaLimit& limit);

// v1: controller name ("memory", "cpuacct") -> the container's directory in its hierarchy.
using V1Dirs = std::map<std::string, std::string>;

// Writes every limit in R to the v1 hierarchies. A field whose controller is not mounted is an
// Error naming the field, never silently dropped.
// A devices.allow/devices.deny line: "c 1:3 rwm"; absent numbers are wildcards, "a" alone
// for every device.
std::string device_rule_text(const oci::DeviceRule& rule);
Status apply_v1(const V1Dirs& dirs, const oci::Resources& r);
// A new v1 cpuset starts with empty cpuset.cpus and cpuset.mems, and no task can join it until
// both are set: copy them from the parent directory when empty.
Status copy_cpuset_from_parent(const std::string& dir);
Status v1_freeze(const std::string& freezer_dir);
Status v1_thaw(const std::string& freezer_dir);
bool v1_frozen(const std::string& freezer_dir);

// Writes every limit in R to the v2 directory DIR.
Status apply_v2(const std::string& dir, const oci::Resources& r);
// Enables in DIR/cgroup.subtree_control every controller DIR/cgroup.controllers offers, so a child
// can use them, as runc does. Best effort past reading the lists: a controller the kernel refuses
// (the "no internal processes" rule on a busy parent) shows up later as a missing limit file.
Status enable_v2_controllers(const std::string& dir);
Status v2_freeze(const std::string& dir);
Status v2_thaw(const std::string& dir);
bool v2_frozen(const std::string& dir);

// cpu.shares (2..262144, default 1024) -> cpu.weight (1..10000, default 100), crun's formula
// that the OCI runtimes agree on. 0 stays 0 (unset).
uint64_t cpu_shares_to_weight(uint64_t shares);
// blkio.weight (10..1000) -> io.weight (1..10000), as crun converts it.
uint64_t blkio_weight_to_io_weight(uint64_t weight);
// OCI memory.swap is memory+swap; v2 memory.swap.max is swap alone. Returns the text to write,
// "" to leave the file alone, or an Error for an inconsistent pair.
Result<std::string> v2_swap_max(const oci::MemoryResources& m);

}  // namespace forker::linux::cgroup_internal
