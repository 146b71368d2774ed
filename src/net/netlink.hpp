// rtnetlink through libmnl: links (bridge, veth), addresses and routes, in the calling thread's
// network namespace or in another one. One NETLINK_ROUTE socket per Netlink; every request waits
// for its ACK, and an error ACK becomes an Error naming the operation and the object:
// "netlink: add address 10.88.0.2/16 to eth0: File exists".
#pragma once

#include <linux/netlink.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "net/address.hpp"

struct mnl_socket;

namespace forker::net {

using MacAddress = std::array<uint8_t, 6>;

// What RTM_GETLINK tells about one link (the fields forker sets and checks).
struct LinkInfo {
  int index = 0;
  int mtu = 0;
  int master = 0;      // index of the bridge it is attached to; 0 when none
  unsigned flags = 0;  // IFF_UP, ...
  MacAddress mac{};
};

// One request as it goes on the wire, built apart from the socket so that unit tests can read
// it without root. Requests are small (a veth with its peer is under 200 bytes).
class NetlinkMessage {
 public:
  static constexpr size_t kCapacity = 512;
  NetlinkMessage(uint16_t type, uint16_t flags);
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  const nlmsghdr* header() const { return reinterpret_cast<const nlmsghdr*>(buf_.data()); }

 private:
  alignas(nlmsghdr) std::array<char, kCapacity> buf_{};
};

// Request builders (the sequence number is set when sent). Names are checked by the caller
// (check_link_name); a link named in a request with ifi_index 0 is looked up by the kernel.
namespace rtnl {
NetlinkMessage get_link(std::string_view name);
NetlinkMessage new_bridge(std::string_view name, int mtu);
// PEER_NETNS_FD < 0 leaves the peer in the sender's namespace.
NetlinkMessage new_veth(std::string_view host_name, std::string_view peer_name, int peer_netns_fd,
                        int mtu);
NetlinkMessage set_link_up(std::string_view name);
NetlinkMessage set_link_mtu(std::string_view name, int mtu);
NetlinkMessage set_link_master(std::string_view name, int master_index);
NetlinkMessage set_link_mac(std::string_view name, const MacAddress& mac);
NetlinkMessage set_bridge_port_hairpin(int index, bool on);
NetlinkMessage rename_link(int index, std::string_view to);
NetlinkMessage delete_link(std::string_view name);
NetlinkMessage new_address(int index, const IpAddress& a, int prefix);
// OIF 0: the kernel picks the link from the gateway's connected route.
NetlinkMessage new_default_route(const IpAddress& gateway, int oif);
NetlinkMessage dump_addresses();
NetlinkMessage dump_routes();

// Reply parsers: nullopt for messages of another kind or that the caller does not want.
std::optional<LinkInfo> parse_link(const nlmsghdr* nlh);
// (link index, address, prefix) of an RTM_NEWADDR.
struct AddressEntry {
  int index = 0;
  IpAddress address;
  int prefix = 0;
};
std::optional<AddressEntry> parse_address(const nlmsghdr* nlh);
// The destination of a main-table route that is not a default route.
std::optional<Subnet> parse_route(const nlmsghdr* nlh);
}  // namespace rtnl

// Interface names the kernel accepts: 1..15 bytes, no '/', ':' or whitespace, not "." or "..".
Status check_link_name(std::string_view name);
std::string mac_to_string(const MacAddress& mac);

class [[nodiscard]] Netlink {
 public:
  // A socket in the calling thread's network namespace.
  static Result<Netlink> open();
  // A socket created inside the namespace behind NETNS_FD: setns there, socket, setns back
  // (also on failure). A socket stays bound to the namespace it was created in.
  static Result<Netlink> open_in(int netns_fd);

  Netlink(Netlink&&) noexcept = default;
  Netlink& operator=(Netlink&&) noexcept = default;
  ~Netlink();

  // nullopt when there is no such link. Works in any namespace, unlike if_nametoindex.
  Result<std::optional<int>> link_index(const std::string& name);
  Result<std::optional<LinkInfo>> link(const std::string& name);

  // Fails with EEXIST ("File exists") when NAME is taken. An MTU of 0 keeps the kernel's.
  Status create_bridge(const std::string& name, int mtu);
  // HOST_NAME stays here; PEER_NAME is created directly inside PEER_NETNS_FD, so it never
  // appears in this namespace (PEER_NETNS_FD -1: here). MTU on both ends.
  Status create_veth(const std::string& host_name, const std::string& peer_name, int peer_netns_fd,
                     int mtu);
  Status set_master(const std::string& link, const std::string& bridge);
  Status set_master(const std::string& link, int bridge_index);  // saves the bridge lookup
  Status set_up(const std::string& link);
  // A bridge port in hairpin mode sends frames back out of the port they came in on: with
  // br_netfilter, a container's connection to its own published port is DNATed while bridged
  // and has to go back where it came from.
  Status set_hairpin(const std::string& link, bool on);
  Status set_mtu(const std::string& link, int mtu);
  // Before Linux 6.2 the link must be down (EBUSY otherwise).
  Status rename_link(const std::string& from, const std::string& to);
  Status set_mac(const std::string& link, const MacAddress& mac);
  // IPv6 addresses get IFA_F_NODAD, so they are usable at once (no duplicate detection wait).
  Status add_address(const std::string& link, const IpAddress& a, int prefix);
  // Main table. LINK empty: the kernel finds the link from the gateway's connected route
  // (a link-local IPv6 gateway needs LINK).
  Status add_default_route(const IpAddress& gateway, const std::string& link = {});
  Status delete_link(const std::string& name);  // a link already gone is not an error

  // Addresses of LINK (both families, link-local IPv6 included), for checks.
  Result<std::vector<std::pair<IpAddress, int>>> addresses(const std::string& link);
  // Destinations of main-table routes (both families) other than default routes.
  Result<std::vector<Subnet>> routes();

 private:
  struct SocketCloser {
    void operator()(mnl_socket* s) const;
  };
  using Callback = void (*)(const nlmsghdr* nlh, void* data);

  explicit Netlink(mnl_socket* sock, uint32_t portid);
  // Sends MSG and reads until its ACK (a dump: until NLMSG_DONE), handing each reply of this
  // request to ON_REPLY. Returns 0 or an errno (from the error ACK or the socket).
  int transact(NetlinkMessage& msg, Callback on_reply = nullptr, void* data = nullptr);
  // transact for a request whose only answer is its ACK; a failure names OP and OBJECT.
  Status request(NetlinkMessage msg, std::string_view op, std::string_view object);
  // A dump, restarted when the kernel reports it was interrupted by a change (NLM_F_DUMP_INTR).
  int dump(NetlinkMessage& msg, Callback on_reply, void* data, void (*reset)(void* data));
  Result<int> require_index(const std::string& name, std::string_view op, std::string_view object);

  std::unique_ptr<mnl_socket, SocketCloser> sock_;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
};

// Destinations of the calling namespace's routes (v4 and v6, main table, no default routes), so
// that network creation can refuse a subnet overlapping a route the host already has.
Result<std::vector<Subnet>> host_routes();

}  // namespace forker::net
