// cgroup v2 has no devices.allow: device rules become an eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup.
#pragma once

#include <linux/bpf.h>

#include <vector>

#include "core/error.hpp"
#include "oci/spec.hpp"

namespace forker::linux {

// The program for RULES: the last matching rule decides, no match denies. An allow rule matches
// a request whose every access bit it lists, a deny rule one that shares any bit with it (so
// "deny w" refuses an rw open, as on cgroup v1). Unknown types or access letters are errors naming the rule.
Result<std::vector<bpf_insn>> device_filter_program(const std::vector<oci::DeviceRule>& rules);
// Loads PROGRAM and attaches it to the cgroup directory CGROUP_FD (BPF_F_ALLOW_MULTI).
Status attach_device_filter(int cgroup_fd, const std::vector<bpf_insn>& program,
                            const std::string& cgroup_dir);

}  // namespace forker::linux
