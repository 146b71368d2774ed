// The `forker` containers on disk, beside their snapshots in the store:
//   containers/<id>/container.json   what was asked for (ContainerRecord), written once at create
//   containers/<id>/exit.json        the last exit (ExitRecord), written by whoever waited for it
//   containers/<id>/monitor.pid      pid and start time of a detached container's monitor
//   names/<name>                     a symlink to <id>: names are unique (symlink() is atomic)
// The running state (pid, cgroup) is the runtime's, under runtime_root()/<id>.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace forker::engine {

struct ContainerRecord {
  std::string id;         // 64 hex digits
  std::string name;
  std::string image;      // as given on the command line
  std::string image_id;   // config digest hex; empty for a directory root
  std::string rootfs_dir; // the directory given as the root (absolute); empty for an image
  std::vector<std::string> args;  // process.args
  std::string created;    // RFC 3339
  std::string group;      // --replicas: the group's name (NAME), else empty
  int replica = 0;        // 1..N within the group
  bool auto_remove = false;  // --rm
  bool detached = false;
  bool tty = false;
  std::string restart_policy = "no";  // no | on-failure | always | unless-stopped
  int restart_max = 0;                // on-failure:N (0: no limit)
  std::string stop_signal = "SIGTERM";
  int stop_timeout = 10;
  nlohmann::json run_options;  // the options as given, for inspect
  nlohmann::json network;      // NetworkRequest (container_network.hpp): mode, networks, ports
};
nlohmann::json record_json(const ContainerRecord& r);
Result<ContainerRecord> parse_record(std::string_view text);

struct ExitRecord {
  int exit_code = 0;       // docker's: the status, 128+N for signal N
  std::string started;     // RFC 3339
  std::string finished;    // RFC 3339
  bool oom_killed = false;
  bool stopped_by_user = false;  // forker stop/kill: restart policies other than always skip it
  bool ignored_sigterm = false;  // stop had to SIGKILL after the timeout
  int restart_count = 0;
  std::string error;       // why the container could not start, when it could not
};
nlohmann::json exit_json(const ExitRecord& e);
Result<ExitRecord> parse_exit(std::string_view text);

// Ids and names. Name: [a-zA-Z0-9][a-zA-Z0-9_.-]* (docker's rule), at most 128.
std::string new_container_id();           // 64 hex from getrandom
std::string generated_name(std::string_view id);  // docker-like "adjective_noun", from the id
Status validate_name(std::string_view name);

class ContainerStore {
 public:
  // STORE_ROOT is the image store's root (containers/ and names/ under it).
  explicit ContainerStore(std::string store_root);

  std::string dir(const std::string& id) const;  // STORE_ROOT/containers/<id>
  // Takes NAME for ID. "name already in use by container <id12>" when a live entry has it; an
  // entry pointing at a container directory that no longer holds a container.json and is not
  // being created (older than a minute) is stale and replaced.
  Status reserve_name(const std::string& name, const std::string& id);
  Status release_name(const std::string& name);

  // Writes container.json (atomic); the directory must exist (Store::create_snapshot made it).
  Status save(const ContainerRecord& r) const;
  Status save_exit(const std::string& id, const ExitRecord& e) const;
  std::optional<ExitRecord> load_exit(const std::string& id) const;

  // By name, full id, or unambiguous id prefix (at least 1 digit); "no such container: X".
  Result<ContainerRecord> find(std::string_view name_or_id) const;
  // Every container with a container.json, oldest first. Unreadable ones are skipped with a
  // warning naming them.
  Result<std::vector<ContainerRecord>> list() const;
  // The members of group NAME (replicas), in replica order; empty when NAME is no group.
  Result<std::vector<ContainerRecord>> group(std::string_view name) const;

 private:
  std::string root_;
};

}  // namespace forker::engine
