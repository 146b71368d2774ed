// A container's network: what --network and -p ask for (decided once, before anything is
// created, and kept in container.json), and its live attachment while it runs.
//
// Live state is machine-wide and lives in /run/forker-network (tmpfs, so it goes with the
// bridges and rules at a reboot; rootless: $XDG_RUNTIME_DIR/forker-network, the user's own):
//   networks/<bridge>.json    a network whose bridge is up on this boot
//   endpoints/<id>.json       a running container's addresses, veths and published ports
//   ruleset.nft               the last ruleset applied to table inet forker
//   slirp/<id12>.sock, .log   slirp4netns's API socket and output (--network slirp4netns)
// The nftables table and every container's /etc/hosts are rebuilt from these files whenever
// one of them changes: no daemon holds the state.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/undo.hpp"
#include "engine/containers.hpp"
#include "engine/run_options.hpp"
#include "image/store.hpp"
#include "net/address.hpp"
#include "net/netlink.hpp"
#include "net/networks.hpp"
#include "net/port_spec.hpp"

namespace forker::engine {

struct NetworkRequest {
  std::string mode = "none";            // none | host | bridge | slirp4netns | container | ns
  std::vector<std::string> networks;    // bridge: network names; the first has the default route
  std::string target;                   // container: the target's id; ns: the namespace's path
  std::vector<net::PortMapping> ports;  // -p, host ports resolved
  nlohmann::json to_json() const;
  static Result<NetworkRequest> from_json(const nlohmann::json& j);
};

// One container's attachment to one network while it runs.
struct Attachment {
  std::string network, bridge, interface;  // interface: eth0, eth1... inside the container
  net::Subnet subnet;
  std::optional<net::Subnet> subnet6;
  bool internal = false;
  net::IpAddress address, gateway;
  std::optional<net::IpAddress> address6;
  std::string mac, host_veth;
};

struct Endpoint {
  std::string container_id, name, group, hostname;
  std::string hosts_file;  // the container's /etc/hosts on the host (bound into it)
  std::vector<Attachment> attachments;
  std::vector<net::PortMapping> ports;
  pid_t slirp_pid = 0;     // slirp4netns mode: its process and API socket
  std::string api_socket;
  nlohmann::json to_json() const;
  static Result<Endpoint> from_json(const nlohmann::json& j);
};

// A fresh endpoint record for REC's start with request R.
Endpoint new_endpoint(const ContainerRecord& rec, const NetworkRequest& r,
                      const std::string& hostname, const std::string& container_dir);

// The /etc/hosts of SELF: localhost lines, its own addresses, then every peer sharing one of
// its networks (name, hostname and replica group as aliases).
std::string render_hosts(const Endpoint& self, const std::vector<Endpoint>& all);

class ContainerNetworking {
 public:
  // Networks are kept under STORE_ROOT/networks; live state under STATE_ROOT.
  explicit ContainerNetworking(std::string store_root,
                               std::string state_root = default_state_root());
  // /run/forker-network for root; else $XDG_RUNTIME_DIR/forker-network, or
  // /tmp/forker-network-UID without XDG_RUNTIME_DIR.
  static std::string default_state_root();

  // --network and -p, checked before anything is created: named networks exist, published
  // ports are free on the host and not published by another container (REPLICA_GROUP's own
  // members excepted). Random host ports are chosen here, once for all replicas.
  Result<NetworkRequest> plan(const RunOptions& o, const ContainerStore& containers);
  // The path of the network namespace a container/ns request joins (container: the target's
  // current init), for config.json.
  Result<std::string> netns_path(const NetworkRequest& r, const std::string& runtime_root) const;

  // After the container's init exists (in its own network namespace, PID), before it execs:
  // veths into its namespace, addresses, routes, then hosts files and the ruleset; or a
  // slirp4netns child of this process, which exits with it. On failure nothing of it is left.
  // NETNS_FD and USERNS_FD: the init's namespaces opened while it could still be (see
  // runtime::Created); -1 opens them through /proc/PID.
  Status attach(const ContainerRecord& rec, const NetworkRequest& r, const std::string& hostname,
                const std::string& container_dir, pid_t pid, int netns_fd = -1,
                int userns_fd = -1);
  // After the container's exit: its veths, its endpoint, its place in peers' hosts files and in
  // the rules go. Safe to call when nothing is attached. Problems are logged, not returned.
  void detach(const std::string& container_id);
  // rm: the container's address leases go back to their networks.
  void release(const ContainerRecord& rec);
  // `network connect`/`disconnect` of a running bridge container (PID: its init): an interface
  // eth<N> on NETWORK appears or goes at once, peers' hosts files and the rules follow. The
  // caller keeps container.json's list of networks in step.
  Status connect(const ContainerRecord& rec, const std::string& network, pid_t pid);
  Status disconnect(const ContainerRecord& rec, const std::string& network);

  // Every endpoint now attached (for ps, inspect, port).
  std::vector<Endpoint> endpoints() const;
  std::optional<Endpoint> endpoint(const std::string& container_id) const;

  // `forker network ...`.
  Result<net::NetworkConfig> create_network(const net::NetworkCreateOptions& o);
  Status remove_network(const std::string& name, const ContainerStore& containers);
  Result<std::vector<net::NetworkConfig>> list_networks();
  Result<net::NetworkConfig> get_network(const std::string& name);

 private:
  Result<net::NetworkStore> store() const;
  // The machine-wide lock on the live state (STATE_ROOT/.lock).
  Result<image::FileLock> lock() const;
  Result<net::NetworkConfig> network_for(net::NetworkStore& s, const std::string& name);
  Status bring_up(const net::NetworkConfig& n);
  struct Link;
  // One veth into the container's namespace on NETWORK as eth<SLOT>, with its lease.
  Result<Attachment> attach_one(net::NetworkStore& s, Link& link, const std::string& id,
                                const std::string& network, int slot, bool default_route,
                                UndoStack& undo);
  // Writes the endpoint file and rebuilds hosts files and rules (UNDO restores the file).
  Status save_endpoint(const Endpoint& ep, UndoStack& undo);
  // Where the store keeps network N (recorded with its bridge, to know the bridge's owner).
  std::string networks_dir(const net::NetworkConfig& n) const;
  // Deletes BRIDGE when the network that made it is gone (the caller holds the lock).
  Status reclaim_stale_bridge(net::Netlink& nl, const std::string& bridge);
  // Rewrites hosts files and the ruleset from the live state (the caller holds the lock).
  Status rebuild();
  // attach() for --network slirp4netns.
  Status attach_slirp(const ContainerRecord& rec, const NetworkRequest& r,
                      const std::string& hostname, const std::string& container_dir, pid_t pid,
                      int netns_fd, int userns_fd);

  std::string store_root_, state_root_;
};

}  // namespace forker::engine
