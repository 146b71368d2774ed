// slirp4netns without slirp4netns: its argv, the API's JSON both ways, a request over a socket
// the test serves itself, and starts of stand-in scripts that fail, or report ready and then
// wait for the exit fd to close.
#include "net/slirp4netns.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace forker::net {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

PortMapping pm(std::string ip, uint16_t host, uint16_t container, std::string proto = "tcp") {
  PortMapping m;
  m.host_ip = std::move(ip);
  m.host_port = host;
  m.container_port = container;
  m.protocol = std::move(proto);
  return m;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/slirp-unit-XXXXXX";
    path_ = ::mkdtemp(tmpl) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string script(const std::string& name, const std::string& body) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << "#!/bin/sh\n" << body;
    ::chmod(p.c_str(), 0755);
    return p;
  }

 private:
  std::string path_;
};

TEST(Slirp4netns, Arguments) {
  SlirpOptions o;
  o.pid = 4242;
  o.api_socket = "/run/user/1000/forker-network/slirp/abc.sock";
  o.exit_fd = 3;
  o.ready_fd = 4;
  EXPECT_THAT(
      slirp4netns_args(o),
      ElementsAre("--configure", "--mtu=65520", "--disable-host-loopback", "--enable-sandbox",
                  "--enable-seccomp", "--api-socket=/run/user/1000/forker-network/slirp/abc.sock",
                  "--exit-fd=3", "--ready-fd=4", "4242", "tap0"));
  o.sandbox = o.seccomp = false;
  o.api_socket.clear();
  o.exit_fd = o.ready_fd = -1;
  o.mtu = 1500;
  EXPECT_THAT(slirp4netns_args(o),
              ElementsAre("--configure", "--mtu=1500", "--disable-host-loopback", "4242", "tap0"));
}

// Namespaces passed as fds (a rootless caller cannot open an undumpable init's /proc files).
TEST(Slirp4netns, ArgumentsWithNamespaceFds) {
  SlirpOptions o;
  o.pid = 4242;
  o.sandbox = o.seccomp = false;
  o.netns_fd = 17;
  o.userns_fd = 18;
  EXPECT_THAT(slirp4netns_args(o),
              ElementsAre("--configure", "--mtu=65520", "--disable-host-loopback",
                          "--netns-type=path", "--userns-path=/proc/self/fd/6", "/proc/self/fd/5",
                          "tap0"));
  o.userns_fd = -1;
  EXPECT_THAT(slirp4netns_args(o),
              ElementsAre("--configure", "--mtu=65520", "--disable-host-loopback",
                          "--netns-type=path", "/proc/self/fd/5", "tap0"));
}

TEST(Slirp4netns, AddHostfwdRequest) {
  EXPECT_EQ(add_hostfwd_request(pm("", 8080, 80)),
            nlohmann::json::parse(R"({"execute":"add_hostfwd","arguments":{"proto":"tcp",
                "host_addr":"0.0.0.0","host_port":8080,"guest_port":80}})"));
  EXPECT_EQ(add_hostfwd_request(pm("127.0.0.1", 5353, 53, "udp")),
            nlohmann::json::parse(R"({"execute":"add_hostfwd","arguments":{"proto":"udp",
                "host_addr":"127.0.0.1","host_port":5353,"guest_port":53}})"));
}

TEST(Slirp4netns, ApiReplies) {
  EXPECT_TRUE(check_api_reply("add_hostfwd", R"({"return": {"id": 1}})").has_value());
  EXPECT_TRUE(check_api_reply("x", R"({"return": {}})").has_value());
  auto e = check_api_reply(
      "add_hostfwd 0.0.0.0:80->80/tcp",
      R"({"error": {"desc": "bad request: add_hostfwd: slirp_add_hostfwd failed"}})");
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().message(),
            "slirp4netns add_hostfwd 0.0.0.0:80->80/tcp: bad request: add_hostfwd: "
            "slirp_add_hostfwd failed");
  EXPECT_FALSE(check_api_reply("x", "").has_value());
  EXPECT_FALSE(check_api_reply("x", "not json").has_value());
  EXPECT_FALSE(check_api_reply("x", "[]").has_value());
  EXPECT_FALSE(check_api_reply("x", R"({"something": 1})").has_value());
}

// One request served by a thread, as slirp4netns serves it: read, reply, close.
TEST(Slirp4netns, ApiCallOverUnixSocket) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string path = dir.path() + "/api.sock";
  int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strcpy(sa.sun_path, path.c_str());
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  std::string received;
  std::thread server([&] {
    int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    char buf[4096];
    for (ssize_t n; (n = ::read(c, buf, sizeof buf)) > 0;)
      received.append(buf, static_cast<size_t>(n));
    std::string reply =
        R"({"error":{"desc":"bad request: add_hostfwd: slirp_add_hostfwd failed"}})";
    (void)!::write(c, reply.data(), reply.size());
    ::close(c);
  });
  auto r = slirp_add_hostfwd(path, pm("127.0.0.1", 18090, 80));
  server.join();
  ::close(listener);
  EXPECT_EQ(nlohmann::json::parse(received), add_hostfwd_request(pm("127.0.0.1", 18090, 80)));
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("slirp_add_hostfwd failed"));

  auto missing = slirp_api_call(dir.path() + "/none.sock", {{"execute", "list_hostfwd"}});
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error().message(), HasSubstr("connect"));
  auto too_long = slirp_api_call("/" + std::string(120, 'x'), {{"execute", "list_hostfwd"}});
  ASSERT_FALSE(too_long.has_value());
  EXPECT_THAT(too_long.error().message(), HasSubstr("path too long"));
}

TEST(Slirp4netns, StartFailureCarriesItsOutputAndLeavesNoProcess) {
  TempDir dir;
  std::string program = dir.script("fails", "echo \"cannot join: $*\" >&2\nexit 1\n");
  SlirpOptions o;
  o.pid = 4242;
  o.api_socket = dir.path() + "/api.sock";
  auto r = Slirp4netns::start(program, o, dir.path() + "/log");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("exited before it was ready"));
  EXPECT_THAT(r.error().message(), HasSubstr("cannot join: --configure"));
  EXPECT_THAT(r.error().message(), HasSubstr("4242 tap0"));
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child was left";
  EXPECT_EQ(errno, ECHILD);
}

// Ready on fd 4, then alive until fd 3 reads EOF: the exit fd ends it when the owner goes.
TEST(Slirp4netns, ReadyThenExitsWhenTheExitFdCloses) {
  TempDir dir;
  std::string marker = dir.path() + "/ended";
  std::string program = dir.script("waits",
                                   "[ -e /proc/self/fd/3 ] && [ -e /proc/self/fd/4 ] || exit 9\n"
                                   "printf 1 >&4\nexec 4>&-\ncat <&3\ntouch " +
                                       marker + "\n");
  SlirpOptions o;
  o.pid = 1;
  pid_t pid = 0;
  {
    auto r = Slirp4netns::start(program, o, dir.path() + "/log");
    ASSERT_TRUE(r.has_value()) << r.error().message();
    pid = r->pid();
    EXPECT_GT(pid, 0);
    EXPECT_EQ(::kill(pid, 0), 0) << "running once ready";
    EXPECT_FALSE(std::filesystem::exists(marker));
    // Its own session: our terminal's Ctrl-C is not for it.
    EXPECT_EQ(::getsid(pid), pid);
  }
  EXPECT_TRUE(std::filesystem::exists(marker)) << "ended by the exit fd, then reaped";
  errno = 0;
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

// A pid that is not slirp4netns is never signalled (a recycled pid in an endpoint file), and
// one that is not our child is not waited for.
TEST(Slirp4netns, StopLeavesOtherProcessesAlone) {
  pid_t parent = ::getppid();
  ASSERT_GT(parent, 1);
  stop_slirp4netns(parent);
  EXPECT_EQ(::kill(parent, 0), 0);
  stop_slirp4netns(0);  // nothing recorded: nothing done
}

}  // namespace
}  // namespace forker::net
