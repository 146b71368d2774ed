// forker::net::Netlink against the kernel, inside network namespaces the test makes itself:
// "host" (A) holds the bridge and the host end of the veth, "container" (B) the peer. Both live
// only as long as their fds, so even a crash leaves no link on the real host.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <optional>
#include <thread>
#include <tuple>

#include "core/unique_fd.hpp"
#include "net/netlink.hpp"
#include "net/sysctl.hpp"

namespace forker::net {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

constexpr const char* kBridge = "fknl-br0";
constexpr const char* kHostEnd = "fknl-v0h";
constexpr const char* kPeer = "fknl-v0p";

IpAddress ip(const char* text) { return *IpAddress::parse(text); }
Subnet subnet(const char* text) { return *Subnet::parse(text); }

// Runs FN in a new thread that first joins NETNS (setns and unshare act on one thread only).
bool in_netns(int netns, const std::function<void()>& fn) {
  bool entered = false;
  std::thread t([&] {
    if (setns(netns, CLONE_NEWNET) != 0) return;
    entered = true;
    fn();
  });
  t.join();
  return entered;
}

// A fresh network namespace, held by the returned fd only.
UniqueFd new_netns(int& err) {
  UniqueFd fd;
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      err = errno;
      return;
    }
    fd.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!fd) err = errno;
  });
  t.join();
  return fd;
}

ino_t netns_inode() {
  struct stat st {};
  stat("/proc/thread-self/ns/net", &st);
  return st.st_ino;
}

sockaddr_storage sockaddr_of(const IpAddress& a, uint16_t port, socklen_t& len) {
  sockaddr_storage ss{};
  if (a.is_v4()) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, a.bytes.data(), 4);
    len = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    std::memcpy(&in6->sin6_addr, a.bytes.data(), 16);
    len = sizeof(sockaddr_in6);
  }
  return ss;
}

// A TCP listener on ADDR inside NETNS (a socket keeps the namespace it was made in); PORT is
// the one the kernel chose.
UniqueFd listen_in(int netns, const IpAddress& addr, uint16_t& port) {
  UniqueFd fd;
  EXPECT_TRUE(in_netns(netns, [&] {
    UniqueFd s(socket(addr.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    socklen_t len = 0;
    sockaddr_storage ss = sockaddr_of(addr, 0, len);
    if (!s || bind(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        listen(s.get(), 4) != 0 || getsockname(s.get(), reinterpret_cast<sockaddr*>(&ss), &len))
      return ADD_FAILURE() << "listen on " << addr.str() << ": " << strerror(errno);
    port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);  // same offset for v6
    fd = std::move(s);
  }));
  return fd;
}

// Connects from inside NETNS to ADDR:PORT and sends one byte; returns errno or 0. A lost
// first SYN (the bridge port still coming up) is retried by TCP itself.
int connect_and_send(int netns, const IpAddress& addr, uint16_t port) {
  int err = -1;
  EXPECT_TRUE(in_netns(netns, [&] {
    UniqueFd s(socket(addr.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    socklen_t len = 0;
    sockaddr_storage ss = sockaddr_of(addr, port, len);
    if (!s || connect(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        write(s.get(), "x", 1) != 1) {
      err = errno;
      return;
    }
    err = 0;
  }));
  return err;
}

class NetNetlink : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    int err = 0;
    host_ = new_netns(err);
    if (host_) container_ = new_netns(err);
    if (!container_) GTEST_SKIP() << "unshare(CLONE_NEWNET): " << strerror(err);
    for (auto [ns, nl] : {std::pair{&host_, &host_nl_}, std::pair{&container_, &container_nl_}}) {
      auto opened = Netlink::open_in(ns->get());
      ASSERT_TRUE(opened) << opened.error().message();
      nl->emplace(std::move(opened).value());
    }
  }
  void TearDown() override {
    // Nothing of this test may have reached the real host's namespace.
    for (const char* name : {kBridge, kHostEnd, kPeer})
      EXPECT_EQ(if_nametoindex(name), 0u) << name << " exists on the host";
  }

  // Bridge in A, veth from A into B, host end on the bridge.
  void make_pair(Netlink& host, int mtu) {
    ASSERT_TRUE(host.create_bridge(kBridge, mtu));
    auto st = host.create_veth(kHostEnd, kPeer, container_.get(), mtu);
    ASSERT_TRUE(st) << st.error().message();
    st = host.set_master(kHostEnd, kBridge);
    ASSERT_TRUE(st) << st.error().message();
  }

  UniqueFd host_;
  UniqueFd container_;
  std::optional<Netlink> host_nl_;  // sockets in A and B
  std::optional<Netlink> container_nl_;
};

TEST_F(NetNetlink, LinkIndexOfMissingLinkIsNullopt) {
  Netlink& nl = *host_nl_;
  auto missing = nl.link_index("fknl-nope");
  ASSERT_TRUE(missing) << missing.error().message();
  EXPECT_FALSE(*missing);
  auto lo = nl.link_index("lo");
  ASSERT_TRUE(lo) << lo.error().message();
  ASSERT_TRUE(*lo);
  EXPECT_EQ(**lo, 1);  // a new namespace's loopback is always index 1
}

TEST_F(NetNetlink, OpenInReturnsToTheCallersNamespace) {
  ino_t before = netns_inode();
  {
    auto nl = Netlink::open_in(container_.get());
    ASSERT_TRUE(nl) << nl.error().message();
    EXPECT_EQ(netns_inode(), before);
  }
  // Not a namespace: setns fails, and the thread stays where it was.
  UniqueFd not_ns(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto bad = Netlink::open_in(not_ns.get());
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("netlink: setns into network namespace"));
  EXPECT_EQ(netns_inode(), before);
}

TEST_F(NetNetlink, DuplicateBridgeFailsWithFileExists) {
  Netlink& nl = *host_nl_;
  auto st = nl.create_bridge(kBridge, 1500);
  ASSERT_TRUE(st) << st.error().message();
  auto again = nl.create_bridge(kBridge, 1500);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message(), "netlink: create bridge fknl-br0: File exists");
  EXPECT_EQ(again.error().err, EEXIST);
}

TEST_F(NetNetlink, VethPeerIsCreatedInTheOtherNamespace) {
  Netlink& host = *host_nl_;
  Netlink& container = *container_nl_;
  make_pair(host, 1400);
  auto gone = host.link_index(kPeer);
  ASSERT_TRUE(gone);
  EXPECT_FALSE(*gone) << "the peer appeared in the host namespace";
  auto peer = container.link(kPeer);
  ASSERT_TRUE(peer) << peer.error().message();
  ASSERT_TRUE(*peer);
  EXPECT_EQ((*peer)->mtu, 1400);
  auto host_end = host.link(kHostEnd);
  auto bridge = host.link(kBridge);
  ASSERT_TRUE(host_end && *host_end && bridge && *bridge);
  EXPECT_EQ((*host_end)->mtu, 1400);
  EXPECT_EQ((*host_end)->master, (*bridge)->index);
  EXPECT_EQ((*bridge)->mtu, 1400);
  EXPECT_FALSE((*host_end)->flags & IFF_UP) << "new links start down";
  // The same pair again: both names are taken.
  auto again = host.create_veth(kHostEnd, kPeer, container_.get(), 1400);
  ASSERT_FALSE(again);
  EXPECT_THAT(again.error().message(), HasSubstr("File exists"));
}

TEST_F(NetNetlink, ContainerSideSetupCarriesTcp) {
  Netlink& host = *host_nl_;
  Netlink& container = *container_nl_;
  make_pair(host, 1400);
  const IpAddress gw4 = ip("10.231.0.1"), gw6 = ip("fd0f:6b6e:6c00::1");
  const IpAddress c4 = ip("10.231.0.2"), c6 = ip("fd0f:6b6e:6c00::2");
  for (auto st : {host.add_address(kBridge, gw4, 24), host.add_address(kBridge, gw6, 64),
                  host.set_up(kBridge), host.set_up(kHostEnd)})
    ASSERT_TRUE(st) << st.error().message();

  // The container's end, as the runtime sets it up: renamed while down, then configured.
  const MacAddress mac = {0x02, 0x42, 0x0a, 0xe7, 0x00, 0x02};
  for (auto st :
       {container.rename_link(kPeer, "eth0"), container.set_mac("eth0", mac),
        container.set_mtu("eth0", 1380), container.add_address("eth0", c4, 24),
        container.add_address("eth0", c6, 64), container.set_up("lo"), container.set_up("eth0"),
        container.add_default_route(gw4), container.add_default_route(gw6, "eth0")})
    ASSERT_TRUE(st) << st.error().message();

  auto old_name = container.link_index(kPeer);
  ASSERT_TRUE(old_name);
  EXPECT_FALSE(*old_name);
  auto eth0 = container.link("eth0");
  ASSERT_TRUE(eth0 && *eth0);
  EXPECT_EQ((*eth0)->mtu, 1380);
  EXPECT_EQ(mac_to_string((*eth0)->mac), "02:42:0a:e7:00:02");
  EXPECT_TRUE((*eth0)->flags & IFF_UP);
  // The same facts through ioctl, not through our own parser.
  EXPECT_TRUE(in_netns(container_.get(), [] {
    UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq req{};
    std::strcpy(req.ifr_name, "eth0");
    ASSERT_EQ(ioctl(s.get(), SIOCGIFMTU, &req), 0) << strerror(errno);
    EXPECT_EQ(req.ifr_mtu, 1380);
    ASSERT_EQ(ioctl(s.get(), SIOCGIFHWADDR, &req), 0) << strerror(errno);
    EXPECT_EQ(std::memcmp(req.ifr_hwaddr.sa_data, "\x02\x42\x0a\xe7\x00\x02", 6), 0);
  }));

  auto addrs = container.addresses("eth0");
  ASSERT_TRUE(addrs) << addrs.error().message();
  EXPECT_THAT(*addrs, Contains(Pair(c4, 24)));
  EXPECT_THAT(*addrs, Contains(Pair(c6, 64)));
  EXPECT_THAT(*addrs, Not(Contains(Pair(gw4, 24))));

  // Traffic both ways over the bridge: container -> host address, host -> container address.
  for (const auto& [listener_ns, dialer_ns, addr] :
       {std::tuple{container_.get(), host_.get(), c4},
        std::tuple{container_.get(), host_.get(), c6},
        std::tuple{host_.get(), container_.get(), gw4}}) {
    uint16_t port = 0;
    UniqueFd listener = listen_in(listener_ns, addr, port);
    ASSERT_TRUE(listener);
    EXPECT_EQ(connect_and_send(dialer_ns, addr, port), 0) << "connect to " << addr.str();
    UniqueFd conn(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(conn) << strerror(errno);
    char c = 0;
    EXPECT_EQ(read(conn.get(), &c, 1), 1);
    EXPECT_EQ(c, 'x');
  }
  // One default route per family: a second is refused.
  auto dup = container.add_default_route(gw4);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().message(), "netlink: add default route via 10.231.0.1: File exists");
}

TEST_F(NetNetlink, DefaultRouteReachesOffSubnetAddress) {
  Netlink& host = *host_nl_;
  Netlink& container = *container_nl_;
  make_pair(host, 1500);
  // The host's address 10.232.0.1 lies outside the container's subnet: reachable only by the
  // default route via the bridge's 10.231.0.1.
  const IpAddress far = ip("10.232.0.1");
  for (auto st : {host.add_address(kBridge, ip("10.231.0.1"), 24), host.add_address("lo", far, 32),
                  host.set_up("lo"), host.set_up(kBridge), host.set_up(kHostEnd),
                  container.rename_link(kPeer, "eth0"),
                  container.add_address("eth0", ip("10.231.0.2"), 24), container.set_up("eth0")})
    ASSERT_TRUE(st) << st.error().message();
  uint16_t port = 0;
  UniqueFd listener = listen_in(host_.get(), far, port);
  ASSERT_TRUE(listener);
  EXPECT_EQ(connect_and_send(container_.get(), far, port), ENETUNREACH) << "no route yet";
  auto st = container.add_default_route(ip("10.231.0.1"));
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(connect_and_send(container_.get(), far, port), 0);
}

TEST_F(NetNetlink, HostRoutesListsRoutesButNotDefault) {
  Netlink& container = *container_nl_;
  Netlink& host = *host_nl_;
  make_pair(host, 1500);
  for (auto st : {container.set_up(kPeer), container.add_address(kPeer, ip("10.233.1.2"), 24),
                  container.add_address(kPeer, ip("fd0f:6b6e:6c01::2"), 64),
                  container.add_default_route(ip("10.233.1.1"))})
    ASSERT_TRUE(st) << st.error().message();
  std::vector<Subnet> routes;
  Status st = ok();
  EXPECT_TRUE(in_netns(container_.get(), [&] {
    auto r = host_routes();
    if (!r)
      st = r.error();
    else
      routes = *r;
  }));
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_THAT(routes, Contains(subnet("10.233.1.0/24")));
  EXPECT_THAT(routes, Contains(subnet("fd0f:6b6e:6c01::/64")));
  for (const Subnet& s : routes) EXPECT_NE(s.prefix, 0) << s.str();
  // Local-table routes (the addresses themselves) are not destinations the host routes.
  EXPECT_THAT(routes, Not(Contains(subnet("10.233.1.2/32"))));
  // The same from this thread through the socket's namespace.
  auto direct = container.routes();
  ASSERT_TRUE(direct) << direct.error().message();
  EXPECT_EQ(direct->size(), routes.size());
}

// Linux 6.2 and later rename links that are up too; a taken name fails on any kernel.
TEST_F(NetNetlink, RenameToTakenNameFails) {
  Netlink& container = *container_nl_;
  make_pair(*host_nl_, 1500);
  auto st = container.rename_link(kPeer, "lo");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(), "netlink: rename link fknl-v0p to lo: File exists");
  auto peer = container.link_index(kPeer);
  ASSERT_TRUE(peer);
  EXPECT_TRUE(*peer) << "the link kept its name";
}

TEST_F(NetNetlink, ErrorsNameOperationAndObject) {
  Netlink& nl = *host_nl_;
  auto up = nl.set_up("fknl-none");
  ASSERT_FALSE(up);
  EXPECT_EQ(up.error().message(), "netlink: set up fknl-none: No such device");
  auto addr = nl.add_address("fknl-none", ip("10.88.0.2"), 16);
  ASSERT_FALSE(addr);
  EXPECT_EQ(addr.error().message(),
            "netlink: add address 10.88.0.2/16 to fknl-none: No such device");
  ASSERT_TRUE(nl.create_bridge(kBridge, 1500));
  ASSERT_TRUE(nl.add_address(kBridge, ip("10.88.0.2"), 16));
  auto dup = nl.add_address(kBridge, ip("10.88.0.2"), 16);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().message(), "netlink: add address 10.88.0.2/16 to fknl-br0: File exists");
  auto master = nl.set_master("lo", "fknl-none");
  ASSERT_FALSE(master);
  EXPECT_EQ(master.error().message(), "netlink: attach lo to bridge fknl-none: No such device");
  auto name = nl.create_bridge("fknl-much-too-long", 1500);
  ASSERT_FALSE(name);
  EXPECT_THAT(name.error().message(), HasSubstr("invalid link name"));
}

TEST_F(NetNetlink, DeleteLinkTakesThePeerAndIgnoresGone) {
  Netlink& host = *host_nl_;
  Netlink& container = *container_nl_;
  make_pair(host, 1500);
  auto st = host.delete_link(kHostEnd);
  ASSERT_TRUE(st) << st.error().message();
  auto host_end = host.link_index(kHostEnd);
  auto peer = container.link_index(kPeer);
  ASSERT_TRUE(host_end && peer);
  EXPECT_FALSE(*host_end);
  EXPECT_FALSE(*peer) << "deleting one end of a veth deletes both";
  st = host.delete_link(kHostEnd);
  EXPECT_TRUE(st) << "already gone is not an error: " << st.error().message();
  st = host.delete_link(kBridge);
  ASSERT_TRUE(st) << st.error().message();
  auto bridge = host.link_index(kBridge);
  ASSERT_TRUE(bridge);
  EXPECT_FALSE(*bridge);
}

// /proc/sys/net follows the namespace of the thread that opens the file: written inside A.
TEST_F(NetNetlink, SysctlInTheThreadsNamespace) {
  Netlink& nl = *host_nl_;
  ASSERT_TRUE(nl.create_bridge(kBridge, 1500));
  auto host_forward = read_sysctl("net/ipv4/ip_forward");
  ASSERT_TRUE(host_forward) << host_forward.error().message();
  EXPECT_TRUE(in_netns(host_.get(), [] {
    for (const char* key : {"net/ipv4/ip_forward", "net/ipv4/conf/fknl-br0/route_localnet"}) {
      for (const char* value : {"1", "0"}) {
        auto st = write_sysctl(key, value);
        ASSERT_TRUE(st) << st.error().message();
        auto back = read_sysctl(key);
        ASSERT_TRUE(back) << back.error().message();
        EXPECT_EQ(*back, value) << key;
      }
    }
    auto missing = write_sysctl("net/ipv4/conf/fknl-none/route_localnet", "1");
    ASSERT_FALSE(missing);
    EXPECT_THAT(missing.error().message(),
                HasSubstr("/proc/sys/net/ipv4/conf/fknl-none/route_localnet: No such file"));
  }));
  auto still = read_sysctl("net/ipv4/ip_forward");
  ASSERT_TRUE(still);
  EXPECT_EQ(*still, *host_forward) << "the real host's ip_forward changed";
  for (const char* bad : {"../../etc/passwd", "/net/ipv4/ip_forward", "net//ipv4", ""}) {
    auto st = read_sysctl(bad);
    ASSERT_FALSE(st) << bad;
    EXPECT_THAT(st.error().message(), HasSubstr("not a path below /proc/sys"));
  }
}

}  // namespace
}  // namespace forker::net
