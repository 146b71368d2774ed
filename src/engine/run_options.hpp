// What `forker run` was asked for, as typed (docker's flag names and meanings). The command
// line fills it; container_config.hpp turns it, with the image's defaults, into a config.json.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace forker::engine {

struct RunOptions {
  std::string image;                 // name, id, or a directory holding a root filesystem
  std::vector<std::string> command;  // after the image: replaces the image's Cmd
  std::optional<std::string> entrypoint;  // --entrypoint: "" clears the image's Entrypoint
  std::string name;                  // --name; empty: generated
  std::vector<std::string> env;      // -e KEY=VALUE, or KEY (taken from our environment)
  std::vector<std::string> env_files;  // --env-file
  std::string workdir;               // -w
  std::string user;                  // -u name|uid[:group|gid]
  std::string hostname;              // --hostname; empty: the name (as a hostname)
  bool interactive = false;          // -i
  bool tty = false;                  // -t
  bool detach = false;               // -d
  bool remove = false;               // --rm
  bool read_only = false;            // --read-only
  bool privileged = false;           // --privileged
  bool init = false;                 // --init
  std::string memory;                // -m / --memory / --memory-limit: "100m"
  std::string memory_swap;           // --memory-swap: "200m", "-1"
  std::string cpus;                  // --cpus "0.5"
  std::optional<uint64_t> cpu_shares;     // --cpu-shares
  std::optional<int64_t> cpu_quota;       // --cpu-quota (microseconds)
  std::optional<uint64_t> cpu_period;     // --cpu-period (microseconds)
  std::optional<int64_t> pids_limit;      // --pids-limit (<= 0: unlimited, as docker)
  std::vector<std::string> volumes;       // -v SRC:DST[:ro|rw] or NAME:DST, or DST (anonymous)
  std::vector<std::string> tmpfs;         // --tmpfs DST[:options]
  std::vector<std::string> cap_add, cap_drop;
  std::vector<std::string> security_opts;  // seccomp=unconfined|PATH, no-new-privileges[:true]
  std::vector<std::string> ulimits;        // nofile=1024:2048
  std::string restart = "no";              // no | on-failure[:N] | always | unless-stopped
  // bridge (default; "" means it) | none | host | container:NAME | ns:PATH | a network's name
  std::string network;
  std::vector<std::string> publish;        // -p [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]
  std::string stop_signal;                 // --stop-signal; empty: the image's, else SIGTERM
  std::optional<int> stop_timeout;         // --stop-timeout seconds (default 10)
  int replicas = 1;                        // --replicas N
  bool explain = false;                    // --explain
};

}  // namespace forker::engine
