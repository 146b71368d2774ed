// The nft script rendered from network and publish state: which chains and rules it holds, that
// bad input never reaches the text, and that equal states give equal text.
#include "net/nft_ruleset.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace forker::net {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

IpAddress ip(const char* text) { return IpAddress::parse(text).value(); }
Subnet subnet(const char* text) { return Subnet::parse(text).value(); }

NftNetwork bridge_net(const char* bridge = "forker0", const char* cidr = "10.88.0.0/16") {
  return NftNetwork{bridge, subnet(cidr), std::nullopt, false};
}

NftPublish publish(uint16_t host_port, uint16_t container_port, std::vector<IpAddress> backends,
                   std::string host_ip = "", std::string protocol = "tcp") {
  NftPublish p{std::move(host_ip), host_port, container_port, std::move(protocol), "forker0", {}};
  p.backends = std::move(backends);
  return p;
}

// The text of chain NAME: from its "chain NAME {" line to the closing brace.
std::string chain(const std::string& script, const std::string& name) {
  auto start = script.find("  chain " + name + " {\n");
  if (start == std::string::npos) return "";
  auto end = script.find("\n  }\n", start);
  return script.substr(start, end + 1 - start);
}

int count(const std::string& text, const std::string& part) {
  int n = 0;
  for (auto pos = text.find(part); pos != std::string::npos; pos = text.find(part, pos + 1)) ++n;
  return n;
}

TEST(NftRuleset, EmptyStateReplacesTableWithEmptyChains) {
  std::string s = render_ruleset({});
  EXPECT_EQ(s.rfind("table inet forker {}\ndelete table inet forker\ntable inet forker {\n", 0), 0u)
      << s;
  EXPECT_THAT(chain(s, "prerouting"),
              HasSubstr("type nat hook prerouting priority dstnat; policy accept;"));
  EXPECT_THAT(chain(s, "output"), HasSubstr("type nat hook output priority -100; policy accept;"));
  EXPECT_THAT(chain(s, "postrouting"),
              HasSubstr("type nat hook postrouting priority srcnat; policy accept;"));
  EXPECT_THAT(chain(s, "forward"),
              HasSubstr("type filter hook forward priority filter; policy accept;"));
  EXPECT_EQ(count(s, "masquerade"), 0);
  EXPECT_EQ(count(s, "dnat"), 0);
  EXPECT_EQ(count(s, "accept\n"), 0);  // only the policies, which end in "accept;"
  EXPECT_EQ(s.substr(s.size() - 2), "}\n");
  // No other table is named anywhere.
  EXPECT_EQ(count(s, "table "), 3);
}

TEST(NftRuleset, TableNameIsAParameter) {
  std::string s = render_ruleset({}, "forker_test_nft");
  EXPECT_EQ(s.rfind("table inet forker_test_nft {}\ndelete table inet forker_test_nft\n", 0), 0u);
  EXPECT_THAT(s, Not(HasSubstr("inet forker ")));
  EXPECT_EQ(render_delete_table("forker_test_nft"),
            "table inet forker_test_nft {}\ndelete table inet forker_test_nft\n");
  EXPECT_EQ(render_delete_table(), "table inet forker {}\ndelete table inet forker\n");
}

TEST(NftRuleset, BridgeNetworkMasqueradesAndForwards) {
  std::string s = render_ruleset({{bridge_net()}, {}});
  std::string post = chain(s, "postrouting");
  EXPECT_THAT(post, HasSubstr("    ip saddr 10.88.0.0/16 oifname != \"forker0\" masquerade\n"));
  EXPECT_THAT(post,
              HasSubstr("    ip saddr 10.88.0.0/16 oifname \"forker0\" ct status dnat masquerade\n"));
  EXPECT_THAT(post, Not(HasSubstr("ip6")));
  EXPECT_THAT(post, Not(HasSubstr("127.0.0.0/8")));  // only bridges with published ports
  std::string fwd = chain(s, "forward");
  EXPECT_THAT(fwd, HasSubstr("    iifname \"forker0\" accept\n"));
  EXPECT_THAT(fwd, HasSubstr("    oifname \"forker0\" ct state established,related accept\n"));
  EXPECT_THAT(fwd, HasSubstr("    oifname \"forker0\" ct status dnat accept\n"));
  EXPECT_THAT(fwd, Not(HasSubstr("drop")));
  EXPECT_EQ(chain(s, "prerouting").find("dnat"), std::string::npos);
}

TEST(NftRuleset, InternalNetworkDropsBeforeOtherBridgesAccept) {
  NftNetwork internal = bridge_net("fk-int", "10.89.0.0/24");
  internal.internal = true;
  // "fk-int" sorts before "forker0"; list it last to show the order is not the input order.
  std::string s = render_ruleset({{bridge_net(), internal}, {}});
  std::string fwd = chain(s, "forward");
  auto drop_in = fwd.find("    iifname \"fk-int\" oifname != \"fk-int\" drop\n");
  auto drop_out = fwd.find("    oifname \"fk-int\" iifname != \"fk-int\" drop\n");
  auto accept = fwd.find("iifname \"forker0\" accept");
  ASSERT_NE(drop_in, std::string::npos) << fwd;
  ASSERT_NE(drop_out, std::string::npos) << fwd;
  ASSERT_NE(accept, std::string::npos) << fwd;
  EXPECT_LT(drop_in, accept);
  EXPECT_LT(drop_out, accept);
  // No way out: no masquerade, no accept for the internal bridge.
  EXPECT_THAT(s, Not(HasSubstr("10.89.0.0/24")));
  EXPECT_THAT(fwd, Not(HasSubstr("\"fk-int\" accept")));
  EXPECT_THAT(chain(s, "postrouting"), Not(HasSubstr("fk-int")));
}

TEST(NftRuleset, PublishWithOneBackend) {
  std::string s = render_ruleset({{bridge_net()}, {publish(8080, 80, {ip("10.88.0.2")})}});
  const std::string rule =
      "    meta nfproto ipv4 fib daddr type local tcp dport 8080 dnat ip to 10.88.0.2:80\n";
  EXPECT_THAT(chain(s, "prerouting"), HasSubstr(rule));
  EXPECT_THAT(chain(s, "output"), HasSubstr(rule));
  EXPECT_EQ(count(s, "dnat ip to"), 2);
  EXPECT_THAT(s, Not(HasSubstr("numgen")));
  EXPECT_THAT(chain(s, "postrouting"),
              HasSubstr("    ip saddr 127.0.0.0/8 oifname \"forker0\" masquerade\n"));
}

TEST(NftRuleset, PublishWithThreeBackendsRoundRobin) {
  // Given out of order and with a repeat: rendered sorted and once each.
  std::string s = render_ruleset(
      {{bridge_net()},
       {publish(8080, 8080,
                {ip("10.88.0.4"), ip("10.88.0.2"), ip("10.88.0.3"), ip("10.88.0.2")})}});
  const std::string rule =
      "meta nfproto ipv4 fib daddr type local tcp dport 8080 dnat ip to numgen inc mod 3 map "
      "{ 0 : 10.88.0.2, 1 : 10.88.0.3, 2 : 10.88.0.4 } : 8080\n";
  EXPECT_THAT(chain(s, "prerouting"), HasSubstr(rule));
  EXPECT_THAT(chain(s, "output"), HasSubstr(rule));
}

TEST(NftRuleset, PublishOnLoopbackMatchesThatAddressOnly) {
  std::string s =
      render_ruleset({{bridge_net()}, {publish(18080, 80, {ip("10.88.0.2")}, "127.0.0.1")}});
  const std::string rule = "    ip daddr 127.0.0.1 tcp dport 18080 dnat ip to 10.88.0.2:80\n";
  EXPECT_THAT(chain(s, "output"), HasSubstr(rule));  // local connections go through output
  EXPECT_THAT(chain(s, "prerouting"), HasSubstr(rule));
  EXPECT_THAT(s, Not(HasSubstr("fib daddr")));
  EXPECT_THAT(chain(s, "postrouting"),
              HasSubstr("    ip saddr 127.0.0.0/8 oifname \"forker0\" masquerade\n"));
}

TEST(NftRuleset, PublishOnOneHostAddressAndOnAllAddresses) {
  std::string s = render_ruleset({{bridge_net()},
                                  {publish(80, 80, {ip("10.88.0.2")}, "192.0.2.5"),
                                   publish(81, 80, {ip("10.88.0.2")}, "0.0.0.0")}});
  EXPECT_THAT(s, HasSubstr("    ip daddr 192.0.2.5 tcp dport 80 dnat ip to 10.88.0.2:80\n"));
  EXPECT_THAT(s, HasSubstr("    meta nfproto ipv4 fib daddr type local tcp dport 81 dnat ip to "
                           "10.88.0.2:80\n"));
}

TEST(NftRuleset, UdpPublish) {
  std::string s =
      render_ruleset({{bridge_net()}, {publish(5353, 53, {ip("10.88.0.2")}, "", "udp")}});
  EXPECT_THAT(chain(s, "prerouting"),
              HasSubstr("fib daddr type local udp dport 5353 dnat ip to 10.88.0.2:53\n"));
  EXPECT_THAT(s, Not(HasSubstr("tcp")));
}

TEST(NftRuleset, Ipv6SubnetAndBackends) {
  NftNetwork n = bridge_net();
  n.subnet6 = subnet("fd00:88::/64");
  std::string s = render_ruleset({{n},
                                  {publish(8080, 80, {ip("10.88.0.2"), ip("fd00:88::2")}),
                                   publish(8081, 80, {ip("fd00:88::3"), ip("fd00:88::2")})}});
  std::string post = chain(s, "postrouting");
  EXPECT_THAT(post, HasSubstr("    ip saddr 10.88.0.0/16 oifname != \"forker0\" masquerade\n"));
  EXPECT_THAT(post, HasSubstr("    ip6 saddr fd00:88::/64 oifname != \"forker0\" masquerade\n"));
  std::string pre = chain(s, "prerouting");
  // One rule per family the publish has backends in.
  EXPECT_THAT(pre, HasSubstr("    meta nfproto ipv4 fib daddr type local tcp dport 8080 dnat ip "
                             "to 10.88.0.2:80\n"));
  EXPECT_THAT(pre, HasSubstr("    meta nfproto ipv6 fib daddr type local tcp dport 8080 dnat ip6 "
                             "to [fd00:88::2]:80\n"));
  EXPECT_THAT(pre, HasSubstr("    meta nfproto ipv6 fib daddr type local tcp dport 8081 dnat ip6 "
                             "to numgen inc mod 2 map { 0 : fd00:88::2, 1 : fd00:88::3 } : 80\n"));
  EXPECT_THAT(pre, Not(HasSubstr("ipv4 fib daddr type local tcp dport 8081")));
}

TEST(NftRuleset, OutputIsDeterministicAndOrderFree) {
  NftNetwork a = bridge_net("forker0", "10.88.0.0/16");
  NftNetwork b = bridge_net("forker1", "10.89.0.0/16");
  NftPublish p1 = publish(8080, 80, {ip("10.88.0.2"), ip("10.88.0.3")});
  NftPublish p2 = publish(53, 53, {ip("10.88.0.4")}, "127.0.0.1", "udp");
  NftPublish p3 = publish(9000, 9000, {ip("10.89.0.2")});
  p3.bridge = "forker1";
  std::string first = render_ruleset({{a, b}, {p1, p2, p3}});
  EXPECT_EQ(render_ruleset({{a, b}, {p1, p2, p3}}), first);
  std::swap(p1.backends[0], p1.backends[1]);
  EXPECT_EQ(render_ruleset({{b, a}, {p3, p2, p1}}), first);
  EXPECT_NE(render_ruleset({{a, b}, {p1, p3}}), first);
  EXPECT_THAT(chain(first, "postrouting"),
              HasSubstr("ip saddr 127.0.0.0/8 oifname \"forker1\" masquerade"));
}

TEST(NftRuleset, ValidateAcceptsGoodState) {
  NftNetwork n = bridge_net();
  n.subnet6 = subnet("fd00:88::/64");
  EXPECT_TRUE(validate_nft_state({{n}, {publish(8080, 80, {ip("10.88.0.2")}, "127.0.0.1")}}));
  EXPECT_TRUE(validate_nft_state({}));
}

TEST(NftRuleset, BadInputIsRejectedAndNeverRendered) {
  NftNetwork quote = bridge_net("br\"0 accept", "10.90.0.0/16");
  NftNetwork v6 = NftNetwork{"fk6", subnet("fd00::/64"), std::nullopt, false};
  NftPublish sctp = publish(1, 1, {ip("10.88.0.9")}, "", "sctp");
  NftPublish bad_host = publish(2, 2, {ip("10.88.0.9")}, "1.2.3.4; flush ruleset");
  NftPublish wrong_family = publish(3, 3, {ip("fd00::9")}, "127.0.0.1");
  NftPublish no_backends = publish(4, 4, {});
  NftPublish port0 = publish(0, 4, {ip("10.88.0.9")});

  auto message = [](const NftState& s) {
    auto st = validate_nft_state(s);
    return st ? std::string("ok") : st.error().message();
  };
  EXPECT_THAT(message({{quote}, {}}), HasSubstr("bridge name \"br\"0 accept\""));
  EXPECT_THAT(message({{v6}, {}}), HasSubstr("subnet fd00::/64: not IPv4"));
  EXPECT_EQ(message({{bridge_net(), bridge_net()}, {}}),
            "nftables: network forker0: bridge listed twice");
  EXPECT_EQ(message({{}, {sctp}}), "nftables: publish 1/sctp: protocol sctp: not tcp or udp");
  EXPECT_THAT(message({{}, {bad_host}}), HasSubstr("not an IP address"));
  EXPECT_THAT(message({{}, {wrong_family}}), HasSubstr("no backend address"));
  EXPECT_THAT(message({{}, {no_backends}}), HasSubstr("no backend address"));
  EXPECT_THAT(message({{}, {port0}}), HasSubstr("port 0"));

  std::string s = render_ruleset(
      {{quote, v6, bridge_net()}, {sctp, bad_host, wrong_family, no_backends, port0}});
  EXPECT_EQ(s, render_ruleset({{bridge_net()}, {}}));
}

TEST(NftRuleset, SummarizesLibnftablesErrors) {
  EXPECT_EQ(summarize_nft_error("<cmdline>:3:8-13: Error: Could not process rule: No such file or "
                                "directory\n  jump nosuch\n       ^^^^^^\n"),
            "Error: Could not process rule: No such file or directory (in: jump nosuch)");
  EXPECT_EQ(summarize_nft_error("<cmdline>:1:1-2: Error: a\n  x\n  ^\n<cmdline>:2:1-2: Error: b\n"
                                "  y\n  ^\n<cmdline>:3:1-2: Error: c\n  z\n  ^\n"),
            "Error: a (in: x); Error: b (in: y); and 1 more");
  // Buffer input on libnftables 1.0.6: no location, and the echoed line is the buffer's first.
  EXPECT_EQ(summarize_nft_error("Error: Could not process rule: No such file or directory\n"
                                "table inet forker {}\n                 ^^^^^^\n"),
            "Error: Could not process rule: No such file or directory");
  EXPECT_EQ(summarize_nft_error("\n  something odd\n"), "something odd");
  EXPECT_EQ(summarize_nft_error(""), "failed without a message");
}

}  // namespace
}  // namespace forker::net
