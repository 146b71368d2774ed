// `forker run` on bridge networks: addresses and routes seen from inside, peers by name,
// published ports from 127.0.0.1 and from a client namespace the test makes, replicas behind
// one port, --network container:, and bad input that leaves nothing behind. Traffic goes only
// to 127.0.0.1 and to namespaces these tests create.
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/forker_cli_fixture.hpp"

namespace forker::test {
namespace {

using json = nlohmann::json;

// An HTTP GET of / to ADDRESS:PORT; the body, or "" when the connection failed.
std::string http_get(const std::string& address, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  std::string body;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    std::string req = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
    (void)!::write(fd, req.data(), req.size());
    std::string resp;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) resp.append(buf, static_cast<size_t>(n));
    auto at = resp.find("\r\n\r\n");
    if (at != std::string::npos) body = resp.substr(at + 4);
  }
  ::close(fd);
  while (!body.empty() && body.back() == '\n') body.pop_back();
  return body;
}

// Retries while a server is coming up.
std::string http_get_eventually(const std::string& address, int port) {
  for (int i = 0; i < 100; ++i) {
    std::string b = http_get(address, port);
    if (!b.empty()) return b;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "";
}

// busybox httpd on PORT serving its hostname (or TEXT).
std::vector<std::string> httpd(int port, const std::string& text = "") {
  std::string body = text.empty() ? "hostname" : "echo " + text;
  return {"busybox", "sh", "-c",
          "mkdir -p /www && " + body + " > /www/index.html && exec httpd -f -p " +
              std::to_string(port) + " -h /www"};
}

// A network namespace with a veth to the host, made with ip(8) and removed with everything
// in it when the object goes: a client that is not the host.
class ClientNamespace {
 public:
  ClientNamespace() {
    name_ = "fkt-client-" + std::to_string(::getpid());
    ok_ = run_cmd({"/usr/sbin/ip", "netns", "add", name_}).status == 0 &&
          run_cmd({"/usr/sbin/ip", "link", "add", "fkt-c0", "type", "veth", "peer", "name", "eth0",
                   "netns", name_})
                  .status == 0 &&
          run_cmd({"/usr/sbin/ip", "addr", "add", "10.213.9.1/30", "dev", "fkt-c0"}).status == 0 &&
          run_cmd({"/usr/sbin/ip", "link", "set", "fkt-c0", "up"}).status == 0 &&
          exec({"ip", "addr", "add", "10.213.9.2/30", "dev", "eth0"}).status == 0 &&
          exec({"ip", "link", "set", "eth0", "up"}).status == 0 &&
          exec({"ip", "link", "set", "lo", "up"}).status == 0 &&
          exec({"ip", "route", "add", "default", "via", "10.213.9.1"}).status == 0;
  }
  ~ClientNamespace() {
    run_cmd({"/usr/sbin/ip", "link", "del", "fkt-c0"});
    run_cmd({"/usr/sbin/ip", "netns", "del", name_});
  }
  bool ok() const { return ok_; }
  // http_get from inside the namespace (a thread that joins it: setns is per thread).
  std::string http_get(const std::string& address, int port) const {
    std::string body;
    std::thread t([&] {
      int fd = ::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) return;
      ::close(fd);
      body = forker::test::http_get(address, port);
    });
    t.join();
    return body;
  }
  RunResult exec(std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {"/usr/sbin/ip", "netns", "exec", name_});
    return run_cmd(argv);
  }

 private:
  std::string name_;
  bool ok_ = false;
};

class ForkerNetwork : public ForkerCliTest {
 protected:
  bool wait_running(const std::string& name) {
    for (int i = 0; i < 100; ++i) {
      RunResult r = forker({"inspect", name});
      if (r.status == 0 && json::parse(r.out)[0]["State"]["Running"] == true) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  json inspect(const std::string& name) {
    RunResult r = forker({"inspect", name});
    EXPECT_EQ(r.status, 0) << r.err;
    return r.status == 0 ? json::parse(r.out)[0] : json::object();
  }
};

// The default network: eth0 with an address of the default subnet, a default route through
// the bridge, and /etc/hosts naming the container's own address.
TEST_F(ForkerNetwork, DefaultBridgeFromInside) {
  RunResult r = forker({"run", "--rm", "--name", "inside", "busybox", "sh", "-c",
                        "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; ip route | grep default;"
                        "grep inside /etc/hosts; cat /sys/class/net/eth0/mtu"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto l = lines(r.out);
  ASSERT_EQ(l.size(), 4u) << r.out;
  EXPECT_TRUE(l[0].starts_with("inet 10.213.7.")) << l[0];
  EXPECT_TRUE(l[0].ends_with("/24")) << l[0];
  EXPECT_TRUE(l[1].starts_with("default via 10.213.7.1 dev eth0")) << l[1];
  EXPECT_EQ(l[2], l[0].substr(5, l[0].find('/') - 5) + "\tinside") << r.out;
  EXPECT_EQ(l[3], "1500");
  // The bridge is the gateway on the host; the container's veth went with it.
  RunResult link = run_cmd({"/usr/sbin/ip", "-4", "addr", "show", "forker0"});
  EXPECT_NE(link.out.find("10.213.7.1/24"), std::string::npos) << link.out;
  EXPECT_EQ(forker_links(), std::vector<std::string>{"forker0"});
  RunResult ls = forker({"network", "ls"});
  EXPECT_NE(ls.out.find("forker0"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("10.213.7.0/24"), std::string::npos) << ls.out;
}

// Two containers on one user network reach each other by name; /etc/hosts follows peers.
TEST_F(ForkerNetwork, PeersByNameOnAUserNetwork) {
  RunResult c = forker({"network", "create", "--subnet", "10.213.8.0/24", "fkt-net"});
  ASSERT_EQ(c.status, 0) << c.err;
  std::vector<std::string> args = {"--name", "web", "--network", "fkt-net"};
  auto h = httpd(80, "hello-from-web");
  args.insert(args.end(), h.begin(), h.end());
  run_detached(args);
  ASSERT_TRUE(wait_running("web"));
  json web = inspect("web");
  std::string web_ip = web["NetworkSettings"]["Networks"]["fkt-net"]["IPAddress"];
  EXPECT_TRUE(web_ip.starts_with("10.213.8.")) << web.dump();
  RunResult get;
  for (int i = 0; i < 50; ++i) {
    get = forker({"run", "--rm", "--network", "fkt-net", "--name", "client", "busybox", "sh",
                  "-c", "grep web /etc/hosts; wget -qO- http://web/"});
    if (get.status == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(get.status, 0) << get.out << get.err;
  auto l = lines(get.out);
  ASSERT_EQ(l.size(), 2u) << get.out;
  EXPECT_EQ(l[0].substr(0, l[0].find('\t')), web_ip);
  EXPECT_EQ(l[1], "hello-from-web");
  // The client left: web's /etc/hosts no longer names it; while it ran, it did (checked
  // from the client's side above through web's entry, and here after the fact).
  RunResult hosts = forker({"exec", "web", "cat", "/etc/hosts"});
  EXPECT_EQ(hosts.out.find("client"), std::string::npos) << hosts.out;
  // A network in use cannot go.
  RunResult rm = forker({"network", "rm", "fkt-net"});
  EXPECT_NE(rm.status, 0);
  EXPECT_NE(rm.err.find("in use"), std::string::npos) << rm.err;
}

// A network with an IPv6 subnet too: each container gets both addresses, and a peer answers
// on its IPv6 one.
TEST_F(ForkerNetwork, DualStackNetwork) {
  RunResult c = forker({"network", "create", "--subnet", "10.213.10.0/24", "--subnet",
                        "fd00:213:10::/64", "fkt-v6"});
  ASSERT_EQ(c.status, 0) << c.err;
  RunResult ni = forker({"network", "inspect", "fkt-v6"});
  ASSERT_EQ(ni.status, 0) << ni.err;
  json net = json::parse(ni.out)[0];
  EXPECT_EQ(net["EnableIPv6"], true);
  EXPECT_EQ(net["IPAM"]["Config"][1]["Subnet"], "fd00:213:10::/64");
  std::vector<std::string> args = {"--name", "web6", "--network", "fkt-v6"};
  auto h = httpd(80, "over-ipv6");
  args.insert(args.end(), h.begin(), h.end());
  run_detached(args);
  ASSERT_TRUE(wait_running("web6"));
  std::string v6 = inspect("web6")["NetworkSettings"]["GlobalIPv6Address"];
  ASSERT_TRUE(v6.starts_with("fd00:213:10::")) << v6;
  RunResult get;
  for (int i = 0; i < 50; ++i) {
    get = forker({"run", "--rm", "--network", "fkt-v6", "busybox", "sh", "-c",
                  "ip -6 route | grep default; wget -qO- http://[" + v6 + "]/"});
    if (get.status == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(get.status, 0) << get.out << get.err;
  auto l = lines(get.out);
  ASSERT_EQ(l.size(), 2u) << get.out;
  EXPECT_TRUE(l[0].starts_with("default via fd00:213:10::1 dev eth0")) << l[0];
  EXPECT_EQ(l[1], "over-ipv6");
}

// network connect/disconnect of a running container: an interface comes and goes at once,
// names follow in peers' /etc/hosts.
TEST_F(ForkerNetwork, ConnectAndDisconnectRunningContainer) {
  ASSERT_EQ(forker({"network", "create", "--subnet", "10.213.11.0/24", "fkt-n1"}).status, 0);
  ASSERT_EQ(forker({"network", "create", "--subnet", "10.213.12.0/24", "fkt-n2"}).status, 0);
  std::vector<std::string> args = {"--name", "srv", "--network", "fkt-n1"};
  auto h = httpd(80, "srv-here");
  args.insert(args.end(), h.begin(), h.end());
  run_detached(args);
  run_detached({"--name", "cli", "--network", "fkt-n2", "busybox", "sleep", "60"});
  ASSERT_TRUE(wait_running("srv"));
  ASSERT_TRUE(wait_running("cli"));
  EXPECT_NE(forker({"exec", "cli", "grep", "srv", "/etc/hosts"}).status, 0);  // not a peer yet

  RunResult c = forker({"network", "connect", "fkt-n1", "cli"});
  ASSERT_EQ(c.status, 0) << c.err;
  json nets = inspect("cli")["NetworkSettings"]["Networks"];
  ASSERT_TRUE(nets.contains("fkt-n1")) << nets.dump();
  std::string ip1 = nets["fkt-n1"]["IPAddress"];
  EXPECT_TRUE(ip1.starts_with("10.213.11.")) << ip1;
  RunResult inside = forker({"exec", "cli", "sh", "-c",
                             "ip -4 addr show eth1 | grep -o 'inet [0-9.]*'; wget -qO- http://srv/"});
  EXPECT_EQ(inside.status, 0) << inside.err;
  EXPECT_EQ(inside.out, "inet " + ip1 + "\nsrv-here\n");
  EXPECT_NE(forker({"exec", "srv", "cat", "/etc/hosts"}).out.find("\tcli"), std::string::npos);
  RunResult again = forker({"network", "connect", "fkt-n1", "cli"});
  EXPECT_NE(again.status, 0);
  EXPECT_NE(again.err.find("already connected"), std::string::npos) << again.err;

  RunResult d = forker({"network", "disconnect", "fkt-n1", "cli"});
  ASSERT_EQ(d.status, 0) << d.err;
  EXPECT_NE(forker({"exec", "cli", "ip", "link", "show", "eth1"}).status, 0);
  EXPECT_EQ(forker({"exec", "srv", "cat", "/etc/hosts"}).out.find("\tcli"), std::string::npos);
  EXPECT_FALSE(inspect("cli")["NetworkSettings"]["Networks"].contains("fkt-n1"));
  EXPECT_EQ(forker_links().size(), 4u);  // two bridges, two containers' eth0 ends
}

// -p: from 127.0.0.1 on the host (one port on 127.0.0.1 only, one on every address), from a
// client namespace through the host's address, and a random host port shown by `port`/`ps`.
TEST_F(ForkerNetwork, PublishedPorts) {
  std::vector<std::string> args = {"--name", "pub", "-p", "127.0.0.1:18080:80", "-p",
                                   "18081:80", "-p", "80", "-p", "18086-18087:80-81/udp"};
  auto h = httpd(80, "published");
  args.insert(args.end(), h.begin(), h.end());
  run_detached(args);
  ASSERT_TRUE(wait_running("pub"));
  EXPECT_EQ(http_get_eventually("127.0.0.1", 18080), "published");
  EXPECT_EQ(http_get_eventually("127.0.0.1", 18081), "published");

  RunResult port = forker({"port", "pub"});
  ASSERT_EQ(port.status, 0) << port.err;
  auto l = lines(port.out);
  ASSERT_EQ(l.size(), 5u) << port.out;
  EXPECT_EQ(l[0], "80/tcp -> 127.0.0.1:18080");
  EXPECT_EQ(l[1], "80/tcp -> 0.0.0.0:18081");
  ASSERT_TRUE(l[2].starts_with("80/tcp -> 0.0.0.0:")) << l[2];
  EXPECT_EQ(l[3], "80/udp -> 0.0.0.0:18086");  // a range: one mapping per port
  EXPECT_EQ(l[4], "81/udp -> 0.0.0.0:18087");
  RunResult nft = run_cmd({"/usr/sbin/nft", "list", "table", "inet", "forker"});
  EXPECT_NE(nft.out.find("udp dport 18087 dnat ip to"), std::string::npos) << nft.out;
  int random_port = std::stoi(l[2].substr(l[2].rfind(':') + 1));
  EXPECT_GT(random_port, 0);
  EXPECT_EQ(http_get_eventually("127.0.0.1", random_port), "published");
  RunResult ps = forker({"ps", "--format", "{{.Ports}}"});
  EXPECT_NE(ps.out.find("127.0.0.1:18080->80/tcp"), std::string::npos) << ps.out;

  ClientNamespace client;
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client.http_get("10.213.9.1", 18081), "published");
  // 127.0.0.1-only: not through another address.
  EXPECT_EQ(client.http_get("10.213.9.1", 18080), "");

  // The container reaches its own published port through the host (hairpin).
  RunResult hairpin = forker({"exec", "pub", "wget", "-qO-", "http://10.213.7.1:18081/"});
  EXPECT_EQ(hairpin.out, "published\n") << hairpin.err;
}

// --replicas 3 -p: one port spread over the three; a stopped replica leaves the rotation at
// once, and one restarted by its policy comes back.
TEST_F(ForkerNetwork, ReplicasBehindOnePort) {
  std::vector<std::string> args = {"run", "--replicas", "3", "--name", "rep", "--restart",
                                   "always", "-p", "18082:80"};
  auto h = httpd(80);
  args.insert(args.end(), h.begin(), h.end());
  RunResult r = forker(args);
  ASSERT_EQ(r.status, 0) << r.err;
  for (const auto& id : lines(r.out)) seen_.insert(id);
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(wait_running("rep-" + std::to_string(i)));
  for (int i = 1; i <= 3; ++i) {  // every server is up before counting
    std::string ip = inspect("rep-" + std::to_string(i))["NetworkSettings"]["IPAddress"];
    ASSERT_EQ(http_get_eventually(ip, 80), "rep-" + std::to_string(i));
  }
  std::map<std::string, int> hits;
  for (int i = 0; i < 300; ++i) ++hits[http_get("127.0.0.1", 18082)];
  EXPECT_EQ(hits.size(), 3u);
  for (int i = 1; i <= 3; ++i) EXPECT_GT(hits["rep-" + std::to_string(i)], 0) << i;
  EXPECT_EQ(hits.count(""), 0u) << "failed connections: " << hits[""];

  ASSERT_EQ(forker({"stop", "-t", "1", "rep-2"}).status, 0);
  hits.clear();
  for (int i = 0; i < 60; ++i) ++hits[http_get("127.0.0.1", 18082)];
  EXPECT_EQ(hits.count("rep-2"), 0u);
  EXPECT_EQ(hits.count(""), 0u) << "failed connections after a stop: " << hits[""];
  EXPECT_GT(hits["rep-1"], 0);
  EXPECT_GT(hits["rep-3"], 0);

  // rep-3 dies (not stopped): its restart policy brings it back into the rotation.
  int pid = inspect("rep-3")["State"]["Pid"];
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGKILL);
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    json j = inspect("rep-3");
    back = j["State"]["Running"] == true && j["State"]["Pid"] != pid;
  }
  ASSERT_TRUE(back);
  hits.clear();
  for (int i = 0; i < 100 && hits["rep-3"] == 0; ++i) ++hits[http_get("127.0.0.1", 18082)];
  EXPECT_GT(hits["rep-3"], 0);
}

// --network container:NAME joins NAME's namespace: same interfaces, its loopback services.
TEST_F(ForkerNetwork, ContainerModeSharesTheNamespace) {
  std::vector<std::string> args = {"--name", "owner"};
  auto h = httpd(8080, "owner-says-hi");
  args.insert(args.end(), h.begin(), h.end());
  run_detached(args);
  ASSERT_TRUE(wait_running("owner"));
  std::string owner_ns = lines(forker({"exec", "owner", "readlink", "/proc/1/ns/net"}).out).at(0);
  RunResult r;
  for (int i = 0; i < 50; ++i) {
    r = forker({"run", "--rm", "--network", "container:owner", "busybox", "sh", "-c",
                "readlink /proc/self/ns/net; wget -qO- http://127.0.0.1:8080/"});
    if (r.status == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(r.status, 0) << r.err;
  auto l = lines(r.out);
  ASSERT_EQ(l.size(), 2u) << r.out;
  EXPECT_EQ(l[0], owner_ns);
  EXPECT_EQ(l[1], "owner-says-hi");
  RunResult missing = forker({"run", "--rm", "--network", "container:nobody", "busybox", "true"});
  EXPECT_EQ(missing.status, 125);
  EXPECT_NE(missing.err.find("nobody"), std::string::npos) << missing.err;
}

// Two stores on one host both call their default network forker0: the second cannot take a
// bridge the first has up, and removing its own forker0 leaves the first's bridge alone.
TEST_F(ForkerNetwork, AnotherStoresBridgeIsLeftAlone) {
  const std::string other = dir_ + "/other-store";
  auto in_other = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {FORKER_CLI_BIN, "--storage-root", other});
    RunResult r = run_cmd(args, 60);
    reap();
    return r;
  };
  struct Cleanup {
    std::function<void()> f;
    ~Cleanup() { f(); }
  } cleanup{[&] {
    in_other({"rm", "-f", "owner"});
    for (const auto& e : remove_forker_networks(other)) ADD_FAILURE() << e;
  }};
  RunResult o = in_other({"run", "-d", "--name", "owner", "busybox", "sleep", "60"});
  ASSERT_EQ(o.status, 0) << o.err;
  // The same subnet: refused before anything is made, its route is the other's.
  RunResult same = forker({"run", "--rm", "busybox", "true"});
  EXPECT_EQ(same.status, 125);
  EXPECT_NE(same.err.find("overlaps the host route"), std::string::npos) << same.err;
  EXPECT_EQ(forker({"network", "ls", "-q"}).out, "");
  // Another subnet: the network is made, but the bridge name is taken.
  ::setenv("FORKER_DEFAULT_SUBNET", "10.213.13.0/24", 1);
  RunResult mine = forker({"run", "--rm", "busybox", "true"});
  ::setenv("FORKER_DEFAULT_SUBNET", kTestDefaultSubnet, 1);
  EXPECT_EQ(mine.status, 125);
  EXPECT_NE(mine.err.find("another store"), std::string::npos) << mine.err;
  RunResult rm = forker({"network", "rm", "forker0"});
  EXPECT_EQ(rm.status, 0) << rm.err;
  EXPECT_EQ(forker_links().size(), 2u);  // the other store's forker0 and its container's veth
  EXPECT_EQ(in_other({"exec", "owner", "ip", "-4", "-o", "addr", "show", "eth0"}).status, 0);
}

// Bad input: one clear line, exit 125, and nothing created.
TEST_F(ForkerNetwork, BadInputLeavesNothing) {
  // A host port someone holds.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(18083);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  RunResult busy = forker({"run", "--rm", "-p", "127.0.0.1:18083:80", "busybox", "true"});
  ::close(fd);
  EXPECT_EQ(busy.status, 125);
  EXPECT_NE(busy.err.find("Address already in use"), std::string::npos) << busy.err;
  EXPECT_EQ(lines(busy.err).size(), 1u) << busy.err;
  EXPECT_EQ(forker({"ps", "-aq"}).out, "");

  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  for (const Case& c : std::vector<Case>{
           {{"run", "--rm", "-p", "80:abc", "busybox", "true"}, "abc"},
           {{"run", "--rm", "-p", "70000:80", "busybox", "true"}, "70000"},
           {{"run", "--rm", "--network", "nosuchnet", "busybox", "true"}, "nosuchnet"},
           {{"run", "--rm", "--network", "none", "-p", "80", "busybox", "true"}, "-p"},
           {{"network", "create", "--subnet", "10.213.8.0/33", "bad"}, "10.213.8.0/33"},
           {{"network", "create", "--subnet", "10.213.8.1/24", "bad"}, "host bits"},
           {{"network", "create", "--subnet", "banana", "bad"}, "banana"},
           {{"network", "rm", "nosuchnet"}, "nosuchnet"},
       }) {
    RunResult r = forker(c.args);
    EXPECT_NE(r.status, 0) << c.args[2];
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  }
  // Overlapping subnets.
  ASSERT_EQ(forker({"network", "create", "--subnet", "10.213.8.0/24", "first"}).status, 0);
  RunResult overlap = forker({"network", "create", "--subnet", "10.213.8.128/25", "second"});
  EXPECT_NE(overlap.status, 0);
  EXPECT_NE(overlap.err.find("overlap"), std::string::npos) << overlap.err;
  EXPECT_EQ(lines(forker({"network", "ls", "-q"}).out), std::vector<std::string>{"first"});
  EXPECT_EQ(forker({"ps", "-aq"}).out, "");
  // Nothing was attached, so no bridge was made for either network.
  EXPECT_TRUE(forker_links().empty());
}

}  // namespace
}  // namespace forker::test
