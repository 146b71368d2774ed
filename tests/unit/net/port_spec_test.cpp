// -p parsing (every form docker takes, and the bad ones), str()/spec(), JSON round trips, and the
// host port checks against sockets the test itself binds on 127.0.0.1.
#include "net/port_spec.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "core/unique_fd.hpp"

namespace forker::net {
namespace {

PortMapping pm(std::string ip, uint16_t host, uint16_t container, std::string proto = "tcp",
               uint16_t host_end = 0) {
  PortMapping m;
  m.host_ip = std::move(ip);
  m.host_port = host;
  m.host_port_end = host_end;
  m.container_port = container;
  m.protocol = std::move(proto);
  return m;
}

std::vector<PortMapping> parse_ok(std::string_view spec) {
  auto r = parse_port_spec(spec);
  EXPECT_TRUE(r.has_value()) << spec << ": " << r.error().message();
  return r ? *r : std::vector<PortMapping>{};
}

std::string parse_err(std::string_view spec) {
  auto r = parse_port_spec(spec);
  EXPECT_FALSE(r.has_value()) << spec << " parsed";
  return r ? "" : r.error().message();
}

TEST(PortSpec, SinglePorts) {
  EXPECT_EQ(parse_ok("80"), std::vector{pm("", 0, 80)});
  EXPECT_EQ(parse_ok("8080:80"), std::vector{pm("", 8080, 80)});
  EXPECT_EQ(parse_ok("127.0.0.1:8080:80"), std::vector{pm("127.0.0.1", 8080, 80)});
  EXPECT_EQ(parse_ok("127.0.0.1::80"), std::vector{pm("127.0.0.1", 0, 80)});
  EXPECT_EQ(parse_ok("8080:80/udp"), std::vector{pm("", 8080, 80, "udp")});
  EXPECT_EQ(parse_ok("8080:80/tcp"), std::vector{pm("", 8080, 80)});
  EXPECT_EQ(parse_ok("0.0.0.0:8080:80"), std::vector{pm("", 8080, 80)});  // all addresses
  EXPECT_EQ(parse_ok(":8080:80"), std::vector{pm("", 8080, 80)});
  EXPECT_EQ(parse_ok("0:80"), std::vector{pm("", 0, 80)});  // docker's "pick one"
  EXPECT_EQ(parse_ok("65535:1"), std::vector{pm("", 65535, 1)});
}

TEST(PortSpec, Ranges) {
  EXPECT_EQ(parse_ok("8000-8002:80-82"),
            (std::vector{pm("", 8000, 80), pm("", 8001, 81), pm("", 8002, 82)}));
  EXPECT_EQ(parse_ok("80-82"), (std::vector{pm("", 0, 80), pm("", 0, 81), pm("", 0, 82)}));
  EXPECT_EQ(parse_ok("127.0.0.1::80-81/udp"),
            (std::vector{pm("127.0.0.1", 0, 80, "udp"), pm("127.0.0.1", 0, 81, "udp")}));
  EXPECT_EQ(parse_ok("8000-8010:80"), std::vector{pm("", 8000, 80, "tcp", 8010)});
  EXPECT_EQ(parse_ok("8000-8000:80"), std::vector{pm("", 8000, 80)});
  EXPECT_EQ(parse_ok("80-80"), std::vector{pm("", 0, 80)});
}

TEST(PortSpec, BadForms) {
  EXPECT_EQ(parse_err("80:abc"), "-p 80:abc: invalid container port abc");
  EXPECT_EQ(parse_err("abc"), "-p abc: invalid container port abc");
  EXPECT_EQ(parse_err("70000:80"), "-p 70000:80: invalid host port 70000");
  EXPECT_EQ(parse_err("80:70000"), "-p 80:70000: invalid container port 70000");
  EXPECT_EQ(parse_err("80:"), "-p 80:: missing container port");
  EXPECT_EQ(parse_err(""), "-p : missing container port");
  EXPECT_EQ(parse_err("1-2:3-5"),
            "-p 1-2:3-5: host port range 1-2 and container port range 3-5 differ in length");
  EXPECT_EQ(parse_err("8080:80/sctp"),
            "-p 8080:80/sctp: protocol sctp is not supported (tcp or udp)");
  EXPECT_EQ(parse_err("80/"), "-p 80/: protocol \"\" is not supported (tcp or udp)");
  EXPECT_EQ(parse_err("8080:80/TCP"), "-p 8080:80/TCP: protocol TCP is not supported (tcp or udp)");
  EXPECT_EQ(parse_err("0"), "-p 0: invalid container port 0");
  EXPECT_EQ(parse_err("82-80"), "-p 82-80: invalid container port 82-80");
  EXPECT_EQ(parse_err("0-5:80"), "-p 0-5:80: invalid host port 0-5");
  EXPECT_EQ(parse_err("-80"), "-p -80: invalid container port -80");
  EXPECT_EQ(parse_err("+80"), "-p +80: invalid container port +80");
  EXPECT_EQ(parse_err("8080:80-82"),
            "-p 8080:80-82: host port range 8080 and container port range 80-82 differ in length");
  EXPECT_EQ(parse_err("localhost:8080:80"), "-p localhost:8080:80: invalid host address localhost");
  EXPECT_EQ(parse_err("1.2.3:8080:80"), "-p 1.2.3:8080:80: invalid host address 1.2.3");
  EXPECT_EQ(parse_err("[::1]:8080:80"),
            "-p [::1]:8080:80: IPv6 host address ::1 is not supported (ports are published on "
            "IPv4 addresses)");
  EXPECT_EQ(parse_err("::1:8080:80"),
            "-p ::1:8080:80: expected [IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL] (IPv6 host "
            "addresses are not supported)");
  EXPECT_EQ(parse_err("[::1:8080:80"), "-p [::1:8080:80: missing ']' after the host address");
  EXPECT_EQ(parse_err("[]:8080:80"), "-p []:8080:80: empty host address in brackets");
  EXPECT_EQ(parse_err("[127.0.0.1]:8080:80"),
            "-p [127.0.0.1]:8080:80: brackets are for IPv6 addresses: 127.0.0.1");
  EXPECT_EQ(parse_err("1:2:3:4"),
            "-p 1:2:3:4: expected [IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL] (IPv6 host "
            "addresses are not supported)");
}

TEST(PortSpec, StrAndSpec) {
  EXPECT_EQ(pm("", 8080, 80).str(), "0.0.0.0:8080->80/tcp");
  EXPECT_EQ(pm("127.0.0.1", 8080, 80).str(), "127.0.0.1:8080->80/tcp");
  EXPECT_EQ(pm("", 53, 53, "udp").str(), "0.0.0.0:53->53/udp");
  EXPECT_EQ(pm("", 8000, 80, "tcp", 8010).str(), "0.0.0.0:8000-8010->80/tcp");
  EXPECT_EQ(pm("", 8080, 80).spec(), "8080:80");
  EXPECT_EQ(pm("", 0, 80).spec(), "80");
  EXPECT_EQ(pm("127.0.0.1", 0, 80, "udp").spec(), "127.0.0.1::80/udp");
  EXPECT_EQ(pm("10.0.0.1", 8000, 80, "tcp", 8010).spec(), "10.0.0.1:8000-8010:80");
  // spec() parses back to the same mapping.
  for (const auto& m : {pm("", 8080, 80), pm("127.0.0.1", 0, 80, "udp"),
                        pm("10.0.0.1", 8000, 80, "tcp", 8010), pm("", 0, 1)})
    EXPECT_EQ(parse_ok(m.spec()), std::vector{m}) << m.spec();
}

TEST(PortSpec, JsonRoundTrip) {
  for (const auto& m :
       {pm("", 8080, 80), pm("127.0.0.1", 0, 80, "udp"), pm("10.0.0.1", 8000, 80, "tcp", 8010)}) {
    auto back = PortMapping::from_json(m.to_json());
    ASSERT_TRUE(back.has_value()) << back.error().message();
    EXPECT_EQ(*back, m);
  }
  EXPECT_FALSE(pm("", 8080, 80).to_json().contains("host_port_end"));
  EXPECT_EQ(pm("", 8000, 80, "tcp", 8010).to_json()["host_port_end"], 8010);
}

TEST(PortSpec, JsonErrors) {
  using nlohmann::json;
  auto err = [](const json& j) {
    auto r = PortMapping::from_json(j);
    EXPECT_FALSE(r.has_value()) << j.dump();
    return r ? "" : r.error().message();
  };
  EXPECT_EQ(err(json::array()), "port mapping: expected a JSON object");
  EXPECT_EQ(err(json{{"host_port", 1}}), "port mapping: container_port: missing");
  EXPECT_EQ(err(json{{"container_port", 70000}}),
            "port mapping: container_port: expected a port number");
  EXPECT_EQ(err(json{{"container_port", json(uint64_t{1} << 63)}}),
            "port mapping: container_port: expected a port number");
  EXPECT_EQ(err(json{{"container_port", 8.5}}),
            "port mapping: container_port: expected a port number");
  EXPECT_EQ(err(json{{"container_port", -1}}),
            "port mapping: container_port: expected a port number");
  EXPECT_EQ(err(json{{"container_port", 0}}), "port mapping: container_port: must be 1-65535");
  EXPECT_EQ(err(json{{"container_port", 80}, {"protocol", "sctp"}}),
            "port mapping: protocol must be tcp or udp");
  EXPECT_EQ(err(json{{"container_port", 80}, {"protocol", 6}}),
            "port mapping: protocol: expected a string");
  EXPECT_EQ(err(json{{"container_port", 80}, {"host_ip", "::1"}}),
            "port mapping: host_ip: not an IPv4 address: ::1");
  EXPECT_EQ(err(json{{"container_port", 80}, {"host_port", 90}, {"host_port_end", 89}}),
            "port mapping: host_port_end is below host_port");
  auto minimal = PortMapping::from_json(json{{"container_port", 80}});
  ASSERT_TRUE(minimal.has_value());
  EXPECT_EQ(*minimal, pm("", 0, 80));
}

// A socket bound to 127.0.0.1 on a port the kernel picks; listening when TCP.
struct BoundSocket {
  UniqueFd fd;
  uint16_t port = 0;
};

BoundSocket bind_loopback(int type) {
  BoundSocket s;
  s.fd = UniqueFd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(s.fd.valid());
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(s.fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  if (type == SOCK_STREAM) {
    EXPECT_EQ(::listen(s.fd.get(), 1), 0);
  }
  socklen_t len = sizeof sa;
  EXPECT_EQ(::getsockname(s.fd.get(), reinterpret_cast<sockaddr*>(&sa), &len), 0);
  s.port = ntohs(sa.sin_port);
  return s;
}

TEST(PortCheck, TcpPortInUse) {
  BoundSocket busy = bind_loopback(SOCK_STREAM);
  std::string p = std::to_string(busy.port);
  Status st = check_host_port_free(pm("127.0.0.1", busy.port, 80));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(), "-p 127.0.0.1:" + p + ":80: host port " + p +
                                      "/tcp on 127.0.0.1: Address already in use");
  EXPECT_EQ(st.error().err, EADDRINUSE);
  // The wildcard address conflicts with a listener on one address too.
  Status any = check_host_port_free(pm("", busy.port, 80));
  ASSERT_FALSE(any.has_value());
  EXPECT_EQ(any.error().message(),
            "-p " + p + ":80: host port " + p + "/tcp on 0.0.0.0: Address already in use");
  // UDP is another port space.
  EXPECT_TRUE(check_host_port_free(pm("127.0.0.1", busy.port, 80, "udp")).has_value());
  busy.fd.reset();
  Status freed = check_host_port_free(pm("127.0.0.1", busy.port, 80));
  EXPECT_TRUE(freed.has_value()) << freed.error().message();
}

TEST(PortCheck, UdpPortInUse) {
  BoundSocket busy = bind_loopback(SOCK_DGRAM);
  std::string p = std::to_string(busy.port);
  Status st = check_host_port_free(pm("127.0.0.1", busy.port, 53, "udp"));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(), "-p 127.0.0.1:" + p + ":53/udp: host port " + p +
                                      "/udp on 127.0.0.1: Address already in use");
}

TEST(PortCheck, RangeAndUnsetPort) {
  EXPECT_TRUE(check_host_port_free(pm("127.0.0.1", 0, 80)).has_value());
  BoundSocket busy = bind_loopback(SOCK_STREAM);
  std::string p = std::to_string(busy.port);
  Status st = check_host_port_free(pm("127.0.0.1", busy.port, 80, "tcp", busy.port));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(), "-p 127.0.0.1:" + p + "-" + p + ":80: no free host port in " + p +
                                      "-" + p + "/tcp on 127.0.0.1: Address already in use");
}

TEST(PortCheck, NonLocalAddress) {
  // 192.0.2.0/24 is TEST-NET-1: on no interface of a sane host.
  Status st = check_host_port_free(pm("192.0.2.1", 8080, 80));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(
      st.error().message(),
      "-p 192.0.2.1:8080:80: host port 8080/tcp on 192.0.2.1: Cannot assign requested address");
}

TEST(ResolveHostPort, PicksAFreePort) {
  auto r = resolve_host_port(pm("127.0.0.1", 0, 80));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_NE(r->host_port, 0);
  EXPECT_EQ(r->container_port, 80);
  auto u = resolve_host_port(pm("127.0.0.1", 0, 53, "udp"));
  ASSERT_TRUE(u.has_value()) << u.error().message();
  EXPECT_NE(u->host_port, 0);
}

TEST(ResolveHostPort, FixedPortUnchanged) {
  BoundSocket busy = bind_loopback(SOCK_STREAM);
  auto r = resolve_host_port(pm("127.0.0.1", busy.port, 80));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, pm("127.0.0.1", busy.port, 80));
}

TEST(ResolveHostPort, RangeSkipsBusyPorts) {
  BoundSocket busy = bind_loopback(SOCK_STREAM);
  if (busy.port > 65535 - 20) GTEST_SKIP() << "kernel picked a port at the top of the range";
  auto r = resolve_host_port(pm("127.0.0.1", busy.port, 80, "tcp", busy.port + 20));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_GT(r->host_port, busy.port);
  EXPECT_LE(r->host_port, busy.port + 20);
  EXPECT_EQ(r->host_port_end, 0);
  auto full = resolve_host_port(pm("127.0.0.1", busy.port, 80, "tcp", busy.port));
  ASSERT_FALSE(full.has_value());
  EXPECT_NE(full.error().message().find("no free host port in"), std::string::npos);
}

}  // namespace
}  // namespace forker::net
