// The pure parts of a container's networking: its /etc/hosts from the live endpoints, and the
// records kept in container.json and the endpoint files.
#include "engine/container_network.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace forker::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

net::IpAddress ip(const char* text) { return net::IpAddress::parse(text).value(); }
net::Subnet subnet(const char* text) { return net::Subnet::parse(text).value(); }

Endpoint endpoint(const std::string& id, const std::string& name, const std::string& network,
                  const char* address) {
  Endpoint e;
  e.container_id = id;
  e.name = name;
  e.hostname = name;
  e.hosts_file = "/tmp/" + id + "/hosts";
  Attachment a;
  a.network = network;
  a.bridge = network == "forker0" ? "forker0" : "fk-" + network;
  a.interface = "eth0";
  a.subnet = subnet(network == "forker0" ? "10.88.0.0/16" : "10.90.0.0/24");
  a.address = ip(address);
  a.gateway = a.subnet.host(1);
  a.mac = "02:42:0a:58:00:02";
  a.host_veth = "fk" + id.substr(0, 11) + "0";
  e.attachments.push_back(a);
  return e;
}

TEST(RenderHosts, OwnAddressThenPeersOnSharedNetworksOnly) {
  Endpoint web = endpoint("aaaaaaaaaaaaaaaa", "web", "app", "10.90.0.2");
  Endpoint db = endpoint("bbbbbbbbbbbbbbbb", "db", "app", "10.90.0.3");
  Endpoint other = endpoint("cccccccccccccccc", "other", "forker0", "10.88.0.2");
  std::string hosts = render_hosts(web, {web, db, other});
  EXPECT_THAT(hosts, HasSubstr("127.0.0.1\tlocalhost\n"));
  EXPECT_THAT(hosts, HasSubstr("10.90.0.2\tweb\n"));
  EXPECT_THAT(hosts, HasSubstr("10.90.0.3\tdb\n"));
  EXPECT_THAT(hosts, Not(HasSubstr("other")));  // not on a network web is on
  EXPECT_LT(hosts.find("10.90.0.2"), hosts.find("10.90.0.3"));  // its own line first
}

TEST(RenderHosts, AliasesHostnameAndReplicaGroup) {
  Endpoint self = endpoint("aaaaaaaaaaaaaaaa", "client", "app", "10.90.0.9");
  Endpoint replica = endpoint("bbbbbbbbbbbbbbbb", "api-2", "app", "10.90.0.5");
  replica.group = "api";
  replica.hostname = "api-two";
  replica.attachments[0].address6 = ip("fd00::5");
  std::string hosts = render_hosts(self, {self, replica});
  EXPECT_THAT(hosts, HasSubstr("10.90.0.5\tapi-two api-2 api\n"));
  EXPECT_THAT(hosts, HasSubstr("fd00::5\tapi-two api-2\n"));
}

TEST(NetworkRecords, RequestRoundTripsAndOldRecordsMeanNone) {
  NetworkRequest r;
  r.mode = "bridge";
  r.networks = {"app"};
  auto ports = net::parse_port_spec("127.0.0.1:8080:80/udp").value();
  r.ports = ports;
  auto back = NetworkRequest::from_json(r.to_json());
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->mode, "bridge");
  EXPECT_EQ(back->networks, std::vector<std::string>{"app"});
  ASSERT_EQ(back->ports.size(), 1u);
  EXPECT_EQ(back->ports[0].str(), "127.0.0.1:8080->80/udp");
  auto old = NetworkRequest::from_json(nlohmann::json());  // container.json before networking
  ASSERT_TRUE(old);
  EXPECT_EQ(old->mode, "none");
  EXPECT_FALSE(NetworkRequest::from_json({{"mode", "bridge"}, {"ports", {{{"bad", 1}}}}}));
}

TEST(NetworkRecords, EndpointRoundTripsAndRejectsBadAddresses) {
  Endpoint e = endpoint("aaaaaaaaaaaaaaaa", "web", "app", "10.90.0.2");
  e.attachments[0].subnet6 = subnet("fd00:1::/64");
  e.attachments[0].address6 = ip("fd00:1::2");
  e.ports = net::parse_port_spec("8080:80").value();
  auto back = Endpoint::from_json(e.to_json());
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->to_json(), e.to_json());
  auto j = e.to_json();
  j["attachments"][0]["address"] = "10.90.0.300";
  EXPECT_FALSE(Endpoint::from_json(j));
  j = e.to_json();
  j.erase("attachments");
  EXPECT_FALSE(Endpoint::from_json(j));
}

}  // namespace
}  // namespace forker::engine
