// forker's networks and their address leases, under a root directory (<storage root>/networks):
//   .lock                          flock held by NetworkStore::Lock (create, rm, ruleset rebuilds)
//   <id>/network.json              NetworkConfig, written once into a temp dir renamed into place
//   <id>/leases.lock               flock serialising lease allocation in this network
//   <id>/leases/<IPv4 address>     one lease: {"container_id", "address", "address6", "mac"}
// Names are found by scanning (there are few networks); uniqueness holds because create takes
// the store lock. A lease file is made by link(2) of a complete temp file, which fails with
// EEXIST like O_CREAT|O_EXCL, so two forker processes never hold the same address and no reader
// sees a half-written lease.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "net/address.hpp"

namespace forker::net {

inline constexpr const char* kDefaultNetwork = "forker0";  // the default network's name
inline constexpr const char* kDefaultSubnet = "10.88.0.0/16";
inline constexpr const char* kDefaultSubnetEnv = "FORKER_DEFAULT_SUBNET";

struct NetworkConfig {
  std::string name;
  std::string id;      // 64 hex digits
  std::string bridge;  // "forker0" for the default network, else "fk-" + id[0:12] (IFNAMSIZ)
  Subnet subnet;
  IpAddress gateway;
  std::optional<Subnet> subnet6;
  std::optional<IpAddress> gateway6;
  bool internal = false;  // no NAT to the outside
  std::string created;    // RFC 3339, UTC
  int mtu = 1500;

  nlohmann::json to_json() const;
  static Result<NetworkConfig> from_json(const nlohmann::json& j);
};

struct NetworkCreateOptions {
  std::string name;
  std::string subnet;    // CIDR; empty: the first free 10.N.0.0/16 from 10.89
  std::string gateway;   // empty: subnet.host(1); needs subnet
  std::string subnet6;   // CIDR; implies ipv6
  std::string gateway6;  // empty: subnet6.host(1); needs subnet6
  bool internal = false;
  bool ipv6 = false;  // without subnet6: a random fdXX:XXXX:XXXX::/64 (RFC 4193)
};

struct Lease {
  std::string container_id;
  IpAddress address;
  std::optional<IpAddress> address6;
  std::string mac;  // "02:42:" + the IPv4 address's bytes (docker's scheme), locally administered
};

// Docker's rule for names: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128; "host", "none" and "bridge"
// are taken by --network's modes.
Status validate_network_name(const std::string& name);

class NetworkStore {
 public:
  // The store's exclusive flock, held while the object lives. Re-entrant within one NetworkStore
  // and its copies (create and remove take it too, so a caller holding it may call them); a
  // second NetworkStore opened on the same root in the same process would wait for it.
  class [[nodiscard]] Lock {
   public:
    Lock(Lock&& other) noexcept;
    Lock& operator=(Lock&& other) noexcept;
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;
    ~Lock();

   private:
    friend class NetworkStore;
    struct State;
    explicit Lock(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::shared_ptr<State> state_;
  };

  // mkdir -p ROOT.
  static Result<NetworkStore> open(std::string root);
  const std::string& root() const { return root_; }

  // Validates the name (unique), the subnets (CIDR; no overlap with another network's nor with
  // HOST_ROUTES, which the caller reads from netlink; the default route is ignored) and the
  // gateways (inside their subnet, neither network nor broadcast address), then writes the network
  // all or nothing. "network create foo: subnet 10.1.0.0/16 overlaps the host route 10.1.2.0/24".
  Result<NetworkConfig> create(const NetworkCreateOptions& o,
                               const std::vector<Subnet>& host_routes);
  // The network named forker0 as it is, or a new one with the subnet from $FORKER_DEFAULT_SUBNET,
  // else 10.88.0.0/16.
  Result<NetworkConfig> ensure_default(const std::vector<Subnet>& host_routes);
  // By name, or a unique id prefix. "network foo: no such network".
  Result<NetworkConfig> get(const std::string& name_or_id);
  Result<std::vector<NetworkConfig>> list();  // sorted by name
  // Refused while a lease is held by a container that exists (CONTAINER_EXISTS):
  // "network rm foo: in use by container <id12>". Leases of gone containers go with the network.
  // The bridge and rules are the caller's to remove.
  Status remove(const std::string& name_or_id,
                const std::function<bool(const std::string&)>& container_exists);

  // CONTAINER_ID's lease in N: its existing one, else the lowest address from subnet.host(2) up
  // that is free or held by a container that no longer exists (CONTAINER_EXISTS false; that lease
  // is reclaimed), skipping the gateways and the broadcast address. IPv6 networks give the
  // address at the same offset in subnet6. "network foo: no free address in 10.88.0.0/16".
  Result<Lease> lease(const NetworkConfig& n, const std::string& container_id,
                      const std::function<bool(const std::string&)>& container_exists);
  // Drops CONTAINER_ID's lease; none (or no network any more) is ok.
  Status release(const NetworkConfig& n, const std::string& container_id);
  Result<std::vector<Lease>> leases(const NetworkConfig& n);  // sorted by address

  Result<Lock> lock();

 private:
  explicit NetworkStore(std::string root);
  std::string root_;
  std::shared_ptr<Lock::State> lock_state_;
};

}  // namespace forker::net
