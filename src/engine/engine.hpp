// The `forker` container operations: run (foreground or with a monitor), stop, kill, rm, wait,
// exec, list, inspect, logs. The command line only parses flags and prints; everything that
// touches a container is here, calling the runtime library directly (no forker-oci process).
//
// Where a container lives:
//   STORE/containers/<id>/        snapshot (upper, work, rootfs), config.json (the bundle),
//                                 container.json, exit.json, hostname, hosts, resolv.conf, ctr.log
//   RUNTIME_ROOT/<id>/            the runtime's state while it has a process (runtime/container.hpp)
// The root filesystem is mounted only inside the container's mount namespace: the host's mount
// table never shows it.
#pragma once

#include <sys/types.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/error.hpp"
#include "engine/container_network.hpp"
#include "engine/containers.hpp"
#include "engine/log_file.hpp"
#include "engine/run_options.hpp"
#include "image/store.hpp"
#include "runtime/container.hpp"

namespace forker::engine {

// docker's exit codes for a failed `run`: forker itself failed; the command could not be
// invoked; the command was not found.
inline constexpr int kExitEngineFailed = 125;
inline constexpr int kExitCannotInvoke = 126;
inline constexpr int kExitNotFound = 127;

// An error with the exit status `forker run`/`exec` should end with.
struct RunFailure {
  Error error;
  int exit_code = kExitEngineFailed;
};

enum class ContainerState { kCreated, kRunning, kPaused, kExited };
const char* state_name(ContainerState s);

struct ContainerView {
  ContainerRecord record;
  ContainerState state = ContainerState::kCreated;
  pid_t pid = 0;                    // while running
  std::optional<ExitRecord> exit;   // the last exit, if any
};

struct ExecRequest {
  std::vector<std::string> args;
  bool tty = false, interactive = false, detach = false;
  std::vector<std::string> env;  // KEY=VALUE
  std::string user;              // -u, resolved in the container's /etc/passwd
  std::string workdir;
  bool privileged = false;
};

class Engine {
 public:
  // The runtime's state goes under /run/forker (root) or $XDG_RUNTIME_DIR/forker.
  static Result<Engine> open(image::Store store);

  // Runs one container, or --replicas of them (always detached). Foreground: returns the
  // container's exit status. Detached: ON_STARTED gets each id once it runs; returns 0.
  // A failure's exit_code follows docker (125, 126, 127), and nothing is left behind.
  std::variant<int, RunFailure> run(const RunOptions& o,
                                    const std::function<void(const std::string& id)>& on_started);

  // SIGNAL (the container's stop signal when empty), then SIGKILL after TIMEOUT seconds
  // (the container's own when nullopt). NAME may be a replica group: all its members.
  Status stop(const std::string& name, std::optional<int> timeout);
  Status kill(const std::string& name, const std::string& signal);
  // Refuses a running container unless FORCE (then SIGKILL first).
  Status remove(const std::string& name, bool force);
  // Until the container exits; its exit code.
  Result<int> wait(const std::string& name);
  std::variant<int, RunFailure> exec(const std::string& name, const ExecRequest& r);

  Result<std::vector<ContainerView>> list(bool all) const;
  Result<ContainerView> view(const std::string& name) const;
  Result<nlohmann::json> inspect(const std::string& name) const;
  Status logs(const std::string& name, const LogPrintOptions& o) const;
  // The pids in the container's cgroup, as seen from the host.
  Result<std::vector<pid_t>> top(const std::string& name) const;
  Status pause(const std::string& name, bool pause);

  // docker ps's PORTS: "0.0.0.0:8080->80/tcp, ..."; inspect's NetworkSettings (addresses
  // only while RUNNING) and HostConfig.NetworkMode.
  std::string ports_text(const ContainerRecord& r) const;
  nlohmann::json network_settings(const ContainerRecord& r, bool running) const;
  std::string network_mode_text(const ContainerRecord& r) const;
  // `network connect|disconnect NETWORK CONTAINER`: recorded for later starts, and applied at
  // once to a running container.
  Status network_connect(const std::string& network, const std::string& name);
  Status network_disconnect(const std::string& network, const std::string& name);

  // Names of members when NAME is a replica group, else {NAME}.
  Result<std::vector<ContainerRecord>> resolve(const std::string& name) const;

  // Internal, exposed for the detached monitor (monitor.cpp).
  image::Store& store() { return store_; }
  ContainerStore& containers() { return containers_; }
  const ContainerStore& containers() const { return containers_; }
  const runtime::GlobalOptions& runtime_options() const { return rt_; }
  // Networks and the containers' attachments to them (networks live in the store).
  ContainerNetworking networking() const { return ContainerNetworking(store_.root()); }

 private:
  Engine(image::Store store, ContainerStore containers, runtime::GlobalOptions rt)
      : store_(std::move(store)), containers_(std::move(containers)), rt_(std::move(rt)) {}
  std::variant<int, RunFailure> run_one(const RunOptions& o, const std::string& name,
                                        const std::string& group, int replica,
                                        const NetworkRequest& network,
                                        const std::function<void(const std::string& id)>& on_started);
  Status remove_record(const ContainerRecord& r);

  image::Store store_;
  ContainerStore containers_;
  runtime::GlobalOptions rt_;
};

}  // namespace forker::engine
