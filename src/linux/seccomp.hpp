// linux.seccomp: compiled to classic BPF by libseccomp in the parent, loaded with a raw seccomp(2)
// in the child, so the child needs neither libseccomp nor an allocation to install the filter.
#pragma once

#include <linux/filter.h>  // sock_filter

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "oci/spec.hpp"

namespace forker::linux {

struct SeccompProgram {
  std::vector<sock_filter> filter;  // ready for struct sock_fprog
  // SECCOMP_FILTER_FLAG_* for seccomp(2). NEW_LISTENER is not in here: load_seccomp adds it
  // when needs_listener is set.
  unsigned int flags = 0;
  bool needs_listener = false;  // some rule uses SCMP_ACT_NOTIFY
  // Syscall names libseccomp does not know for this architecture; skipped, as runc does.
  std::vector<std::string> skipped_syscalls;
};

// Validates linux.seccomp and compiles it. Errors name the field: "linux.seccomp.syscalls[3].action
// SCMP_ACT_FOO: unknown action".
Result<SeccompProgram> compile_seccomp(const oci::Seccomp& config);

// Child side: installs the filter on the calling thread. The caller must have set no_new_privs or
// hold CAP_SYS_ADMIN. Returns the notification listener fd when needs_listener, else -1.
Result<int> load_seccomp(const SeccompProgram& program);

// "LOG|SPEC_ALLOW": SECCOMP_FILTER_FLAG_* bits by name, for messages.
std::string seccomp_flags_to_string(unsigned int flags);

// The runtime-spec's containerProcessState: what a seccomp agent at linux.seccomp.listenerPath
// receives along with the listener fd. state_json is the container's state (`forker state`).
Result<std::string> container_process_state_json(const std::string& oci_version, int pid,
                                                 const std::string& metadata,
                                                 const std::string& state_json);

// Connects to the agent's unix socket at listener_path and sends process_state_json with
// listener_fd attached (SCM_RIGHTS), as the runtime-spec asks. Runs in the parent.
Status send_seccomp_listener(int listener_fd, const std::string& listener_path,
                             const std::string& process_state_json);

}  // namespace forker::linux
