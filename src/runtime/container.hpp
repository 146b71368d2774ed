// The runtime's operations, one call per OCI command. The faces (cli/oci) only parse flags,
// call these and map errors to exit codes and log lines.
#pragma once

#include <signal.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "linux/overlay.hpp"
#include "oci/state.hpp"

namespace forker::runtime {

struct GlobalOptions {
  std::string root = "/run/forker-oci";
  bool systemd_cgroup = false;
  bool debug = false;  // per-step timings on stderr
};

struct CreateOptions {
  std::string id;
  std::string bundle = ".";
  std::string pid_file;
  std::string console_socket;
  bool no_pivot = false;
  bool no_new_keyring = false;
  int preserve_fds = 0;
  // A detached mount (fsmount/open_tree) the init attaches on root.path inside its mount
  // namespace, so the host's mount table never shows it. Borrowed: the init has attached it once
  // create returns, and the caller's copy then only pins the mount (an overlay's upper stays
  // busy) until it is closed. O_CLOEXEC: the container's process never holds it.
  int rootfs_mount_fd = -1;
  // With rootfs_mount_fd < 0: an overlay (lowers top first, upper, work, userxattr) the init
  // makes with fsopen inside its own user and mount namespaces and attaches on root.path the
  // same way. For a rootless caller, whom the host's user namespace refuses an overlay mount.
  std::optional<linux::OverlaySpec> rootfs_overlay;
  // Keep the init's new network and user namespaces open (Created::netns/userns) for a caller
  // that attaches a network between create and start.
  bool keep_namespace_fds = false;
};

Status create_container(const GlobalOptions& g, const CreateOptions& o);
Status start_container(const GlobalOptions& g, const std::string& id);
// create + start in the foreground; returns the exit status (128+N for a signal). With
// `detach`, returns 0 once the container runs.
Result<int> run_container(const GlobalOptions& g, const CreateOptions& o, bool detach);
Status kill_container(const GlobalOptions& g, const std::string& id, int signal, bool all);
Status delete_container(const GlobalOptions& g, const std::string& id, bool force);
Result<std::string> container_state(const GlobalOptions& g, const std::string& id);
// The pids in the container's cgroup (runc ps).
Result<std::vector<pid_t>> container_pids(const GlobalOptions& g, const std::string& id);

struct ListEntry {
  oci::ContainerState state;
  oci::ContainerStatus status;
};
Result<std::vector<ListEntry>> list_containers(const GlobalOptions& g);

struct ExecOptions {
  std::string id;
  std::string process_file;        // --process
  std::vector<std::string> args;   // when no --process
  bool tty = false;
  std::string console_socket;
  std::string cwd;
  std::vector<std::string> env;
  std::string user;                // "uid[:gid]"
  std::vector<uint32_t> additional_gids;
  std::vector<std::string> caps;
  bool no_new_privs = false;
  bool detach = false;
  std::string pid_file;
  int preserve_fds = 0;
};
// Returns the exit status of the process (0 with detach).
Result<int> exec_container(const GlobalOptions& g, const ExecOptions& o);

// ---- cgroup operations (cgroup_ops.cpp, events.cpp) ----

// pause/resume: freeze and thaw every process of the container (v1 freezer, v2 cgroup.freeze).
Status pause_container(const GlobalOptions& g, const std::string& id);
Status resume_container(const GlobalOptions& g, const std::string& id);

// runc update's flags, as typed: memory values take runc's suffixes ("64m", "1g", "-1"). An
// empty string is a flag not given; 0 leaves a value unchanged, as in runc.
struct UpdateFlags {
  std::string memory, memory_swap, memory_reservation, kernel_memory, kernel_memory_tcp;
  std::string cpu_shares, cpu_quota, cpu_period, cpu_rt_runtime, cpu_rt_period;
  std::string cpuset_cpus, cpuset_mems, pids_limit, blkio_weight;
  bool any() const;
};
// What update writes: the linux.resources fields asked for, and the same as JSON, which is
// merged into the config kept in the container's state.
struct UpdateRequest {
  oci::Resources resources;
  std::string resources_json;
};
// From -r's text (the OCI linux.resources object; unknown keys are an error) or, when
// RESOURCES_TEXT is empty, from the flags. Values are range-checked before anything is written.
Result<UpdateRequest> parse_update(const UpdateFlags& flags, const std::string& resources_text);
// "64m" -> 67108864 (runc's RAMInBytes: k, m, g, t, p, binary, optional "b"/"ib"); "-1" -> -1.
Result<int64_t> parse_memory_size(const std::string& text);
// Writes the request to the container's cgroup (created, running or paused).
Status update_container(const GlobalOptions& g, const std::string& id, const UpdateRequest& r);

struct EventsOptions {
  std::string id;
  bool stats_once = false;  // --stats: one stats event, then return
  long interval_ms = 5000;  // --interval
};
// runc's event stream: a {"type":"stats",...} line every interval and {"type":"oom",...} when
// the cgroup reports an OOM kill (polled), each handed to EMIT, until the container stops.
Status container_events(const GlobalOptions& g, const EventsOptions& o,
                        const std::function<void(const std::string& line)>& emit);
// "5s", "250ms", "1m30s" (Go's time.ParseDuration units ns..h) -> milliseconds, > 0.
Result<long> parse_interval(const std::string& text);

// "KILL", "SIGKILL", "9" -> 9.
Result<int> parse_signal(const std::string& name);

}  // namespace forker::runtime
