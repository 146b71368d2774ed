// --network slirp4netns: user-mode networking, the default without privileges. As root with
// --network slirp4netns, and as a throwaway user with no --network at all: tap0 with 10.0.2.100
// inside, -p through slirp4netns's API (an HTTP GET of 127.0.0.1 from the host), and after
// `rm -f` no slirp4netns process, endpoint, socket or log. Traffic goes only to 127.0.0.1.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/forker_cli_fixture.hpp"
#include "integration/support/test_user.hpp"

namespace forker::test {
namespace {

namespace fs = std::filesystem;

// An HTTP GET of / to 127.0.0.1:PORT, tried TRIES times while the server comes up; the body
// or "".
std::string http_get_local(int port, int tries = 100) {
  for (int i = 0; i < tries; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return "";
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string resp;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
      std::string req = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
      (void)!::write(fd, req.data(), req.size());
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
        resp.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    // slirp4netns accepts before the container's server listens: then the reply is empty.
    if (auto at = resp.find("\r\n\r\n"); at != std::string::npos) {
      std::string body = resp.substr(at + 4);
      while (!body.empty() && body.back() == '\n') body.pop_back();
      return body;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "";
}

std::vector<std::string> httpd(const std::string& text) {
  return {"busybox", "sh", "-c",
          "mkdir -p /www; echo " + text + " > /www/index.html; exec httpd -f -p 80 -h /www"};
}

// A live slirp4netns (a zombie has exited: its parent has yet to reap it).
bool is_slirp4netns(pid_t pid) {
  std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(") ");
  return stat.find("(slirp4netns)") != std::string::npos && close != std::string::npos &&
         stat[close + 2] != 'Z';
}

// The names in DIR (none when it does not exist).
std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  return out;
}

// /dev/net/tun opened by the user inside its namespace needs the mode udev gives it (0666);
// some machines have 0600. Widened for the test, put back after it.
class TunAccess {
 public:
  TunAccess() {
    struct stat st {};
    if (::stat(kTun, &st) != 0) return;
    mode_ = st.st_mode & 07777;
    if ((mode_ & 0006) != 0006) changed_ = ::chmod(kTun, mode_ | 0666) == 0;
  }
  ~TunAccess() {
    if (changed_) ::chmod(kTun, mode_);
  }
  bool present() const { return mode_ != 0; }

 private:
  static constexpr const char* kTun = "/dev/net/tun";
  mode_t mode_ = 0;
  bool changed_ = false;
};

class ForkerRootlessNetwork : public ForkerCliTest {
 protected:
  void SetUp() override {
    ForkerCliTest::SetUp();
    if (IsSkipped()) return;
    if (access("/usr/bin/slirp4netns", X_OK) != 0) GTEST_SKIP() << "needs slirp4netns";
  }
  static nlohmann::json endpoint(const std::string& state_root, const std::string& id) {
    std::string text = read_text(state_root + "/endpoints/" + id + ".json");
    return text.empty() ? nlohmann::json() : nlohmann::json::parse(text, nullptr, false);
  }
};

TEST_F(ForkerRootlessNetwork, SlirpAsRootPublishesAndLeavesNothing) {
  const std::string state = "/run/forker-network";
  RunResult r = forker({"run", "--rm", "--network", "slirp4netns", "busybox", "ip", "addr"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("tap0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("inet 10.0.2.100/24"), std::string::npos) << r.out;

  std::vector<std::string> args = {"--network", "slirp4netns", "-p", "127.0.0.1:18093:80"};
  for (const auto& a : httpd("slirp-root-ok")) args.push_back(a);
  std::string id = run_detached(args);
  ASSERT_EQ(id.size(), 64u);
  EXPECT_EQ(http_get_local(18093), "slirp-root-ok");
  nlohmann::json ep = endpoint(state, id);
  ASSERT_TRUE(ep.is_object() && ep.contains("slirp4netns")) << ep.dump();
  pid_t slirp = ep["slirp4netns"].value("pid", 0);
  std::string sock = ep["slirp4netns"].value("api_socket", "");
  EXPECT_TRUE(is_slirp4netns(slirp)) << slirp;
  EXPECT_TRUE(fs::exists(sock)) << sock;
  r = forker({"port", id});
  EXPECT_EQ(r.out, "80/tcp -> 127.0.0.1:18093\n") << r.err;

  r = forker({"rm", "-f", id});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(is_slirp4netns(slirp)) << "slirp4netns " << slirp << " outlived its container";
  EXPECT_FALSE(fs::exists(sock));
  EXPECT_FALSE(fs::exists(state + "/endpoints/" + id + ".json"));
  EXPECT_FALSE(fs::exists(state + "/slirp/" + id.substr(0, 12) + ".log"));
  EXPECT_EQ(http_get_local(18093, 1), "") << "port still forwarded";
}

// A user's containers: `forker run` without --network gets slirp4netns.
TEST_F(ForkerRootlessNetwork, RootlessPublishesPortThroughSlirp) {
  std::string why;
  auto user = TestUser::create(why);
  if (!user) GTEST_SKIP() << why;
  TunAccess tun;
  if (!tun.present()) GTEST_SKIP() << "needs /dev/net/tun";
  ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0);
  const std::string store = dir_ + "/user-store", xdg = dir_ + "/xdg";
  fs::create_directories(store);
  fs::create_directories(xdg);
  ::chmod(xdg.c_str(), 0700);
  user->give(store);
  user->give(xdg);
  auto as_user = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {FORKER_CLI_BIN, "--storage-root", store});
    return user->run(args, {"XDG_RUNTIME_DIR=" + xdg});
  };
  // The user's containers and store go even when an assertion fails.
  struct Cleanup {
    std::function<void()> f;
    ~Cleanup() { f(); }
  } cleanup{[&] {
    for (const auto& id : lines(as_user({"ps", "-aq", "--no-trunc"}).out))
      as_user({"rm", "-f", id});
    (void)image::remove_tree(store);
  }};

  RunResult r = as_user({"run", "--rm", "--network", "none", "busybox", "true"});
  if (r.status != 0) GTEST_SKIP() << "rootless `forker run` does not work here: " << r.err;

  r = as_user({"run", "--rm", "busybox", "ip", "addr"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("tap0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("inet 10.0.2.100/24"), std::string::npos) << r.out;

  std::vector<std::string> args = {"run", "-d", "-p", "127.0.0.1:18090:80"};
  for (const auto& a : httpd("rootless-ok")) args.push_back(a);
  r = as_user(args);
  ASSERT_EQ(r.status, 0) << r.err;
  std::string id = r.out.substr(0, r.out.find('\n'));
  ASSERT_EQ(id.size(), 64u) << r.out;
  EXPECT_EQ(http_get_local(18090), "rootless-ok");
  const std::string state = xdg + "/forker-network";
  EXPECT_TRUE(fs::exists(state + "/endpoints/" + id + ".json"));
  EXPECT_FALSE(fs::exists("/run/forker-network/endpoints/" + id + ".json"));

  r = as_user({"rm", "-f", id});
  EXPECT_EQ(r.status, 0) << r.err;
  for (pid_t p : user->processes())
    EXPECT_FALSE(is_slirp4netns(p)) << "slirp4netns " << p << " of the user left running";
  EXPECT_THAT(entries(state + "/endpoints"), ::testing::IsEmpty());
  EXPECT_THAT(entries(state + "/slirp"), ::testing::IsEmpty());
}

}  // namespace
}  // namespace forker::test
