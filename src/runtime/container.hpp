// The runtime's operations, one call per OCI command. The faces (cli/oci) only parse flags,
// call these and map errors to exit codes and log lines.
#pragma once

#include <signal.h>

#include <string>
#include <vector>

#include "core/error.hpp"
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

// "KILL", "SIGKILL", "9" -> 9.
Result<int> parse_signal(const std::string& name);

}  // namespace forker::runtime
