#include "net/netlink.hpp"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>

#include <cctype>
#include <cstdio>
#include <cstring>

#include "core/unique_fd.hpp"

namespace forker::net {
namespace {

constexpr uint16_t kNew = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
constexpr uint16_t kChange = NLM_F_REQUEST | NLM_F_ACK;
constexpr uint16_t kDump = NLM_F_REQUEST | NLM_F_DUMP;
// Large enough for the biggest message the kernel puts in one dump datagram (it sizes them by
// the largest buffer we have read with, up to 32 KiB): libmnl's MNL_SOCKET_DUMP_SIZE.
constexpr size_t kReceiveSize = 32768;
// A dump the kernel flags as interrupted by a concurrent change is read again, a few times.
constexpr int kDumpAttempts = 5;

ifinfomsg* put_ifinfo(nlmsghdr* nlh) {
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  return ifi;
}

// A name longer than the kernel takes is cut at 64 bytes, not 15: the kernel still refuses it
// (no other link is silently meant), and the message cannot outgrow its buffer.
void put_name(nlmsghdr* nlh, uint16_t type, std::string_view name) {
  mnl_attr_put_strz(nlh, type, std::string(name.substr(0, 64)).c_str());
}

void put_mtu(nlmsghdr* nlh, int mtu) {
  if (mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
}

NetlinkMessage link_message(uint16_t type, uint16_t flags, std::string_view name) {
  NetlinkMessage m(type, flags);
  put_ifinfo(m.header());
  if (!name.empty()) put_name(m.header(), IFLA_IFNAME, name);
  return m;
}

// Attributes of one message by type; later duplicates win, unknown types are skipped.
template <size_t Max>
std::array<const nlattr*, Max + 1> parse_attrs(const nlmsghdr* nlh, size_t header_size) {
  std::array<const nlattr*, Max + 1> tb{};
  mnl_attr_parse(
      nlh, static_cast<unsigned>(header_size),
      [](const nlattr* a, void* data) {
        auto* table = static_cast<std::array<const nlattr*, Max + 1>*>(data);
        uint16_t type = mnl_attr_get_type(a);
        if (type <= Max) (*table)[type] = a;
        return MNL_CB_OK;
      },
      &tb);
  return tb;
}

std::optional<uint32_t> get_u32(const nlattr* a) {
  if (!a || mnl_attr_get_payload_len(a) < sizeof(uint32_t)) return std::nullopt;
  return mnl_attr_get_u32(a);
}

std::optional<IpAddress> get_ip(const nlattr* a, int family) {
  size_t len = family == AF_INET ? 4 : 16;
  if (!a || mnl_attr_get_payload_len(a) != len) return std::nullopt;
  IpAddress ip;
  ip.family = family;
  std::memcpy(ip.bytes.data(), mnl_attr_get_payload(a), len);
  return ip;
}

bool has_header(const nlmsghdr* nlh, uint16_t type, size_t header_size) {
  return nlh->nlmsg_type == type && nlh->nlmsg_len >= mnl_nlmsg_size(header_size);
}

bool is_ip_family(int family) { return family == AF_INET || family == AF_INET6; }

}  // namespace

NetlinkMessage::NetlinkMessage(uint16_t type, uint16_t flags) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf_.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
}

namespace rtnl {

NetlinkMessage get_link(std::string_view name) {
  NetlinkMessage m = link_message(RTM_GETLINK, kChange, name);
  // Only the index, MTU, master, flags and address are read: spare the kernel the counters.
  mnl_attr_put_u32(m.header(), IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  return m;
}

NetlinkMessage new_bridge(std::string_view name, int mtu) {
  NetlinkMessage m = link_message(RTM_NEWLINK, kNew, name);
  nlmsghdr* nlh = m.header();
  put_mtu(nlh, mtu);
  nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
  mnl_attr_nest_end(nlh, info);
  return m;
}

NetlinkMessage new_veth(std::string_view host_name, std::string_view peer_name, int peer_netns_fd,
                        int mtu) {
  NetlinkMessage m = link_message(RTM_NEWLINK, kNew, host_name);
  nlmsghdr* nlh = m.header();
  put_mtu(nlh, mtu);
  nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  nlattr* peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  // The peer is described as a RTM_NEWLINK of its own: an ifinfomsg, then its attributes.
  put_ifinfo(nlh);
  put_name(nlh, IFLA_IFNAME, peer_name);
  put_mtu(nlh, mtu);
  // Created directly in the target namespace: it never shows up (nor clashes) here.
  if (peer_netns_fd >= 0)
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, info);
  return m;
}

// RTM_SETLINK with ifi_index 0 finds the link by IFLA_IFNAME: no index lookup first.
NetlinkMessage set_link_up(std::string_view name) {
  NetlinkMessage m(RTM_SETLINK, kChange);
  ifinfomsg* ifi = put_ifinfo(m.header());
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  put_name(m.header(), IFLA_IFNAME, name);
  return m;
}

NetlinkMessage set_link_mtu(std::string_view name, int mtu) {
  NetlinkMessage m = link_message(RTM_SETLINK, kChange, name);
  mnl_attr_put_u32(m.header(), IFLA_MTU, static_cast<uint32_t>(mtu));
  return m;
}

NetlinkMessage set_link_master(std::string_view name, int master_index) {
  NetlinkMessage m = link_message(RTM_SETLINK, kChange, name);
  mnl_attr_put_u32(m.header(), IFLA_MASTER, static_cast<uint32_t>(master_index));
  return m;
}

// A bridge port's flags are set through AF_BRIDGE, which names the port by index only.
NetlinkMessage set_bridge_port_hairpin(int index, bool on) {
  NetlinkMessage m(RTM_SETLINK, kChange);
  ifinfomsg* ifi = put_ifinfo(m.header());
  ifi->ifi_family = AF_BRIDGE;
  ifi->ifi_index = index;
  nlattr* nest = mnl_attr_nest_start(m.header(), IFLA_PROTINFO);
  mnl_attr_put_u8(m.header(), IFLA_BRPORT_MODE, on ? 1 : 0);
  mnl_attr_nest_end(m.header(), nest);
  return m;
}

NetlinkMessage set_link_mac(std::string_view name, const MacAddress& mac) {
  NetlinkMessage m = link_message(RTM_SETLINK, kChange, name);
  mnl_attr_put(m.header(), IFLA_ADDRESS, mac.size(), mac.data());
  return m;
}

// Here IFLA_IFNAME is the new name, so the link is named by its index.
NetlinkMessage rename_link(int index, std::string_view to) {
  NetlinkMessage m(RTM_SETLINK, kChange);
  put_ifinfo(m.header())->ifi_index = index;
  put_name(m.header(), IFLA_IFNAME, to);
  return m;
}

NetlinkMessage delete_link(std::string_view name) {
  return link_message(RTM_DELLINK, kChange, name);
}

NetlinkMessage new_address(int index, const IpAddress& a, int prefix) {
  NetlinkMessage m(RTM_NEWADDR, kNew);
  nlmsghdr* nlh = m.header();
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(a.family);
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix);
  // Without NODAD an IPv6 address stays "tentative" (unusable) for a second or more.
  ifa->ifa_flags = a.is_v4() ? 0 : IFA_F_NODAD;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(index);
  mnl_attr_put(nlh, IFA_LOCAL, a.length(), a.bytes.data());
  mnl_attr_put(nlh, IFA_ADDRESS, a.length(), a.bytes.data());
  if (a.is_v4() && prefix < 31) {  // the subnet's broadcast, as docker's (netlink.AddrAdd) has
    IpAddress brd = a;
    for (int i = prefix; i < 32; ++i) brd.bytes[i / 8] |= static_cast<uint8_t>(1u << (7 - i % 8));
    mnl_attr_put(nlh, IFA_BROADCAST, 4, brd.bytes.data());
  }
  return m;
}

NetlinkMessage new_default_route(const IpAddress& gateway, int oif) {
  NetlinkMessage m(RTM_NEWROUTE, kNew);
  nlmsghdr* nlh = m.header();
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<uint8_t>(gateway.family);
  rtm->rtm_dst_len = 0;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  mnl_attr_put(nlh, RTA_GATEWAY, gateway.length(), gateway.bytes.data());
  if (oif > 0) mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(oif));
  return m;
}

NetlinkMessage dump_addresses() {
  NetlinkMessage m(RTM_GETADDR, kDump);
  static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(m.header(), sizeof(ifaddrmsg)))->ifa_family =
      AF_UNSPEC;
  return m;
}

NetlinkMessage dump_routes() {
  NetlinkMessage m(RTM_GETROUTE, kDump);
  static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(m.header(), sizeof(rtmsg)))->rtm_family =
      AF_UNSPEC;
  return m;
}

std::optional<LinkInfo> parse_link(const nlmsghdr* nlh) {
  if (!has_header(nlh, RTM_NEWLINK, sizeof(ifinfomsg))) return std::nullopt;
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  auto tb = parse_attrs<IFLA_MAX>(nlh, sizeof(ifinfomsg));
  LinkInfo info;
  info.index = ifi->ifi_index;
  info.flags = ifi->ifi_flags;
  info.mtu = static_cast<int>(get_u32(tb[IFLA_MTU]).value_or(0));
  info.master = static_cast<int>(get_u32(tb[IFLA_MASTER]).value_or(0));
  if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == info.mac.size())
    std::memcpy(info.mac.data(), mnl_attr_get_payload(tb[IFLA_ADDRESS]), info.mac.size());
  return info;
}

std::optional<AddressEntry> parse_address(const nlmsghdr* nlh) {
  if (!has_header(nlh, RTM_NEWADDR, sizeof(ifaddrmsg))) return std::nullopt;
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  if (!is_ip_family(ifa->ifa_family)) return std::nullopt;
  auto tb = parse_attrs<IFA_MAX>(nlh, sizeof(ifaddrmsg));
  // IFA_LOCAL is the link's own address; IFA_ADDRESS is the peer's on point-to-point links.
  auto ip = get_ip(tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS], ifa->ifa_family);
  if (!ip) return std::nullopt;
  return AddressEntry{static_cast<int>(ifa->ifa_index), *ip, ifa->ifa_prefixlen};
}

std::optional<Subnet> parse_route(const nlmsghdr* nlh) {
  if (!has_header(nlh, RTM_NEWROUTE, sizeof(rtmsg))) return std::nullopt;
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  if (!is_ip_family(rtm->rtm_family) || rtm->rtm_dst_len == 0) return std::nullopt;
  if (rtm->rtm_flags & RTM_F_CLONED) return std::nullopt;  // a cache entry, not a route
  // Routes that claim a destination; local, broadcast and multicast ones live elsewhere.
  switch (rtm->rtm_type) {
    case RTN_UNICAST:
    case RTN_BLACKHOLE:
    case RTN_UNREACHABLE:
    case RTN_PROHIBIT:
      break;
    default:
      return std::nullopt;
  }
  auto tb = parse_attrs<RTA_MAX>(nlh, sizeof(rtmsg));
  // rtm_table is 8 bits; RTA_TABLE holds the full id.
  if (get_u32(tb[RTA_TABLE]).value_or(rtm->rtm_table) != RT_TABLE_MAIN) return std::nullopt;
  auto dst = get_ip(tb[RTA_DST], rtm->rtm_family);
  int max = rtm->rtm_family == AF_INET ? 32 : 128;
  if (!dst || rtm->rtm_dst_len > max) return std::nullopt;
  for (int i = rtm->rtm_dst_len; i < max; ++i)
    dst->bytes[i / 8] &= static_cast<uint8_t>(~(1u << (7 - i % 8)));
  return Subnet{*dst, rtm->rtm_dst_len};
}

}  // namespace rtnl

Status check_link_name(std::string_view name) {
  bool ok = !name.empty() && name.size() < IFNAMSIZ && name != "." && name != "..";
  for (char c : name)
    if (c == '/' || c == ':' || c == '\0' || std::isspace(static_cast<unsigned char>(c)))
      ok = false;
  if (ok) return forker::ok();
  return make_error("netlink: invalid link name",
                    "\"" + std::string(name) + "\" (1-15 characters, no '/', ':' or spaces)");
}

std::string mac_to_string(const MacAddress& mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

void Netlink::SocketCloser::operator()(mnl_socket* s) const { mnl_socket_close(s); }

Netlink::Netlink(mnl_socket* sock, uint32_t portid) : sock_(sock), portid_(portid) {}
Netlink::~Netlink() = default;

Result<Netlink> Netlink::open() {
  std::unique_ptr<mnl_socket, SocketCloser> sock(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC));
  if (!sock) return sys_error("netlink: open", "NETLINK_ROUTE socket");
  // Error ACKs without a copy of the request (Linux 4.3; older kernels ignore the option).
  int one = 1;
  (void)mnl_socket_setsockopt(sock.get(), NETLINK_CAP_ACK, &one, sizeof one);
  if (mnl_socket_bind(sock.get(), 0, MNL_SOCKET_AUTOPID) < 0)
    return sys_error("netlink: bind", "NETLINK_ROUTE socket");
  uint32_t portid = mnl_socket_get_portid(sock.get());
  return Netlink(sock.release(), portid);
}

Result<Netlink> Netlink::open_in(int netns_fd) {
  // setns changes only this thread, so the thread's own namespace is the one to return to.
  UniqueFd original(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!original) return sys_error("netlink: open", "/proc/thread-self/ns/net");
  std::string ns = "network namespace (fd " + std::to_string(netns_fd) + ")";
  if (::setns(netns_fd, CLONE_NEWNET) < 0) return sys_error("netlink: setns into", ns);
  Result<Netlink> nl = open();
  // Failing here leaves the thread in the other namespace: callers must not go on.
  if (::setns(original.get(), CLONE_NEWNET) < 0)
    return sys_error("netlink: setns back to the original namespace from", ns);
  return nl;
}

int Netlink::transact(NetlinkMessage& msg, Callback on_reply, void* data) {
  nlmsghdr* req = msg.header();
  req->nlmsg_seq = ++seq_;
  if (mnl_socket_sendto(sock_.get(), req, req->nlmsg_len) < 0) return errno;
  alignas(nlmsghdr) std::array<char, kReceiveSize> buf;
  bool interrupted = false;
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;  // ENOSPC: a datagram larger than the buffer (MSG_TRUNC)
    }
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      // Left from an earlier request that stopped reading early: not ours.
      if (nlh->nlmsg_seq != seq_ || (nlh->nlmsg_pid != 0 && nlh->nlmsg_pid != portid_)) continue;
      if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
      switch (nlh->nlmsg_type) {
        case NLMSG_NOOP:
          break;
        case NLMSG_ERROR: {  // the ACK: error 0, or minus an errno
          if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) return EBADMSG;
          return -static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh))->error;
        }
        case NLMSG_DONE: {  // the end of a dump; a dump that failed midway carries -errno
          int err = 0;
          if (nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(int)))
            std::memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof err);
          if (err < 0) return -err;
          return interrupted ? EINTR : 0;
        }
        case NLMSG_OVERRUN:
          return ENOBUFS;
        default:
          if (on_reply) on_reply(nlh, data);
      }
    }
  }
}

int Netlink::dump(NetlinkMessage& msg, Callback on_reply, void* data, void (*reset)(void* data)) {
  int err = 0;
  for (int attempt = 0; attempt < kDumpAttempts; ++attempt) {
    reset(data);
    err = transact(msg, on_reply, data);
    if (err != EINTR) break;
  }
  return err;
}

Status Netlink::request(NetlinkMessage msg, std::string_view op, std::string_view object) {
  if (int err = transact(msg); err != 0)
    return sys_error_errno(err, "netlink: " + std::string(op), object);
  return ok();
}

Result<std::optional<LinkInfo>> Netlink::link(const std::string& name) {
  FORKER_TRY(check_link_name(name));
  NetlinkMessage msg = rtnl::get_link(name);
  std::optional<LinkInfo> info;
  int err = transact(
      msg,
      [](const nlmsghdr* nlh, void* data) {
        if (auto l = rtnl::parse_link(nlh)) *static_cast<std::optional<LinkInfo>*>(data) = *l;
      },
      &info);
  if (err == ENODEV) return std::optional<LinkInfo>();
  if (err != 0) return sys_error_errno(err, "netlink: get link", name);
  if (!info) return sys_error_errno(EBADMSG, "netlink: get link", name);
  return info;
}

Result<std::optional<int>> Netlink::link_index(const std::string& name) {
  auto info = FORKER_TRY(link(name));
  if (!info) return std::optional<int>();
  return std::optional<int>(info->index);
}

Result<int> Netlink::require_index(const std::string& name, std::string_view op,
                                   std::string_view object) {
  auto index = link_index(name);
  if (!index) return std::move(index).error();
  if (!*index) return sys_error_errno(ENODEV, "netlink: " + std::string(op), object);
  return **index;
}

Status Netlink::create_bridge(const std::string& name, int mtu) {
  FORKER_TRY(check_link_name(name));
  return request(rtnl::new_bridge(name, mtu), "create bridge", name);
}

Status Netlink::create_veth(const std::string& host_name, const std::string& peer_name,
                            int peer_netns_fd, int mtu) {
  FORKER_TRY(check_link_name(host_name));
  FORKER_TRY(check_link_name(peer_name));
  return request(rtnl::new_veth(host_name, peer_name, peer_netns_fd, mtu), "create veth",
                 host_name + " with peer " + peer_name);
}

Status Netlink::set_master(const std::string& link, const std::string& bridge) {
  std::string object = link + " to bridge " + bridge;
  int index = FORKER_TRY(require_index(bridge, "attach", object));
  FORKER_TRY(check_link_name(link));
  return request(rtnl::set_link_master(link, index), "attach", object);
}

Status Netlink::set_master(const std::string& link, int bridge_index) {
  FORKER_TRY(check_link_name(link));
  return request(rtnl::set_link_master(link, bridge_index), "attach",
                 link + " to bridge #" + std::to_string(bridge_index));
}

Status Netlink::set_up(const std::string& link) {
  FORKER_TRY(check_link_name(link));
  return request(rtnl::set_link_up(link), "set up", link);
}

Status Netlink::set_mtu(const std::string& link, int mtu) {
  FORKER_TRY(check_link_name(link));
  return request(rtnl::set_link_mtu(link, mtu), "set mtu " + std::to_string(mtu) + " on", link);
}

Status Netlink::rename_link(const std::string& from, const std::string& to) {
  std::string object = from + " to " + to;
  FORKER_TRY(check_link_name(to));
  int index = FORKER_TRY(require_index(from, "rename link", object));
  return request(rtnl::rename_link(index, to), "rename link", object);
}

Status Netlink::set_hairpin(const std::string& link, bool on) {
  int index = FORKER_TRY(require_index(link, "set hairpin mode on", link));
  return request(rtnl::set_bridge_port_hairpin(index, on), "set hairpin mode on", link);
}

Status Netlink::set_mac(const std::string& link, const MacAddress& mac) {
  FORKER_TRY(check_link_name(link));
  return request(rtnl::set_link_mac(link, mac), "set mac address " + mac_to_string(mac) + " on",
                 link);
}

Status Netlink::add_address(const std::string& link, const IpAddress& a, int prefix) {
  std::string object = a.str() + "/" + std::to_string(prefix) + " to " + link;
  int max = a.is_v4() ? 32 : 128;
  if (!is_ip_family(a.family) || prefix < 0 || prefix > max)
    return make_error("netlink: add address", object + ": not an address and prefix");
  int index = FORKER_TRY(require_index(link, "add address", object));
  return request(rtnl::new_address(index, a, prefix), "add address", object);
}

Status Netlink::add_default_route(const IpAddress& gateway, const std::string& link) {
  std::string object = "via " + gateway.str() + (link.empty() ? "" : " dev " + link);
  if (!is_ip_family(gateway.family))
    return make_error("netlink: add default route", "with an unset gateway");
  int oif = 0;
  if (!link.empty()) oif = FORKER_TRY(require_index(link, "add default route", object));
  return request(rtnl::new_default_route(gateway, oif), "add default route", object);
}

Status Netlink::delete_link(const std::string& name) {
  FORKER_TRY(check_link_name(name));
  NetlinkMessage msg = rtnl::delete_link(name);
  int err = transact(msg);
  if (err != 0 && err != ENODEV) return sys_error_errno(err, "netlink: delete link", name);
  return ok();
}

Result<std::vector<std::pair<IpAddress, int>>> Netlink::addresses(const std::string& link) {
  int index = FORKER_TRY(require_index(link, "list addresses of", link));
  // Filtering by index in the kernel needs NETLINK_GET_STRICT_CHK; one link has few addresses
  // and a namespace few links, so the dump is filtered here.
  struct Collect {
    int index;
    std::vector<std::pair<IpAddress, int>> out;
  } collect{index, {}};
  NetlinkMessage msg = rtnl::dump_addresses();
  int err = dump(
      msg,
      [](const nlmsghdr* nlh, void* data) {
        auto* c = static_cast<Collect*>(data);
        auto e = rtnl::parse_address(nlh);
        if (e && e->index == c->index) c->out.emplace_back(e->address, e->prefix);
      },
      &collect, [](void* data) { static_cast<Collect*>(data)->out.clear(); });
  if (err != 0) return sys_error_errno(err, "netlink: list addresses of", link);
  return std::move(collect.out);
}

Result<std::vector<Subnet>> Netlink::routes() {
  std::vector<Subnet> out;
  NetlinkMessage msg = rtnl::dump_routes();
  int err = dump(
      msg,
      [](const nlmsghdr* nlh, void* data) {
        if (auto s = rtnl::parse_route(nlh)) static_cast<std::vector<Subnet>*>(data)->push_back(*s);
      },
      &out, [](void* data) { static_cast<std::vector<Subnet>*>(data)->clear(); });
  if (err != 0) return sys_error_errno(err, "netlink: list routes", "");
  return out;
}

Result<std::vector<Subnet>> host_routes() {
  Netlink nl = FORKER_TRY(Netlink::open());
  return nl.routes();
}

}  // namespace forker::net
