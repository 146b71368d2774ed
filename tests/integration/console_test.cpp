// process.terminal: the pty master handed over --console-socket (runc's protocol), exec -t,
// and run's own proxy when there is no console socket.
#include <gmock/gmock.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstring>

#include "core/unique_fd.hpp"
#include "integration/support/harness.hpp"
#include "linux/terminal.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

class Console : public ::testing::Test {
 protected:
  void SetUp() override { REQUIRE_ROOT(); }
  void TearDown() override {
    if (!bundle_) return;
    std::string id = bundle_->id();
    std::string root = bundle_->root();
    std::string dir = bundle_->dir();
    bundle_.reset();
    EXPECT_THAT(leftovers(dir, id, root), IsEmpty());
  }
  Bundle& bundle() {
    if (!bundle_) {
      bundle_ = std::make_unique<Bundle>(::testing::UnitTest::GetInstance()->current_test_info()->name());
      bundle_->config()["process"]["terminal"] = true;
    }
    return *bundle_;
  }

  // Listens on DIR/console.sock (AF_UNIX, SOCK_STREAM) as containerd's shim does.
  std::string listen_console() {
    std::string path = bundle().dir() + "/console.sock";
    listener_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_TRUE(listener_);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    EXPECT_LT(path.size(), sizeof addr.sun_path);
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    EXPECT_EQ(bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << strerror(errno);
    EXPECT_EQ(listen(listener_.get(), 4), 0);
    return path;
  }
  // Accepts the runtime's connection and receives the pty master (bounded wait).
  UniqueFd receive_master() {
    pollfd p{listener_.get(), POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) {
      ADD_FAILURE() << "nobody connected to the console socket";
      return UniqueFd();
    }
    UniqueFd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) {
      ADD_FAILURE() << "accept: " << strerror(errno);
      return UniqueFd();
    }
    pollfd q{conn.get(), POLLIN, 0};
    if (poll(&q, 1, 10000) != 1) {
      ADD_FAILURE() << "no pty master arrived";
      return UniqueFd();
    }
    auto fd = linux::recv_console_fd(conn.get());
    if (!fd) {
      ADD_FAILURE() << fd.error().message();
      return UniqueFd();
    }
    return std::move(*fd);
  }

  std::unique_ptr<Bundle> bundle_;
  UniqueFd listener_;
};

// What arrives on the master until the last slave closes (EIO) or 10 s pass.
std::string read_master(int master, const std::string& until = "") {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    pollfd p{master, POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    char buf[4096];
    ssize_t k = read(master, buf, sizeof buf);
    if (k <= 0) break;  // EIO: the slave side is closed
    out.append(buf, static_cast<size_t>(k));
    if (!until.empty() && out.find(until) != std::string::npos) break;
  }
  return out;
}

bool is_pty_master(int fd) {
  int n = -1;
  return ioctl(fd, TIOCGPTN, &n) == 0 && n >= 0;
}

TEST_F(Console, CreateSendsPtyMasterOverConsoleSocket) {
  auto& b = bundle();
  b.args({"probe", "isatty", "0"});
  b.save();
  std::string sock = listen_console();
  auto r = b.oci({"create", "--bundle", b.dir(), "--console-socket", sock, b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  UniqueFd master = receive_master();
  ASSERT_TRUE(master);
  EXPECT_TRUE(is_pty_master(master.get()));
  r = b.oci({"start", b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string out = read_master(master.get());
  EXPECT_EQ(out, "yes\r\n");
  for (int i = 0; i < 250; ++i) {
    if (nlohmann::json::parse(b.oci({"state", b.id()}).out)["status"] == "stopped") break;
    usleep(20000);
  }
  EXPECT_EQ(b.oci({"delete", b.id()}).status, 0);
}

TEST_F(Console, StdoutAndStderrAreTheTerminalToo) {
  auto& b = bundle();
  for (const char* fd : {"1", "2"}) {
    b.args({"probe", "isatty", fd});
    b.save();
    std::string sock = listen_console();
    auto r = b.oci({"create", "--bundle", b.dir(), "--console-socket", sock, b.id()});
    ASSERT_EQ(r.status, 0) << r.err;
    UniqueFd master = receive_master();
    ASSERT_TRUE(master);
    ASSERT_EQ(b.oci({"start", b.id()}).status, 0);
    EXPECT_EQ(read_master(master.get()), "yes\r\n") << "fd " << fd;
    EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
    listener_.reset();
    unlink(sock.c_str());
  }
}

TEST_F(Console, ConsoleSizeSetsWindowSize) {
  auto& b = bundle();
  b.config()["process"]["consoleSize"] = {{"height", 33}, {"width", 111}};
  b.args({"probe", "winsize", "0"});
  b.save();
  std::string sock = listen_console();
  auto r = b.oci({"create", "--bundle", b.dir(), "--console-socket", sock, b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  UniqueFd master = receive_master();
  ASSERT_TRUE(master);
  winsize ws{};
  ASSERT_EQ(ioctl(master.get(), TIOCGWINSZ, &ws), 0);
  EXPECT_EQ(ws.ws_row, 33);
  EXPECT_EQ(ws.ws_col, 111);
  ASSERT_EQ(b.oci({"start", b.id()}).status, 0);
  EXPECT_EQ(read_master(master.get()), "33 111\r\n");
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
}

TEST_F(Console, TerminalWithoutConsoleSocketIsRefusedByCreate) {
  auto& b = bundle();
  b.save();
  auto r = b.oci({"create", "--bundle", b.dir(), b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("console-socket"));
  EXPECT_EQ(b.oci({"list", "-q"}).out, "");
  // A socket nobody listens on.
  r = b.oci({"create", "--bundle", b.dir(), "--console-socket", b.dir() + "/nobody.sock", b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("nobody.sock"));
  EXPECT_EQ(b.oci({"list", "-q"}).out, "");
}

TEST_F(Console, ExecWithTtyAndConsoleSocket) {
  auto& b = bundle();
  b.config()["process"]["terminal"] = false;
  b.args({"probe", "sleep", "600"});
  b.save();
  ASSERT_EQ(b.oci({"run", "-d", "--bundle", b.dir(), b.id()}).status, 0);
  // In the foreground: exec waits for the process; the output waits in the pty.
  std::string sock = listen_console();
  auto r = b.oci({"exec", "-t", "--console-socket", sock, b.id(), "/probe", "isatty", "0"});
  EXPECT_EQ(r.status, 0) << r.err;
  UniqueFd master = receive_master();
  ASSERT_TRUE(master);
  EXPECT_EQ(read_master(master.get()), "yes\r\n");
  // Detached.
  r = b.oci({"exec", "-t", "-d", "--console-socket", sock, b.id(), "/probe", "isatty", "1"});
  EXPECT_EQ(r.status, 0) << r.err;
  master = receive_master();
  ASSERT_TRUE(master);
  EXPECT_EQ(read_master(master.get()), "yes\r\n");
  // Without -t the same exec has no terminal.
  r = b.oci({"exec", b.id(), "/probe", "isatty", "0"});
  EXPECT_EQ(r.out, "no\n");
  // -t -d with no console socket cannot work.
  r = b.oci({"exec", "-t", "-d", b.id(), "/probe", "isatty", "0"});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("console-socket"));
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
}

// run from a non-tty with a terminal and no console socket: forker-oci proxies the pty itself.
TEST_F(Console, RunProxiesTerminalWithoutConsoleSocket) {
  auto& b = bundle();
  b.args({"probe", "isatty", "1"});
  auto r = b.run();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("yes"));
  b.args({"probe", "exit", "3"});
  r = b.run();
  EXPECT_EQ(r.status, 3) << r.err;
  // exec -t without a console socket proxies too.
  b.args({"probe", "sleep", "600"});
  b.config()["process"]["terminal"] = false;
  b.save();
  ASSERT_EQ(b.oci({"run", "-d", "--bundle", b.dir(), b.id()}).status, 0);
  r = b.oci({"exec", "-t", b.id(), "/probe", "isatty", "0"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("yes"));
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
}

}  // namespace
}  // namespace forker::test
