// Container state on disk under ROOT/ID: state.json written atomically, a flock on the
// directory for every command that changes the container, and status derived from the real
// process (pid + its start time), never from what the file last said.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/unique_fd.hpp"
#include "oci/spec.hpp"

namespace forker::oci {

enum class ContainerStatus { Creating, Created, Running, Paused, Stopped };
const char* status_name(ContainerStatus s);

struct ContainerState {
  std::string id;
  pid_t pid = 0;
  uint64_t pid_start_time = 0;  // field 22 of /proc/PID/stat: tells a reused pid apart
  std::string bundle;
  std::string rootfs;
  std::string created;  // RFC 3339 with nanoseconds, UTC
  std::string owner;
  std::string cgroups_path;  // as resolved by the runtime
  std::vector<std::string> cgroup_dirs_created;  // removed on delete when empty
  // Per hierarchy mount, the cgroup a relative cgroupsPath was joined to (empty: all roots).
  std::map<std::string, std::string> cgroup_bases;
  std::map<std::string, std::string> annotations;
  std::string config_json;  // the config.json text given to create, for exec and hooks
  bool systemd_cgroup = false;
};

// The runtime-spec state JSON (ociVersion, id, status, pid, bundle, annotations), plus runc's
// extra fields (rootfs, created, owner) when `runc_fields`.
std::string state_json(const ContainerState& st, ContainerStatus status, bool runc_fields);

std::string rfc3339_now();
// Start time of PID from /proc; nullopt when the process is gone.
std::optional<uint64_t> process_start_time(pid_t pid);
// In ROOT/ID, `pause` links this name to the cgroup's freezer file (v1 freezer.state, v2
// cgroup.freeze): the status reads the kernel's freezer, not a marker of our own.
inline constexpr const char* kFreezerLink = "freezer";
// Derives the status from the process: gone or zombie -> Stopped; exec.fifo present -> Created;
// a frozen cgroup -> Paused.
ContainerStatus derive_status(const std::string& container_dir, const ContainerState& st);

class StateDir {
 public:
  // Creates ROOT/ID (ROOT made if missing) and locks it. A directory left by a killed create
  // (no state.json, lock free) is removed first.
  static Result<StateDir> create(const std::string& root, const std::string& id);
  // Opens and locks an existing container's directory.
  static Result<StateDir> open(const std::string& root, const std::string& id);

  const std::string& path() const { return path_; }
  int fd() const { return dir_.get(); }
  Status save(const ContainerState& st) const;
  Result<ContainerState> load() const;
  // Removes the directory and everything in it (the lock goes with it).
  Status remove();

 private:
  StateDir(std::string path, UniqueFd dir) : path_(std::move(path)), dir_(std::move(dir)) {}
  std::string path_;
  UniqueFd dir_;
};

// Ids of the containers under ROOT (directories holding a state.json).
Result<std::vector<std::string>> list_containers(const std::string& root);
// Reads ROOT/ID/state.json without locking (state, list).
Result<ContainerState> read_state(const std::string& root, const std::string& id);

}  // namespace forker::oci
