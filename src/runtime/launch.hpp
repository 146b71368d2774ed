// Shared by create, run and exec: the parent's half of starting a container process.
#pragma once

#include <string>

#include "core/error.hpp"
#include "core/unique_fd.hpp"
#include "linux/cgroup.hpp"
#include "oci/spec.hpp"
#include "oci/state.hpp"
#include "runtime/container.hpp"
#include "runtime/init.hpp"

namespace forker::runtime {

// A container process this command started; killed and reaped unless released.
class ChildGuard {
 public:
  ChildGuard() = default;
  explicit ChildGuard(Spawned s) : s_(std::move(s)) {}
  ChildGuard(ChildGuard&& o) noexcept : s_(std::move(o.s_)) { o.s_.pid = -1; }
  ChildGuard& operator=(ChildGuard&& o) noexcept {
    std::swap(s_.pid, o.s_.pid);
    std::swap(s_.pidfd, o.s_.pidfd);
    return *this;
  }
  ~ChildGuard();
  pid_t pid() const { return s_.pid; }
  int pidfd() const { return s_.pidfd.get(); }
  bool in_cgroup() const { return s_.in_cgroup; }
  void release() { s_.pid = -1; }
  // Waits for the child and returns its status as an exit code (128+N for signal N).
  Result<int> wait();

 private:
  Spawned s_;
};

// The container as create leaves it, for run to carry on with.
struct Created {
  oci::StateDir dir;
  oci::ContainerState state;
  oci::Spec spec;
  ChildGuard child;
  UniqueFd pty_master;  // run in the foreground with a terminal and no console socket
  // The init's new network and user namespaces (when it has them), opened right after the
  // clone: once it is ready the init is not dumpable, and a rootless caller can no longer
  // open its /proc/PID/ns files (the network is attached between create and start).
  UniqueFd netns, userns;
};

Result<Created> create_impl(const GlobalOptions& g, const CreateOptions& o, bool foreground);
// Opens exec.fifo for reading, releasing the init into execve, then runs poststart hooks.
Status start_impl(const std::string& state_dir, const oci::ContainerState& st,
                  const oci::Spec& spec);
// Kills what is left, removes the cgroup and the state directory, runs poststop hooks.
Status destroy_impl(oci::StateDir& dir, const oci::ContainerState& st);

// Waits for CHILD, passing on the signals a user sends us (SIGINT, SIGTERM, ...).
Result<int> wait_forwarding_signals(ChildGuard& child);

Result<linux::CgroupHost> cgroup_host();
// The host as an existing container sees it: with the bases its relative cgroupsPath used.
Result<linux::CgroupHost> cgroup_host(const oci::ContainerState& st);
// Receives the init's seccomp notify fd and hands it to the agent at listenerPath.
Status forward_seccomp_listener(const SyncChannel& ch, const oci::Spec& spec,
                                const oci::ContainerState& st, pid_t pid,
                                oci::ContainerStatus status);
int exit_code_of(int wait_status);
Status write_pid_file(const std::string& path, pid_t pid);
// process.terminal: the init sends its pty master to --console-socket, or, without one, to a
// socketpair whose other end is returned (run and exec in the foreground proxy it).
Result<UniqueFd> attach_console(InitPlan& plan, const std::string& console_socket);

}  // namespace forker::runtime
