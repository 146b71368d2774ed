// The container's first process (or an exec'd one) from clone() to execve(): everything it
// needs is planned by the parent first, so this side only applies values.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/unique_fd.hpp"
#include "linux/capabilities.hpp"
#include "linux/rlimits.hpp"
#include "linux/rootfs.hpp"
#include "linux/seccomp.hpp"
#include "oci/spec.hpp"
#include "runtime/sync.hpp"

namespace forker::runtime {

struct JoinNamespace {
  UniqueFd fd;
  int type = 0;  // CLONE_NEW*
  std::string path;
};

struct InitPlan {
  std::string container_id;
  bool exec_mode = false;  // joining a running container instead of building one
  std::vector<JoinNamespace> join_namespaces;  // the user namespace first
  int unshare_flags = 0;    // new namespaces made by the child after joining the others
  bool new_cgroupns = false;
  bool new_timens = false;
  bool loopback_up = false;  // a new network namespace: bring "lo" up in it
  std::map<std::string, oci::TimeOffset> time_offsets;
  std::optional<linux::RootfsPlan> rootfs;
  bool set_hostname = false;
  std::string hostname, domainname;
  bool set_domainname = false;
  std::map<std::string, std::string> sysctl;
  oci::Process process;
  std::optional<linux::CapabilityPlan> capabilities;
  std::vector<linux::RlimitValue> rlimits;
  std::optional<linux::SeccompProgram> seccomp;
  std::optional<unsigned long> personality;
  bool parent_runs_hooks = false;  // prestart/createRuntime exist: ask the parent mid-way
  std::vector<oci::Hook> create_container_hooks, start_container_hooks;
  UniqueFd console_socket;  // connected; the pty master is sent over it
  UniqueFd exec_fifo;       // O_PATH; opening it for writing blocks until `start`
  int preserve_fds = 0;
  bool new_keyring = true;
  std::vector<UniqueFd> idmap_userns;  // owners of the fds RootfsPlan's idmapped mounts name
};

// Clones the init with CLONE_FLAGS and runs it; returns the child's pid (in our pid namespace)
// and a pidfd for it. The child's end of the channel is used only in the child.
struct Spawned {
  pid_t pid = -1;
  UniqueFd pidfd;
  bool in_cgroup = false;  // born in the cgroup given (CLONE_INTO_CGROUP); else the caller moves it
};
// With cgroup_fd >= 0 (a cgroup v2 directory) the child is born in that cgroup
// (CLONE_INTO_CGROUP), which spares the parent the migration.
Result<Spawned> spawn_init(InitPlan& plan, int clone_flags, SyncChannel& child_end,
                           SyncChannel& parent_end, int cgroup_fd = -1);

// Looks ARG0 up in PATH (from ENV, else the default PATH) as execvp would, in the current root.
Result<std::string> resolve_executable(const std::string& arg0, const std::vector<std::string>& env);

}  // namespace forker::runtime
