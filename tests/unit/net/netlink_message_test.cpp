// The rtnetlink requests as they go on the wire, read back with libmnl (no root, no socket);
// and the reply parsers on replies built here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>

#include <cstring>
#include <map>
#include <string>

#include "net/netlink.hpp"

namespace forker::net {
namespace {

using ::testing::HasSubstr;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

// Attributes of a message (or of a nest) by type.
using Attrs = std::map<uint16_t, const nlattr*>;

int collect(const nlattr* a, void* data) {
  (*static_cast<Attrs*>(data))[mnl_attr_get_type(a)] = a;
  return MNL_CB_OK;
}

Attrs attrs_of(const nlmsghdr* nlh, size_t header) {
  Attrs out;
  EXPECT_EQ(mnl_attr_parse(nlh, static_cast<unsigned>(header), collect, &out), MNL_CB_OK);
  return out;
}

Attrs nested(const nlattr* nest) {
  Attrs out;
  EXPECT_EQ(mnl_attr_parse_nested(nest, collect, &out), MNL_CB_OK);
  return out;
}

std::string str(const nlattr* a) { return a ? mnl_attr_get_str(a) : "(missing)"; }

std::string ip_of(const nlattr* a, int family) {
  IpAddress out;
  out.family = family;
  std::memcpy(out.bytes.data(), mnl_attr_get_payload(a), mnl_attr_get_payload_len(a));
  return out.str();
}

TEST(NetNetlinkMessage, NewBridgeNestsKindInLinkinfo) {
  NetlinkMessage m = rtnl::new_bridge("fknl-br0", 1400);
  const nlmsghdr* nlh = m.header();
  EXPECT_EQ(nlh->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  EXPECT_EQ(ifi->ifi_index, 0);
  Attrs a = attrs_of(nlh, sizeof(ifinfomsg));
  EXPECT_EQ(str(a[IFLA_IFNAME]), "fknl-br0");
  ASSERT_TRUE(a[IFLA_MTU]);
  EXPECT_EQ(mnl_attr_get_u32(a[IFLA_MTU]), 1400u);
  ASSERT_TRUE(a[IFLA_LINKINFO]);
  Attrs info = nested(a[IFLA_LINKINFO]);
  EXPECT_EQ(str(info[IFLA_INFO_KIND]), "bridge");
}

TEST(NetNetlinkMessage, NewVethCarriesPeerWithItsOwnHeaderAndNamespace) {
  NetlinkMessage m = rtnl::new_veth("fknl-v0h", "eth0", 7, 1450);
  const nlmsghdr* nlh = m.header();
  EXPECT_EQ(nlh->nlmsg_type, RTM_NEWLINK);
  EXPECT_TRUE(nlh->nlmsg_flags & NLM_F_EXCL);
  Attrs a = attrs_of(nlh, sizeof(ifinfomsg));
  EXPECT_EQ(str(a[IFLA_IFNAME]), "fknl-v0h");
  EXPECT_EQ(mnl_attr_get_u32(a[IFLA_MTU]), 1450u);
  EXPECT_EQ(a.count(IFLA_NET_NS_FD), 0u) << "the host end stays here";
  Attrs info = nested(a[IFLA_LINKINFO]);
  EXPECT_EQ(str(info[IFLA_INFO_KIND]), "veth");
  ASSERT_TRUE(info[IFLA_INFO_DATA]);
  Attrs data = nested(info[IFLA_INFO_DATA]);
  ASSERT_TRUE(data[VETH_INFO_PEER]);
  // VETH_INFO_PEER: an ifinfomsg, then the peer's attributes.
  const nlattr* peer = data[VETH_INFO_PEER];
  ASSERT_GE(mnl_attr_get_payload_len(peer), NLMSG_ALIGN(sizeof(ifinfomsg)));
  auto* pifi = static_cast<const ifinfomsg*>(mnl_attr_get_payload(peer));
  EXPECT_EQ(pifi->ifi_family, AF_UNSPEC);
  EXPECT_EQ(pifi->ifi_index, 0);
  Attrs p;
  const char* start = static_cast<const char*>(mnl_attr_get_payload(peer));
  const char* end = start + mnl_attr_get_payload_len(peer);
  for (auto* at = reinterpret_cast<const nlattr*>(start + NLMSG_ALIGN(sizeof(ifinfomsg)));
       mnl_attr_ok(at, static_cast<int>(end - reinterpret_cast<const char*>(at)));
       at = mnl_attr_next(at))
    p[mnl_attr_get_type(at)] = at;
  EXPECT_EQ(str(p[IFLA_IFNAME]), "eth0");
  ASSERT_TRUE(p[IFLA_MTU]);
  EXPECT_EQ(mnl_attr_get_u32(p[IFLA_MTU]), 1450u);
  ASSERT_TRUE(p[IFLA_NET_NS_FD]);
  EXPECT_EQ(mnl_attr_get_u32(p[IFLA_NET_NS_FD]), 7u);
  // The nests close where the message ends.
  const char* msg_end = reinterpret_cast<const char*>(nlh) + nlh->nlmsg_len;
  EXPECT_EQ(reinterpret_cast<const char*>(a[IFLA_LINKINFO]) + a[IFLA_LINKINFO]->nla_len, msg_end);
  EXPECT_EQ(end, msg_end);
}

TEST(NetNetlinkMessage, VethPeerWithoutNamespaceStaysHere) {
  NetlinkMessage m = rtnl::new_veth("a", "b", -1, 0);
  Attrs a = attrs_of(m.header(), sizeof(ifinfomsg));
  EXPECT_EQ(a.count(IFLA_MTU), 0u) << "MTU 0 leaves the kernel's default";
  const char* raw = reinterpret_cast<const char*>(m.header());
  std::string bytes(raw, m.header()->nlmsg_len);
  EXPECT_EQ(bytes.find("b"), bytes.rfind("b"));  // the peer name once
}

TEST(NetNetlinkMessage, SetLinkFindsTheLinkByName) {
  NetlinkMessage up = rtnl::set_link_up("veth1");
  EXPECT_EQ(up.header()->nlmsg_type, RTM_SETLINK);
  EXPECT_EQ(up.header()->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
  auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(up.header()));
  EXPECT_EQ(ifi->ifi_index, 0);
  EXPECT_EQ(ifi->ifi_flags, static_cast<unsigned>(IFF_UP));
  EXPECT_EQ(ifi->ifi_change, static_cast<unsigned>(IFF_UP));
  EXPECT_EQ(str(attrs_of(up.header(), sizeof(ifinfomsg))[IFLA_IFNAME]), "veth1");

  NetlinkMessage mtu = rtnl::set_link_mtu("veth1", 9000);
  ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(mtu.header()));
  EXPECT_EQ(ifi->ifi_change, 0u) << "an MTU change must not touch the flags";
  EXPECT_EQ(mnl_attr_get_u32(attrs_of(mtu.header(), sizeof(ifinfomsg))[IFLA_MTU]), 9000u);

  NetlinkMessage master = rtnl::set_link_master("veth1", 12);
  EXPECT_EQ(mnl_attr_get_u32(attrs_of(master.header(), sizeof(ifinfomsg))[IFLA_MASTER]), 12u);

  NetlinkMessage mac = rtnl::set_link_mac("veth1", {0x02, 0x42, 0xac, 0x11, 0x00, 0x02});
  const nlattr* addr = attrs_of(mac.header(), sizeof(ifinfomsg))[IFLA_ADDRESS];
  ASSERT_TRUE(addr);
  ASSERT_EQ(mnl_attr_get_payload_len(addr), 6);
  EXPECT_EQ(std::memcmp(mnl_attr_get_payload(addr), "\x02\x42\xac\x11\x00\x02", 6), 0);
}

TEST(NetNetlinkMessage, RenameNamesTheLinkByIndex) {
  NetlinkMessage m = rtnl::rename_link(5, "eth0");
  EXPECT_EQ(m.header()->nlmsg_type, RTM_SETLINK);
  auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(m.header()));
  EXPECT_EQ(ifi->ifi_index, 5);
  EXPECT_EQ(str(attrs_of(m.header(), sizeof(ifinfomsg))[IFLA_IFNAME]), "eth0");
}

TEST(NetNetlinkMessage, DeleteAndGetLink) {
  NetlinkMessage del = rtnl::delete_link("fknl-x");
  EXPECT_EQ(del.header()->nlmsg_type, RTM_DELLINK);
  EXPECT_EQ(str(attrs_of(del.header(), sizeof(ifinfomsg))[IFLA_IFNAME]), "fknl-x");
  NetlinkMessage get = rtnl::get_link("fknl-x");
  EXPECT_EQ(get.header()->nlmsg_type, RTM_GETLINK);
  EXPECT_FALSE(get.header()->nlmsg_flags & NLM_F_DUMP) << "one link, not a dump";
  Attrs a = attrs_of(get.header(), sizeof(ifinfomsg));
  EXPECT_EQ(str(a[IFLA_IFNAME]), "fknl-x");
  ASSERT_TRUE(a[IFLA_EXT_MASK]);
  EXPECT_TRUE(mnl_attr_get_u32(a[IFLA_EXT_MASK]) & RTEXT_FILTER_SKIP_STATS);
}

TEST(NetNetlinkMessage, NewAddressV4HasLocalAndBroadcast) {
  NetlinkMessage m = rtnl::new_address(3, ip("10.88.0.2"), 16);
  const nlmsghdr* nlh = m.header();
  EXPECT_EQ(nlh->nlmsg_type, RTM_NEWADDR);
  EXPECT_EQ(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  EXPECT_EQ(ifa->ifa_family, AF_INET);
  EXPECT_EQ(ifa->ifa_prefixlen, 16);
  EXPECT_EQ(ifa->ifa_index, 3u);
  EXPECT_EQ(ifa->ifa_flags, 0);
  Attrs a = attrs_of(nlh, sizeof(ifaddrmsg));
  EXPECT_EQ(ip_of(a[IFA_LOCAL], AF_INET), "10.88.0.2");
  EXPECT_EQ(ip_of(a[IFA_ADDRESS], AF_INET), "10.88.0.2");
  EXPECT_EQ(ip_of(a[IFA_BROADCAST], AF_INET), "10.88.255.255");
}

TEST(NetNetlinkMessage, NewAddressV6SkipsDuplicateDetection) {
  NetlinkMessage m = rtnl::new_address(3, ip("fd00:1::2"), 64);
  auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(m.header()));
  EXPECT_EQ(ifa->ifa_family, AF_INET6);
  EXPECT_EQ(ifa->ifa_prefixlen, 64);
  EXPECT_EQ(ifa->ifa_flags, IFA_F_NODAD);
  Attrs a = attrs_of(m.header(), sizeof(ifaddrmsg));
  EXPECT_EQ(ip_of(a[IFA_LOCAL], AF_INET6), "fd00:1::2");
  EXPECT_EQ(a.count(IFA_BROADCAST), 0u);
}

TEST(NetNetlinkMessage, DefaultRouteInMainTable) {
  NetlinkMessage m = rtnl::new_default_route(ip("10.88.0.1"), 0);
  auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(m.header()));
  EXPECT_EQ(m.header()->nlmsg_type, RTM_NEWROUTE);
  EXPECT_EQ(rtm->rtm_family, AF_INET);
  EXPECT_EQ(rtm->rtm_dst_len, 0);
  EXPECT_EQ(rtm->rtm_table, RT_TABLE_MAIN);
  EXPECT_EQ(rtm->rtm_type, RTN_UNICAST);
  EXPECT_EQ(rtm->rtm_scope, RT_SCOPE_UNIVERSE);
  Attrs a = attrs_of(m.header(), sizeof(rtmsg));
  EXPECT_EQ(ip_of(a[RTA_GATEWAY], AF_INET), "10.88.0.1");
  EXPECT_EQ(a.count(RTA_OIF), 0u);

  NetlinkMessage v6 = rtnl::new_default_route(ip("fe80::1"), 4);
  Attrs b = attrs_of(v6.header(), sizeof(rtmsg));
  EXPECT_EQ(ip_of(b[RTA_GATEWAY], AF_INET6), "fe80::1");
  ASSERT_TRUE(b[RTA_OIF]);
  EXPECT_EQ(mnl_attr_get_u32(b[RTA_OIF]), 4u);
}

TEST(NetNetlinkMessage, DumpsAreDumpsWithoutAck) {
  for (const NetlinkMessage& m : {rtnl::dump_addresses(), rtnl::dump_routes()}) {
    EXPECT_EQ(m.header()->nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
  }
}

// A reply as the kernel would send it: header, family struct, attributes.
class Reply {
 public:
  Reply(uint16_t type, const void* header, size_t size) {
    nlh_ = mnl_nlmsg_put_header(buf_);
    nlh_->nlmsg_type = type;
    std::memcpy(mnl_nlmsg_put_extra_header(nlh_, size), header, size);
  }
  Reply& put(uint16_t type, const void* data, size_t len) {
    mnl_attr_put(nlh_, type, len, data);
    return *this;
  }
  Reply& put_ip(uint16_t type, const IpAddress& a) { return put(type, a.bytes.data(), a.length()); }
  Reply& put_u32(uint16_t type, uint32_t v) { return put(type, &v, sizeof v); }
  const nlmsghdr* get() const { return nlh_; }

 private:
  alignas(nlmsghdr) char buf_[1024] = {};
  nlmsghdr* nlh_;
};

rtmsg route(int family, int dst_len, int table = RT_TABLE_MAIN, int type = RTN_UNICAST) {
  rtmsg r{};
  r.rtm_family = static_cast<uint8_t>(family);
  r.rtm_dst_len = static_cast<uint8_t>(dst_len);
  r.rtm_table = static_cast<uint8_t>(table);
  r.rtm_type = static_cast<uint8_t>(type);
  return r;
}

TEST(NetNetlinkMessage, ParseRouteKeepsMainTableNonDefault) {
  rtmsg r = route(AF_INET, 24);
  auto s =
      rtnl::parse_route(Reply(RTM_NEWROUTE, &r, sizeof r).put_ip(RTA_DST, ip("192.168.5.0")).get());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->str(), "192.168.5.0/24");

  rtmsg r6 = route(AF_INET6, 64);
  auto s6 = rtnl::parse_route(Reply(RTM_NEWROUTE, &r6, sizeof r6)
                                  .put_ip(RTA_DST, ip("fd12:3456::"))
                                  .put_u32(RTA_TABLE, RT_TABLE_MAIN)
                                  .get());
  ASSERT_TRUE(s6);
  EXPECT_EQ(s6->str(), "fd12:3456::/64");

  rtmsg def = route(AF_INET, 0);
  EXPECT_FALSE(rtnl::parse_route(Reply(RTM_NEWROUTE, &def, sizeof def).get()));
  rtmsg local = route(AF_INET, 32, RT_TABLE_LOCAL, RTN_LOCAL);
  EXPECT_FALSE(rtnl::parse_route(
      Reply(RTM_NEWROUTE, &local, sizeof local).put_ip(RTA_DST, ip("10.0.0.1")).get()));
  // A table id above 255 is only in RTA_TABLE (rtm_table says RT_TABLE_COMPAT).
  rtmsg big = route(AF_INET, 16, RT_TABLE_COMPAT);
  EXPECT_FALSE(rtnl::parse_route(Reply(RTM_NEWROUTE, &big, sizeof big)
                                     .put_ip(RTA_DST, ip("10.1.0.0"))
                                     .put_u32(RTA_TABLE, 1000)
                                     .get()));
  rtmsg cloned = route(AF_INET6, 128);
  cloned.rtm_flags = RTM_F_CLONED;
  EXPECT_FALSE(rtnl::parse_route(
      Reply(RTM_NEWROUTE, &cloned, sizeof cloned).put_ip(RTA_DST, ip("fd00::1")).get()));
}

TEST(NetNetlinkMessage, ParseAddressPrefersLocal) {
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = 32;
  ifa.ifa_index = 9;
  auto e = rtnl::parse_address(Reply(RTM_NEWADDR, &ifa, sizeof ifa)
                                   .put_ip(IFA_ADDRESS, ip("10.9.9.9"))
                                   .put_ip(IFA_LOCAL, ip("10.1.1.1"))
                                   .get());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->index, 9);
  EXPECT_EQ(e->address.str(), "10.1.1.1");
  EXPECT_EQ(e->prefix, 32);
  // A wrong length is not read as an address.
  uint8_t two[2] = {1, 2};
  EXPECT_FALSE(
      rtnl::parse_address(Reply(RTM_NEWADDR, &ifa, sizeof ifa).put(IFA_LOCAL, two, 2).get()));
}

TEST(NetNetlinkMessage, ParseLink) {
  ifinfomsg ifi{};
  ifi.ifi_index = 4;
  ifi.ifi_flags = IFF_UP;
  uint8_t mac[6] = {2, 0, 0, 0, 0, 9};
  auto l = rtnl::parse_link(Reply(RTM_NEWLINK, &ifi, sizeof ifi)
                                .put_u32(IFLA_MTU, 1500)
                                .put_u32(IFLA_MASTER, 2)
                                .put(IFLA_ADDRESS, mac, 6)
                                .get());
  ASSERT_TRUE(l);
  EXPECT_EQ(l->index, 4);
  EXPECT_EQ(l->mtu, 1500);
  EXPECT_EQ(l->master, 2);
  EXPECT_TRUE(l->flags & IFF_UP);
  EXPECT_EQ(mac_to_string(l->mac), "02:00:00:00:00:09");
  EXPECT_FALSE(rtnl::parse_link(Reply(RTM_NEWADDR, &ifi, sizeof ifi).get()));
}

TEST(NetNetlinkMessage, LinkNames) {
  EXPECT_TRUE(check_link_name("eth0"));
  EXPECT_TRUE(check_link_name("fk-0123456789ab"));  // 15 characters
  EXPECT_FALSE(check_link_name("fk-0123456789abc"));
  EXPECT_FALSE(check_link_name(""));
  EXPECT_FALSE(check_link_name(".."));
  EXPECT_FALSE(check_link_name("a/b"));
  EXPECT_FALSE(check_link_name("a b"));
  EXPECT_THAT(check_link_name("a:b").error().message(), HasSubstr("invalid link name \"a:b\""));
}

TEST(NetNetlinkMessage, LongNamesStayInTheBuffer) {
  std::string huge(4000, 'x');
  NetlinkMessage m = rtnl::new_veth(huge, huge, 3, 1500);
  EXPECT_LT(m.header()->nlmsg_len, NetlinkMessage::kCapacity);
}

}  // namespace
}  // namespace forker::net
