// forker's nftables layer against the real kernel (root): rendered rulesets applied through
// libnftables and read back with nft(8), idempotence, a failed transaction leaving the previous
// table as it was, deletion, and real traffic: a port published on 127.0.0.1 reaching a listener
// in a network namespace, and a group's connections spread over two. Every test uses its own
// table (forker_test_nft), never forker's.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/unique_fd.hpp"
#include "integration/support/harness.hpp"
#include "net/nft_ruleset.hpp"
#include "net/nftables.hpp"

namespace forker::net {
namespace {

using test::run_cmd;
using ::testing::HasSubstr;

constexpr const char* kTable = "forker_test_nft";
constexpr const char* kNft = "/usr/sbin/nft";
constexpr const char* kIp = "/usr/sbin/ip";

IpAddress ip(const char* text) { return IpAddress::parse(text).value(); }
Subnet subnet(const char* text) { return Subnet::parse(text).value(); }

std::string list_table() {
  auto r = run_cmd({kNft, "list", "table", "inet", kTable});
  return r.status == 0 ? r.out : "";
}

bool table_exists() { return run_cmd({kNft, "list", "table", "inet", kTable}).status == 0; }

// Rules per chain, from `nft -j list table`.
std::map<std::string, int> rule_counts() {
  std::map<std::string, int> counts;
  auto r = run_cmd({kNft, "-j", "list", "table", "inet", kTable});
  if (r.status != 0) return counts;
  auto listing = nlohmann::json::parse(r.out);
  for (const auto& item : listing.at("nftables")) {
    if (item.contains("chain")) counts[item["chain"]["name"].get<std::string>()] += 0;
    if (item.contains("rule")) ++counts[item["rule"]["chain"].get<std::string>()];
  }
  return counts;
}

// Interface names the kernel need not know: nftables matches them as strings.
NftState sample_state() {
  NftNetwork net{"fknft-br0", subnet("10.213.8.0/24"), subnet("fd00:213:8::/64"), false};
  NftNetwork internal{"fknft-br1", subnet("10.213.9.0/24"), std::nullopt, true};
  NftPublish one{"", 18081, 80, "tcp", "fknft-br0", {ip("10.213.8.2")}};
  std::vector<IpAddress> replicas = {ip("10.213.8.2"), ip("10.213.8.3"), ip("10.213.8.4")};
  NftPublish group{"", 18082, 8080, "tcp", "fknft-br0", replicas};
  NftPublish local{"127.0.0.1", 18053, 53, "udp", "fknft-br0", {ip("10.213.8.5")}};
  NftPublish v6{"", 18083, 80, "tcp", "fknft-br0", {ip("fd00:213:8::2")}};
  return {{net, internal}, {one, group, local, v6}};
}

// Each test starts and ends without the table, even when it fails.
class NetNftables : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT();
    (void)delete_forker_table(kTable);
  }
  void TearDown() override {
    if (!test::is_root()) return;
    auto st = delete_forker_table(kTable);
    EXPECT_TRUE(st) << st.error().message();
    if (table_exists()) run_cmd({kNft, "delete", "table", "inet", kTable});
    EXPECT_FALSE(table_exists()) << "table inet " << kTable << " left behind";
  }
};

TEST_F(NetNftables, AppliesRenderedRuleset) {
  NftState state = sample_state();
  ASSERT_TRUE(validate_nft_state(state));
  auto st = apply_nft_script(render_ruleset(state, kTable));
  ASSERT_TRUE(st) << st.error().message();

  std::string listing = list_table();
  EXPECT_THAT(listing, HasSubstr("type nat hook prerouting priority dstnat; policy accept;"));
  EXPECT_THAT(listing, HasSubstr("type nat hook output priority -100; policy accept;"));
  EXPECT_THAT(listing, HasSubstr("type nat hook postrouting priority srcnat; policy accept;"));
  EXPECT_THAT(listing, HasSubstr("type filter hook forward priority filter; policy accept;"));
  EXPECT_THAT(listing, HasSubstr("fib daddr type local tcp dport 18081 dnat ip to 10.213.8.2:80"));
  EXPECT_THAT(listing, HasSubstr("tcp dport 18082 dnat ip to numgen inc mod 3 map { 0 : "
                                 "10.213.8.2, 1 : 10.213.8.3, 2 : 10.213.8.4 }:8080"));
  EXPECT_THAT(listing, HasSubstr("ip daddr 127.0.0.1 udp dport 18053 dnat ip to 10.213.8.5:53"));
  EXPECT_THAT(listing, HasSubstr("dnat ip6 to [fd00:213:8::2]:80"));
  EXPECT_THAT(listing, HasSubstr("ip saddr 10.213.8.0/24 oifname != \"fknft-br0\" masquerade"));
  EXPECT_THAT(listing, HasSubstr("ip6 saddr fd00:213:8::/64 oifname != \"fknft-br0\" masquerade"));
  EXPECT_THAT(listing, HasSubstr("ip saddr 127.0.0.0/8 oifname \"fknft-br0\" masquerade"));
  EXPECT_THAT(listing,
              HasSubstr("ip saddr 10.213.8.0/24 oifname \"fknft-br0\" ct status dnat masquerade"));
  EXPECT_THAT(listing, HasSubstr("iifname \"fknft-br1\" oifname != \"fknft-br1\" drop"));
  EXPECT_THAT(listing, HasSubstr("oifname \"fknft-br0\" ct state established,related accept"));

  std::map<std::string, int> want = {
      {"prerouting", 4}, {"output", 4}, {"postrouting", 4}, {"forward", 5}};
  EXPECT_EQ(rule_counts(), want);
}

TEST_F(NetNftables, ApplyingTwiceChangesNothing) {
  std::string script = render_ruleset(sample_state(), kTable);
  auto st = apply_nft_script(script);
  ASSERT_TRUE(st) << st.error().message();
  std::string first = list_table();
  auto counts = rule_counts();
  st = apply_nft_script(script);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(list_table(), first);
  EXPECT_EQ(rule_counts(), counts);
  // A smaller state replaces the table whole: no rule of the old one survives.
  st = apply_nft_script(render_ruleset({}, kTable));
  ASSERT_TRUE(st) << st.error().message();
  std::map<std::string, int> empty = {
      {"prerouting", 0}, {"output", 0}, {"postrouting", 0}, {"forward", 0}};
  EXPECT_EQ(rule_counts(), empty);
}

TEST_F(NetNftables, FailedScriptLeavesPreviousTable) {
  auto st = apply_nft_script(render_ruleset(sample_state(), kTable));
  ASSERT_TRUE(st) << st.error().message();
  std::string before = list_table();
  ASSERT_FALSE(before.empty());

  // The kernel rejects the last command of the transaction, after the delete and the new
  // definition: all of it must be rolled back.
  std::string script = render_ruleset({}, kTable);
  script += "add chain inet " + std::string(kTable) + " broken\n";
  script += "add rule inet " + std::string(kTable) + " broken jump fknft_no_such_chain\n";
  st = apply_nft_script(script);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("nftables: apply ruleset: Error: "));
  EXPECT_THAT(st.error().message(),
              HasSubstr("Error: Could not process rule: No such file or directory"));
  EXPECT_EQ(list_table(), before);

  // A syntax error never reaches the kernel.
  st = apply_nft_script(render_ruleset({}, kTable) + "add rule inet " + kTable +
                        " forward ip daddr 10.0.0.1 bogus\n");
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("nftables: apply ruleset: Error: syntax error"));
  EXPECT_EQ(list_table(), before);
}

TEST_F(NetNftables, DeleteRemovesTableAndToleratesAbsence) {
  auto st = apply_nft_script(render_ruleset(sample_state(), kTable));
  ASSERT_TRUE(st) << st.error().message();
  ASSERT_TRUE(table_exists());
  st = delete_forker_table(kTable);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_FALSE(table_exists());
  st = delete_forker_table(kTable);
  EXPECT_TRUE(st) << st.error().message();
}

// A network namespace with a veth pair: fknft-h0 (host, 10.213.0.1/24) and fknft-n0 (inside,
// 10.213.0.2/24 and 10.213.0.3/24). Removed when the test ends.
class VethNetns {
 public:
  VethNetns() : name_("fknft-" + std::to_string(getpid())) { remove(); }
  ~VethNetns() { remove(); }
  VethNetns(const VethNetns&) = delete;
  VethNetns& operator=(const VethNetns&) = delete;

  const std::string& name() const { return name_; }
  // Empty on success, else the failed command and its stderr.
  std::string create() const {
    const std::vector<std::vector<std::string>> steps = {
        {kIp, "netns", "add", name_},
        {kIp, "link", "add", "fknft-h0", "type", "veth", "peer", "name", "fknft-n0", "netns",
         name_},
        {kIp, "addr", "add", "10.213.0.1/24", "dev", "fknft-h0"},
        {kIp, "link", "set", "fknft-h0", "up"},
        {kIp, "-n", name_, "addr", "add", "10.213.0.2/24", "dev", "fknft-n0"},
        {kIp, "-n", name_, "addr", "add", "10.213.0.3/24", "dev", "fknft-n0"},
        {kIp, "-n", name_, "link", "set", "fknft-n0", "up"},
        {kIp, "-n", name_, "link", "set", "lo", "up"},
    };
    for (const auto& argv : steps) {
      auto r = run_cmd(argv);
      if (r.status != 0) {
        std::string cmd;
        for (const auto& a : argv) cmd += a + " ";
        return cmd + ": " + r.err;
      }
    }
    return "";
  }

 private:
  void remove() const {
    run_cmd({kIp, "link", "del", "fknft-h0"});  // takes its peer along
    run_cmd({kIp, "netns", "del", name_});
  }
  std::string name_;
};

// What the listener in the namespace saw.
struct Accepted {
  std::string error;  // empty when a connection was accepted and read
  std::string peer;   // the client's address as the listener sees it
  std::string data;
};

// Listens on ADDRESS:8080 inside NETNS (setns moves only this thread), reports readiness
// through READY, accepts one connection, reads a line and answers "pong\n". STOP ends the wait.
// The poll limits only keep a broken setup from hanging the suite; nothing is timed.
Accepted listen_in_netns(const std::string& netns, const std::string& address,
                         std::promise<std::string>& ready, int stop) {
  Accepted a;
  auto fail = [&](const std::string& what) {
    a.error = what + ": " + std::strerror(errno);
    return a;
  };
  UniqueFd ns(::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns || ::setns(ns.get(), CLONE_NEWNET) != 0) {
    ready.set_value("setns " + netns + ": " + std::strerror(errno));
    return a;
  }
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(8080);
  inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
  if (!s || ::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(s.get(), 4) != 0) {
    ready.set_value("listen on " + address + ":8080: " + std::strerror(errno));
    return a;
  }
  ready.set_value("");
  pollfd fds[2] = {{s.get(), POLLIN, 0}, {stop, POLLIN, 0}};
  if (::poll(fds, 2, 60'000) <= 0 || !(fds[0].revents & POLLIN)) {
    a.error = "no connection arrived";
    return a;
  }
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  UniqueFd c(::accept4(s.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
  if (!c) return fail("accept");
  char buf[INET_ADDRSTRLEN] = {};
  a.peer = inet_ntop(AF_INET, &peer.sin_addr, buf, sizeof buf);
  char ch;
  while (::read(c.get(), &ch, 1) == 1 && ch != '\n') a.data += ch;
  if (::write(c.get(), "pong\n", 5) != 5) return fail("write");
  return a;
}

// Connects to 127.0.0.1:PORT, sends "ping\n", returns the answer line or "error: ...".
std::string ping_localhost(uint16_t port) {
  UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(c.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
      errno != EINPROGRESS)
    return std::string("error: connect: ") + std::strerror(errno);
  pollfd p = {c.get(), POLLOUT, 0};
  if (::poll(&p, 1, 30'000) != 1) return "error: connect did not complete";
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return std::string("error: connect: ") + std::strerror(err);
  if (::write(c.get(), "ping\n", 5) != 5) return "error: write";
  std::string answer;
  char ch;
  for (;;) {
    p = {c.get(), POLLIN, 0};
    if (::poll(&p, 1, 30'000) != 1) return "error: no answer";
    if (::read(c.get(), &ch, 1) != 1 || ch == '\n') break;
    answer += ch;
  }
  return answer;
}

// A listener in a thread of its own; the destructor stops and joins it, so a failed assertion
// never leaves the thread behind.
class Listener {
 public:
  Listener(const std::string& netns, const std::string& address)
      : stop_(::eventfd(0, EFD_CLOEXEC)) {
    std::promise<std::string> ready;
    auto ready_text = ready.get_future();
    done_ = std::async(std::launch::async,
                       [netns, address, stop = stop_.get(), ready = std::move(ready)]() mutable {
                         return listen_in_netns(netns, address, ready, stop);
                       });
    setup_error_ = ready_text.get();
  }
  ~Listener() {
    stop();
    if (done_.valid()) done_.wait();
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  const std::string& setup_error() const { return setup_error_; }
  // Ends the wait for a connection (if none came) and returns what the listener saw.
  Accepted result() {
    stop();
    return done_.get();
  }

 private:
  void stop() {
    uint64_t one = 1;
    if (::write(stop_.get(), &one, sizeof one) != sizeof one) ADD_FAILURE() << "eventfd write";
  }
  UniqueFd stop_;
  std::future<Accepted> done_;
  std::string setup_error_;
};

// The netns and route_localnet on its host side; empty on success.
std::string setup_netns(const VethNetns& netns) {
  std::string err = netns.create();
  if (!err.empty()) return err;
  // The output DNAT keeps source 127.0.0.1; route_localnet lets such packets (and the replies,
  // to 127.0.0.1) use fknft-h0. The setting goes away with the link.
  test::write_text("/proc/sys/net/ipv4/conf/fknft-h0/route_localnet", "1");
  if (test::read_text("/proc/sys/net/ipv4/conf/fknft-h0/route_localnet") != "1\n")
    return "cannot set route_localnet on fknft-h0";
  return "";
}

TEST_F(NetNftables, PortPublishedOnLoopbackReachesNetns) {
  VethNetns netns;
  ASSERT_EQ(setup_netns(netns), "");
  NftState state{{{"fknft-h0", subnet("10.213.0.0/24"), std::nullopt, false}},
                 {{"127.0.0.1", 18080, 8080, "tcp", "fknft-h0", {ip("10.213.0.2")}}}};
  auto st = apply_nft_script(render_ruleset(state, kTable));
  ASSERT_TRUE(st) << st.error().message();

  Listener listener(netns.name(), "10.213.0.2");
  ASSERT_EQ(listener.setup_error(), "");
  EXPECT_EQ(ping_localhost(18080), "pong");
  Accepted a = listener.result();
  EXPECT_EQ(a.error, "");
  EXPECT_EQ(a.data, "ping");
  // Masqueraded to the host side's address: the netns has no way back to 127.0.0.1.
  EXPECT_EQ(a.peer, "10.213.0.1");
}

TEST_F(NetNftables, PublishedGroupSpreadsConnectionsRoundRobin) {
  VethNetns netns;
  ASSERT_EQ(setup_netns(netns), "");
  NftState state{
      {{"fknft-h0", subnet("10.213.0.0/24"), std::nullopt, false}},
      {{"127.0.0.1", 18080, 8080, "tcp", "fknft-h0", {ip("10.213.0.3"), ip("10.213.0.2")}}}};
  auto st = apply_nft_script(render_ruleset(state, kTable));
  ASSERT_TRUE(st) << st.error().message();

  // Each listener takes one connection: the second connection reaches the other backend only
  // if the first went elsewhere (else it would wait unanswered in the first one's backlog).
  Listener first(netns.name(), "10.213.0.2");
  Listener second(netns.name(), "10.213.0.3");
  ASSERT_EQ(first.setup_error(), "");
  ASSERT_EQ(second.setup_error(), "");
  EXPECT_EQ(ping_localhost(18080), "pong");
  EXPECT_EQ(ping_localhost(18080), "pong");
  for (Listener* l : {&first, &second}) {
    Accepted a = l->result();
    EXPECT_EQ(a.error, "");
    EXPECT_EQ(a.data, "ping");
  }
}

}  // namespace
}  // namespace forker::net
