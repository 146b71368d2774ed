// The network store in a temp root: create (subnet choice, overlaps, gateways, names), the default
// network, lookup, removal, the store lock, and IPAM (order, reuse, reclaim, full subnets, and
// distinct addresses for concurrent processes).
#include "net/networks.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>

#include "core/unique_fd.hpp"
#include "support/temp_dir.hpp"

namespace forker::net {
namespace {

using ::forker::test::TempDir;
using nlohmann::json;

const auto kAlive = [](const std::string&) { return true; };
const auto kDead = [](const std::string&) { return false; };

Subnet cidr(const char* text) { return *Subnet::parse(text); }
IpAddress ip(const char* text) { return *IpAddress::parse(text); }

// Sets or unsets an environment variable for one test and restores it.
class EnvGuard {
 public:
  EnvGuard(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~EnvGuard() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class NetworksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    auto s = NetworkStore::open(tmp_.at("networks"));
    ASSERT_TRUE(s.has_value()) << s.error().message();
    store_.emplace(std::move(*s));
  }

  NetworkConfig create_ok(NetworkCreateOptions o, const std::vector<Subnet>& routes = {}) {
    auto n = store_->create(o, routes);
    EXPECT_TRUE(n.has_value()) << n.error().message();
    return n ? *n : NetworkConfig{};
  }
  std::string create_err(NetworkCreateOptions o, const std::vector<Subnet>& routes = {}) {
    auto n = store_->create(o, routes);
    EXPECT_FALSE(n.has_value()) << o.name << " created";
    return n ? "" : n.error().message();
  }
  static NetworkCreateOptions opts(std::string name, std::string subnet = "",
                                   std::string gateway = "") {
    NetworkCreateOptions o;
    o.name = std::move(name);
    o.subnet = std::move(subnet);
    o.gateway = std::move(gateway);
    return o;
  }
  Lease lease_ok(const NetworkConfig& n, const std::string& id,
                 const std::function<bool(const std::string&)>& exists = kAlive) {
    auto l = store_->lease(n, id, exists);
    EXPECT_TRUE(l.has_value()) << l.error().message();
    return l ? *l : Lease{};
  }

  TempDir tmp_;
  std::optional<NetworkStore> store_;
};

TEST_F(NetworksTest, CreatePicksFreeSubnets) {
  NetworkConfig a = create_ok(opts("a"));
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.id.size(), 64u);
  EXPECT_EQ(a.id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(a.bridge, "fk-" + a.id.substr(0, 12));
  EXPECT_EQ(a.bridge.size(), 15u);
  EXPECT_EQ(a.subnet, cidr("10.89.0.0/16"));
  EXPECT_EQ(a.gateway, ip("10.89.0.1"));
  EXPECT_FALSE(a.subnet6.has_value());
  EXPECT_FALSE(a.internal);
  EXPECT_EQ(a.mtu, 1500);
  EXPECT_EQ(a.created.size() > 20 && a.created.back() == 'Z', true) << a.created;
  EXPECT_TRUE(std::filesystem::is_regular_file(tmp_.at("networks/" + a.id + "/network.json")));
  EXPECT_TRUE(std::filesystem::is_directory(tmp_.at("networks/" + a.id + "/leases")));

  EXPECT_EQ(create_ok(opts("b")).subnet, cidr("10.90.0.0/16"));
  // Host routes push the choice on; the default route is no conflict.
  NetworkConfig c = create_ok(
      opts("c"), {cidr("0.0.0.0/0"), cidr("10.91.3.0/24"), cidr("10.92.0.0/15"), cidr("fd00::/8")});
  EXPECT_EQ(c.subnet, cidr("10.94.0.0/16"));
}

TEST_F(NetworksTest, CreateWithSubnetAndGateway) {
  NetworkCreateOptions o = opts("web", "192.168.77.0/24", "192.168.77.254");
  o.internal = true;
  NetworkConfig n = create_ok(o);
  EXPECT_EQ(n.subnet, cidr("192.168.77.0/24"));
  EXPECT_EQ(n.gateway, ip("192.168.77.254"));
  EXPECT_TRUE(n.internal);
  EXPECT_EQ(create_ok(opts("web2", "192.168.78.0/24")).gateway, ip("192.168.78.1"));
}

TEST_F(NetworksTest, OverlapErrors) {
  create_ok(opts("a", "10.1.0.0/24"));
  EXPECT_EQ(create_err(opts("b", "10.1.0.0/16")),
            "network create b: subnet 10.1.0.0/16 overlaps network a (10.1.0.0/24)");
  EXPECT_EQ(create_err(opts("b", "10.1.0.128/25")),
            "network create b: subnet 10.1.0.128/25 overlaps network a (10.1.0.0/24)");
  EXPECT_EQ(create_err(opts("foo", "10.2.0.0/16"), {cidr("10.2.3.0/24")}),
            "network create foo: subnet 10.2.0.0/16 overlaps the host route 10.2.3.0/24");
  EXPECT_EQ(create_err(opts("foo", "10.2.3.128/25"), {cidr("10.2.0.0/16")}),
            "network create foo: subnet 10.2.3.128/25 overlaps the host route 10.2.0.0/16");
  // Neighbours and the default route are fine.
  create_ok(opts("c", "10.1.1.0/24"), {cidr("0.0.0.0/0"), cidr("10.1.2.0/24")});
}

TEST_F(NetworksTest, BadSubnetsAndGateways) {
  EXPECT_EQ(create_err(opts("x", "10.1.0.0")),
            "network create x: parse subnet 10.1.0.0: not in CIDR form (ADDRESS/PREFIX)");
  EXPECT_EQ(create_err(opts("x", "abc/16")), "network create x: parse subnet abc/16: bad address");
  EXPECT_EQ(create_err(opts("x", "10.1.0.0/33")),
            "network create x: parse subnet 10.1.0.0/33: prefix must be 0..32");
  EXPECT_NE(create_err(opts("x", "10.1.0.1/16")).find("host bits set (did you mean 10.1.0.0/16?)"),
            std::string::npos);
  EXPECT_EQ(create_err(opts("x", "10.1.0.0/31")),
            "network create x: subnet 10.1.0.0/31 is too small (prefix at most /30)");
  EXPECT_EQ(create_err(opts("x", "fd00::/64")),
            "network create x: subnet fd00::/64 is not an IPv4 subnet (give IPv6 subnets with "
            "--subnet6)");
  EXPECT_EQ(create_err(opts("x", "10.1.0.0/16", "10.2.0.1")),
            "network create x: gateway 10.2.0.1 is not in subnet 10.1.0.0/16");
  EXPECT_EQ(create_err(opts("x", "10.1.0.0/16", "10.1.255.255")),
            "network create x: gateway 10.1.255.255 is the network or broadcast address of "
            "10.1.0.0/16");
  EXPECT_EQ(
      create_err(opts("x", "10.1.0.0/16", "10.1.0.0")),
      "network create x: gateway 10.1.0.0 is the network or broadcast address of 10.1.0.0/16");
  EXPECT_EQ(create_err(opts("x", "10.1.0.0/16", "gw")),
            "network create x: parse IP address gw: not an IPv4 or IPv6 address");
  EXPECT_EQ(create_err(opts("x", "", "10.1.0.1")), "network create x: --gateway needs --subnet");
  // Nothing was left behind by the failures.
  auto all = store_->list();
  ASSERT_TRUE(all.has_value());
  EXPECT_TRUE(all->empty());
  for (auto& e : std::filesystem::directory_iterator(tmp_.at("networks")))
    EXPECT_EQ(e.path().filename(), ".lock");
}

TEST_F(NetworksTest, Names) {
  create_ok(opts("a.b_c-1"));
  EXPECT_EQ(create_err(opts("a.b_c-1")),
            "network create a.b_c-1: network with name a.b_c-1 already exists");
  EXPECT_NE(create_err(opts("-x")).find("invalid network name \"-x\""), std::string::npos);
  EXPECT_NE(create_err(opts("")).find("invalid network name \"\""), std::string::npos);
  EXPECT_NE(create_err(opts("a/b")).find("invalid network name"), std::string::npos);
  EXPECT_NE(create_err(opts(std::string(129, 'a'))).find("invalid network name"),
            std::string::npos);
  EXPECT_EQ(create_err(opts("host")),
            "network create host: network name host is reserved for --network host");
  EXPECT_TRUE(validate_network_name(std::string(128, 'a')).has_value());
}

TEST_F(NetworksTest, Ipv6) {
  NetworkCreateOptions o = opts("v6");
  o.ipv6 = true;
  NetworkConfig n = create_ok(o);
  ASSERT_TRUE(n.subnet6.has_value());
  EXPECT_EQ(n.subnet6->prefix, 64);
  EXPECT_EQ(n.subnet6->base.bytes[0], 0xfd);
  EXPECT_EQ(n.gateway6, n.subnet6->host(1));
  Lease l = lease_ok(n, "c1");
  ASSERT_TRUE(l.address6.has_value());
  EXPECT_EQ(*l.address6, n.subnet6->host(2));

  NetworkCreateOptions e = opts("v6b");
  e.subnet6 = "fd00:1::/64";
  e.gateway6 = "fd00:1::3";  // the address a lease at offset 3 would get: skipped
  NetworkConfig m = create_ok(e);
  EXPECT_EQ(m.gateway6, ip("fd00:1::3"));
  EXPECT_EQ(lease_ok(m, "c1").address6, ip("fd00:1::2"));
  Lease second = lease_ok(m, "c2");
  EXPECT_EQ(second.address, m.subnet.host(4));
  EXPECT_EQ(second.address6, ip("fd00:1::4"));

  NetworkCreateOptions clash = opts("v6c");
  clash.subnet6 = "fd00:1::/48";
  EXPECT_EQ(create_err(clash),
            "network create v6c: subnet fd00:1::/48 overlaps network v6b (fd00:1::/64)");
  NetworkCreateOptions v4in6 = opts("v6d");
  v4in6.subnet6 = "10.9.0.0/16";
  EXPECT_EQ(create_err(v4in6), "network create v6d: subnet 10.9.0.0/16 is not an IPv6 subnet");
  NetworkCreateOptions gw = opts("v6e");
  gw.gateway6 = "fd00:2::1";
  EXPECT_EQ(create_err(gw), "network create v6e: --gateway6 needs --subnet6");
}

TEST_F(NetworksTest, GetListRemove) {
  // Names that are not hex: a removed name must not fall back to an id prefix match.
  NetworkConfig b = create_ok(opts("beta"));
  NetworkConfig a = create_ok(opts("alpha"));
  auto all = store_->list();
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "alpha");
  EXPECT_EQ((*all)[1].name, "beta");
  EXPECT_EQ((*all)[0].to_json(), a.to_json());

  EXPECT_EQ(store_->get("alpha")->id, a.id);
  EXPECT_EQ(store_->get(b.id)->name, "beta");
  EXPECT_EQ(store_->get(b.id.substr(0, 12))->name, "beta");
  auto missing = store_->get("foo");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message(), "network foo: no such network");
  EXPECT_FALSE(store_->get("").has_value());

  ASSERT_TRUE(store_->remove("alpha", kAlive).has_value());
  auto gone = store_->get("alpha");
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().message(), "network alpha: no such network");
  EXPECT_FALSE(std::filesystem::exists(tmp_.at("networks/" + a.id)));
  ASSERT_TRUE(store_->remove(b.id.substr(0, 8), kAlive).has_value());
  EXPECT_TRUE(store_->list()->empty());
  auto again = store_->remove("alpha", kAlive);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().message(), "network alpha: no such network");
  // The subnet is free again.
  EXPECT_EQ(create_ok(opts("c")).subnet, cidr("10.89.0.0/16"));
}

TEST_F(NetworksTest, AmbiguousIdPrefix) {
  NetworkConfig a = create_ok(opts("a", "10.1.0.0/24"));
  NetworkConfig b = create_ok(opts("b", "10.2.0.0/24"));
  // Give both ids the same first digits by rewriting the second network's files.
  NetworkConfig b2 = b;
  b2.id = a.id.substr(0, 10) + std::string(54, '0');
  std::filesystem::rename(tmp_.at("networks/" + b.id), tmp_.at("networks/" + b2.id));
  tmp_.write("networks/" + b2.id + "/network.json", b2.to_json().dump());
  auto r = store_->get(a.id.substr(0, 10));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(),
            "network " + a.id.substr(0, 10) + ": id prefix matches 2 networks");
  EXPECT_EQ(store_->get(a.id)->name, "a");
  EXPECT_EQ(store_->get(b2.id)->name, "b");
}

TEST_F(NetworksTest, RemoveRefusedWhileInUse) {
  NetworkConfig n = create_ok(opts("foo", "10.5.0.0/24"));
  std::string id = std::string(64, 'c');
  lease_ok(n, id);
  auto st = store_->remove("foo", kAlive);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message(), "network rm foo: in use by container cccccccccccc");
  EXPECT_TRUE(store_->get("foo").has_value());
  // The holder is gone: its lease goes with the network.
  ASSERT_TRUE(store_->remove("foo", kDead).has_value());
  EXPECT_FALSE(store_->get("foo").has_value());
  // A lease or release on the removed network.
  auto l = store_->lease(n, "c2", kAlive);
  ASSERT_FALSE(l.has_value());
  EXPECT_EQ(l.error().message(), "network foo: no such network");
  EXPECT_TRUE(store_->release(n, id).has_value());
}

TEST_F(NetworksTest, EnsureDefault) {
  {
    EnvGuard env(kDefaultSubnetEnv, "10.123.0.0/16");
    auto d = store_->ensure_default({});
    ASSERT_TRUE(d.has_value()) << d.error().message();
    EXPECT_EQ(d->name, "forker0");
    EXPECT_EQ(d->bridge, "forker0");
    EXPECT_EQ(d->subnet, cidr("10.123.0.0/16"));
    EXPECT_EQ(d->gateway, ip("10.123.0.1"));
  }
  // Once made it is returned as is, whatever the environment says now.
  EnvGuard env(kDefaultSubnetEnv, "10.124.0.0/16");
  auto again = store_->ensure_default({cidr("10.123.0.0/16")});
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_EQ(again->subnet, cidr("10.123.0.0/16"));
  EXPECT_EQ(store_->list()->size(), 1u);
}

TEST_F(NetworksTest, EnsureDefaultWithoutEnvironment) {
  EnvGuard env(kDefaultSubnetEnv, nullptr);
  auto clash = store_->ensure_default({cidr("10.88.0.0/24")});
  ASSERT_FALSE(clash.has_value());
  EXPECT_EQ(clash.error().message(),
            "network create forker0: subnet 10.88.0.0/16 overlaps the host route 10.88.0.0/24 "
            "(set FORKER_DEFAULT_SUBNET to choose another subnet)");
  auto d = store_->ensure_default({});
  ASSERT_TRUE(d.has_value()) << d.error().message();
  EXPECT_EQ(d->subnet, cidr("10.88.0.0/16"));
  EXPECT_EQ(store_->get(kDefaultNetwork)->id, d->id);
}

TEST_F(NetworksTest, EnsureDefaultBadEnvironment) {
  EnvGuard env(kDefaultSubnetEnv, "10.88.0.0");
  auto d = store_->ensure_default({});
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().message(),
            "network create forker0: parse subnet 10.88.0.0: not in CIDR form (ADDRESS/PREFIX) "
            "(from FORKER_DEFAULT_SUBNET)");
}

TEST_F(NetworksTest, ConfigJson) {
  NetworkCreateOptions o = opts("n", "10.7.0.0/16", "10.7.0.9");
  o.subnet6 = "fd00:7::/64";
  NetworkConfig n = create_ok(o);
  auto back = NetworkConfig::from_json(n.to_json());
  ASSERT_TRUE(back.has_value()) << back.error().message();
  EXPECT_EQ(back->to_json(), n.to_json());
  EXPECT_EQ(back->gateway6, n.subnet6->host(1));

  json bad = n.to_json();
  bad["id"] = "xyz";
  EXPECT_EQ(NetworkConfig::from_json(bad).error().message(),
            "network.json: field 'id': expected 64 hex digits");
  bad = n.to_json();
  bad.erase("subnet");
  EXPECT_EQ(NetworkConfig::from_json(bad).error().message(),
            "network.json: field 'subnet': missing");
  bad = n.to_json();
  bad["gateway"] = "10.8.0.1";
  EXPECT_EQ(NetworkConfig::from_json(bad).error().message(),
            "network.json: field 'gateway': not in IPv4 subnet 10.7.0.0/16");
  bad = n.to_json();
  bad["mtu"] = 10;
  EXPECT_EQ(NetworkConfig::from_json(bad).error().message(),
            "network.json: field 'mtu': expected an integer in 68..65535");
  bad = n.to_json();
  bad["internal"] = "yes";
  EXPECT_EQ(NetworkConfig::from_json(bad).error().message(),
            "network.json: field 'internal': expected a boolean");

  // A corrupt network.json is reported with its path, not skipped.
  tmp_.write("networks/" + n.id + "/network.json", "{");
  auto all = store_->list();
  ASSERT_FALSE(all.has_value());
  EXPECT_EQ(all.error().message(),
            tmp_.at("networks/" + n.id + "/network.json") + ": not valid JSON");
}

TEST_F(NetworksTest, LeaseOrderAndReuse) {
  NetworkConfig n = create_ok(opts("n", "10.89.0.0/16"));
  Lease a = lease_ok(n, "ca");
  EXPECT_EQ(a.container_id, "ca");
  EXPECT_EQ(a.address, ip("10.89.0.2"));
  EXPECT_FALSE(a.address6.has_value());
  EXPECT_EQ(a.mac, "02:42:0a:59:00:02");
  EXPECT_EQ(lease_ok(n, "cb").address, ip("10.89.0.3"));
  EXPECT_EQ(lease_ok(n, "cc").address, ip("10.89.0.4"));
  // The same container gets its lease back.
  EXPECT_EQ(lease_ok(n, "cb").address, ip("10.89.0.3"));
  auto all = store_->leases(n);
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].container_id, "ca");
  EXPECT_EQ((*all)[2].address, ip("10.89.0.4"));
  EXPECT_TRUE(std::filesystem::is_regular_file(tmp_.at("networks/" + n.id + "/leases/10.89.0.3")));

  ASSERT_TRUE(store_->release(n, "cb").has_value());
  ASSERT_TRUE(store_->release(n, "cb").has_value());  // no lease: ok
  ASSERT_TRUE(store_->release(n, "nobody").has_value());
  EXPECT_EQ(store_->leases(n)->size(), 2u);
  // The lowest free address again.
  EXPECT_EQ(lease_ok(n, "cd").address, ip("10.89.0.3"));
  EXPECT_EQ(lease_ok(n, "ce").address, ip("10.89.0.5"));
}

TEST_F(NetworksTest, LeaseSkipsGateway) {
  NetworkConfig n = create_ok(opts("n", "10.6.0.0/24", "10.6.0.3"));
  EXPECT_EQ(lease_ok(n, "a").address, ip("10.6.0.2"));
  EXPECT_EQ(lease_ok(n, "b").address, ip("10.6.0.4"));
}

TEST_F(NetworksTest, ReclaimDeadHolder) {
  NetworkConfig n = create_ok(opts("n", "10.6.0.0/24"));
  lease_ok(n, "dead");
  lease_ok(n, "alive");
  auto exists = [](const std::string& id) { return id != "dead"; };
  Lease l = lease_ok(n, "new", exists);
  EXPECT_EQ(l.address, ip("10.6.0.2"));
  auto all = store_->leases(n);
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].container_id, "new");
  EXPECT_EQ((*all)[1].container_id, "alive");
  // An unreadable lease file is kept: its holder cannot be asked about.
  tmp_.write("networks/" + n.id + "/leases/10.6.0.4", "garbage");
  auto only_new = [](const std::string& id) { return id == "new"; };
  EXPECT_EQ(lease_ok(n, "next", only_new).address, ip("10.6.0.3"));  // "alive" reclaimed
  EXPECT_EQ(lease_ok(n, "last", kAlive).address, ip("10.6.0.5"));
}

TEST_F(NetworksTest, FullSubnet) {
  NetworkConfig n = create_ok(opts("tiny", "10.1.0.0/30"));
  EXPECT_EQ(lease_ok(n, "a").address, ip("10.1.0.2"));
  auto full = store_->lease(n, "b", kAlive);
  ASSERT_FALSE(full.has_value());
  EXPECT_EQ(full.error().message(), "network tiny: no free address in 10.1.0.0/30");
  // The broadcast address 10.1.0.3 was never handed out; a dead holder's lease is.
  EXPECT_EQ(lease_ok(n, "b", kDead).address, ip("10.1.0.2"));
}

TEST_F(NetworksTest, ConcurrentLeasesAreDistinct) {
  NetworkConfig n = create_ok(opts("busy", "10.7.0.0/24"));
  constexpr int kProcs = 24;
  int go[2], results[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(results, O_CLOEXEC), 0);
  std::vector<pid_t> pids;
  for (int i = 0; i < kProcs; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      char c;
      (void)!::read(go[0], &c, 1);  // EOF when the parent lets all go at once
      auto s = NetworkStore::open(tmp_.at("networks"));
      if (!s) ::_exit(2);
      auto l = s->lease(n, "c" + std::to_string(i), kAlive);
      if (!l) ::_exit(3);
      std::string line = l->address.str() + "\n";  // one write below PIPE_BUF: not interleaved
      ::_exit(::write(results[1], line.data(), line.size()) == static_cast<ssize_t>(line.size())
                  ? 0
                  : 4);
    }
    pids.push_back(pid);
  }
  ::close(go[0]);
  ::close(go[1]);
  ::close(results[1]);
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  std::string out;
  char buf[512];
  for (ssize_t r; (r = ::read(results[0], buf, sizeof buf)) > 0;) out.append(buf, r);
  ::close(results[0]);
  std::set<std::string> seen;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) EXPECT_TRUE(seen.insert(line).second) << line;
  EXPECT_EQ(seen.size(), static_cast<size_t>(kProcs));
  auto all = store_->leases(n);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->size(), static_cast<size_t>(kProcs));
  // Exactly the lowest addresses were handed out.
  for (int i = 0; i < kProcs; ++i) EXPECT_EQ(seen.count(n.subnet.host(2 + i).str()), 1u) << i;
}

TEST_F(NetworksTest, StoreLock) {
  auto try_flock = [&] {
    UniqueFd fd(::open(tmp_.at("networks/.lock").c_str(), O_RDWR | O_CLOEXEC));
    return fd.valid() && ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0;
  };
  {
    auto l = store_->lock();
    ASSERT_TRUE(l.has_value()) << l.error().message();
    EXPECT_FALSE(try_flock());
    {
      // Re-entrant within the store: create and remove take it too.
      auto inner = store_->lock();
      ASSERT_TRUE(inner.has_value());
      NetworkConfig n = create_ok(opts("x"));
      ASSERT_TRUE(store_->remove("x", kAlive).has_value());
    }
    EXPECT_FALSE(try_flock());  // still held by the outer lock
    NetworkStore::Lock moved = std::move(*l);
    EXPECT_FALSE(try_flock());
  }
  EXPECT_TRUE(try_flock());
}

TEST_F(NetworksTest, CreateRemovesDebris) {
  tmp_.write("networks/.tmp-0123/network.json", "{}");
  tmp_.write("networks/.trash-abcd/leases/10.0.0.2", "{}");
  create_ok(opts("x"));
  EXPECT_FALSE(std::filesystem::exists(tmp_.at("networks/.tmp-0123")));
  EXPECT_FALSE(std::filesystem::exists(tmp_.at("networks/.trash-abcd")));
}

}  // namespace
}  // namespace forker::net
