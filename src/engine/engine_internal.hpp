// Shared by engine.cpp (run), monitor.cpp (detached containers) and engine_ops.cpp (the rest).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "core/error.hpp"
#include "core/unique_fd.hpp"
#include "engine/engine.hpp"
#include "runtime/launch.hpp"

namespace forker::engine::detail {

// Files in a container's directory besides those containers.hpp names.
inline constexpr const char* kLogFile = "ctr.log";
inline constexpr const char* kStopRequested = "stop-requested";  // stop/kill: no restart
inline constexpr const char* kRemoving = "removing";              // rm: no restart, no record
inline constexpr const char* kIgnoredSigterm = "ignored-sigterm";  // stop needed SIGKILL
inline constexpr const char* kMonitorPid = "monitor.pid";
inline constexpr int64_t kLogMaxBytes = 10 << 20;
inline constexpr int kLogMaxFiles = 2;

// What one start of a container needs: the record, its directory, and how to mount its root.
struct StartPlan {
  ContainerRecord record;
  std::string dir;                  // containers/<id>
  std::vector<std::string> lowers;  // top first
  std::string upper, work, rootfs;
  bool read_only_bind = false;      // a plain directory with --read-only
  bool rootless = false;
  NetworkRequest network;  // attached after each create, before the start
  std::string store_root;  // networks live under it
  std::string hostname;
  // The root mounted while preparing (users were looked up in it): the first start uses it.
  // Closing a detached mount that was never attached costs an RCU grace period (~10 ms).
  UniqueFd prepared_root;
};

// A fresh detached mount of the container's root (one per start: the previous one went with
// the previous mount namespace).
Result<UniqueFd> mount_root(const StartPlan& p);

// Whether the kernel's OOM killer killed a process of the container (its cgroup's counter), for
// inspect's OOMKilled. Read after the exit, before the cgroup goes.
bool oom_killed(const oci::ContainerState& st);

// docker's exit code for a failed start: 127 command not found, 126 not executable, else 125.
int exit_code_for(const Error& e);

// The process that waits for a container (its monitor, or the foreground `forker run`) writes
// its pid and start time here; stop/rm use it to know whether anyone will record the exit.
Status write_monitor_pid(const std::string& dir);
// True when the monitor named in DIR is still alive.
bool monitor_alive(const std::string& dir);
// Waits up to TIMEOUT_MS for the monitor named in DIR to exit; false if it is still alive.
bool wait_monitor_gone(const std::string& dir, int timeout_ms);

bool marker_present(const std::string& dir, const char* name);
void set_marker(const std::string& dir, const char* name);
void clear_marker(const std::string& dir, const char* name);

// One start in the calling process: creates the container with a fresh root mount and starts
// it; the caller waits on what is returned. The container's stdio is the caller's fds 0-2 at the
// time of the call (with -t, a pty whose master is returned in pty_master). On failure nothing of
// this start is left (runtime state, cgroup).
Result<runtime::Created> start_container(const runtime::GlobalOptions& rt, StartPlan& p);
// The detached monitor's whole life (monitor.cpp). Runs in a forked, setsid'd process; writes
// "ok\n" or "<exit code> <message>\n" to STATUS_FD once the first start succeeded or failed.
[[noreturn]] void run_monitor(Engine& engine, StartPlan plan, int status_fd);

}  // namespace forker::engine::detail
