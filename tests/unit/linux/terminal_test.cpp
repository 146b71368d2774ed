#include "linux/terminal.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

namespace forker::linux {
namespace {

struct SocketPair {
  UniqueFd a;
  UniqueFd b;
};

SocketPair socket_pair() {
  int fds[2] = {-1, -1};
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

struct PipeFds {
  UniqueFd read;
  UniqueFd write;
};

PipeFds make_pipe() {
  int fds[2] = {-1, -1};
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Reads from fd until `until` shows up, EOF, or timeout_ms passes.
std::string read_until(int fd, const std::string& until, int timeout_ms) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) break;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.find(until) != std::string::npos) break;
  }
  return out;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void write_str(int fd, const std::string& s) {
  ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
}

// In a forked child: polls fd's window size until it is rows x cols (up to 5 s).
bool child_wait_for_size(int fd, unsigned short rows, unsigned short cols) {
  for (int i = 0; i < 500; ++i) {
    winsize ws{};
    if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row == rows && ws.ws_col == cols) return true;
    ::usleep(10000);
  }
  return false;
}

void child_say(const char* text) {
  ssize_t ignored = ::write(STDOUT_FILENO, text, std::strlen(text));
  (void)ignored;
}

TEST(TerminalTest, OpenPtyGivesTtyPair) {
  auto pty = open_pty(std::nullopt);
  ASSERT_TRUE(pty.has_value()) << pty.error().message();
  EXPECT_EQ(::isatty(pty->master.get()), 1);
  EXPECT_EQ(::isatty(pty->slave.get()), 1);
  EXPECT_EQ(pty->slave_path.rfind("/dev/pts/", 0), 0u) << pty->slave_path;
  // The path names the same device as the fd we got.
  struct stat by_path = {};
  struct stat by_fd = {};
  ASSERT_EQ(::stat(pty->slave_path.c_str(), &by_path), 0);
  ASSERT_EQ(::fstat(pty->slave.get(), &by_fd), 0);
  EXPECT_EQ(by_path.st_rdev, by_fd.st_rdev);
  EXPECT_TRUE(::fcntl(pty->master.get(), F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(::fcntl(pty->slave.get(), F_GETFD) & FD_CLOEXEC);
}

TEST(TerminalTest, OpenPtySetsWindowSize) {
  auto pty = open_pty(oci::ConsoleSize{30, 100});
  ASSERT_TRUE(pty.has_value()) << pty.error().message();
  winsize ws{};
  ASSERT_EQ(::ioctl(pty->slave.get(), TIOCGWINSZ, &ws), 0);
  EXPECT_EQ(ws.ws_row, 30);
  EXPECT_EQ(ws.ws_col, 100);
}

TEST(TerminalTest, ZeroDimensionLeavesWindowSizeAlone) {
  auto pty = open_pty(oci::ConsoleSize{0, 100});
  ASSERT_TRUE(pty.has_value()) << pty.error().message();
  winsize ws{};
  ASSERT_EQ(::ioctl(pty->slave.get(), TIOCGWINSZ, &ws), 0);
  EXPECT_EQ(ws.ws_col, 0);
}

TEST(TerminalTest, OpenPtyMissingPtmxNamesPath) {
  auto pty = open_pty(std::nullopt, "/nonexistent/ptmx");
  ASSERT_FALSE(pty.has_value());
  EXPECT_EQ(pty.error().message(), "open /nonexistent/ptmx: No such file or directory");
}

TEST(TerminalTest, SendRecvPassesWorkingMaster) {
  auto pty = open_pty(std::nullopt);
  ASSERT_TRUE(pty.has_value()) << pty.error().message();
  auto sp = socket_pair();
  ASSERT_TRUE(send_console_fd(sp.a.get(), pty->master.get()).has_value());
  pty->master.reset();  // the received copy must work on its own

  auto got = recv_console_fd(sp.b.get());
  ASSERT_TRUE(got.has_value()) << got.error().message();
  EXPECT_EQ(::isatty(got->get()), 1);
  EXPECT_TRUE(::fcntl(got->get(), F_GETFD) & FD_CLOEXEC);

  write_str(pty->slave.get(), "hello\n");
  EXPECT_EQ(read_until(got->get(), "hello", 5000).rfind("hello", 0), 0u);
}

TEST(TerminalTest, SendCarriesMasterNameLikeRunc) {
  auto pty = open_pty(std::nullopt);
  ASSERT_TRUE(pty.has_value()) << pty.error().message();
  auto sp = socket_pair();
  ASSERT_TRUE(send_console_fd(sp.a.get(), pty->master.get()).has_value());

  char name[4096];
  iovec iov{name, sizeof name};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(sp.b.get(), &msg, MSG_CMSG_CLOEXEC);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(name, static_cast<size_t>(n)), "/dev/ptmx");
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->cmsg_type, SCM_RIGHTS);
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  UniqueFd owned(fd);
  EXPECT_EQ(::isatty(owned.get()), 1);
}

TEST(TerminalTest, RecvWithoutFdIsAnError) {
  auto sp = socket_pair();
  write_str(sp.a.get(), "/dev/ptmx");
  auto got = recv_console_fd(sp.b.get());
  ASSERT_FALSE(got.has_value());
  EXPECT_NE(got.error().message().find("expected exactly one fd, got 0"), std::string::npos)
      << got.error().message();
}

TEST(TerminalTest, RecvFromClosedPeerIsAnError) {
  auto sp = socket_pair();
  sp.a.reset();
  auto got = recv_console_fd(sp.b.get());
  ASSERT_FALSE(got.has_value());
  EXPECT_NE(got.error().message().find("peer closed"), std::string::npos);
}

TEST(TerminalTest, ConsoleSocketProtocolOverAPath) {
  char tmpl[] = "/tmp/forker-console-test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string sock_path = std::string(tmpl) + "/console.sock";

  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock_path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);

  auto conn = connect_console_socket(sock_path);
  ASSERT_TRUE(conn.has_value()) << conn.error().message();
  UniqueFd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted.valid());

  auto pty = open_pty(std::nullopt);
  ASSERT_TRUE(pty.has_value()) << pty.error().message();
  ASSERT_TRUE(send_console_fd(conn->get(), pty->master.get()).has_value());
  auto got = recv_console_fd(accepted.get());
  ASSERT_TRUE(got.has_value()) << got.error().message();
  EXPECT_EQ(::isatty(got->get()), 1);

  std::filesystem::remove_all(tmpl);
}

TEST(TerminalTest, ConnectMissingSocketNamesPath) {
  auto conn = connect_console_socket("/nonexistent/console.sock");
  ASSERT_FALSE(conn.has_value());
  EXPECT_EQ(conn.error().message(),
            "connect console socket /nonexistent/console.sock: No such file or directory");
}

TEST(TerminalTest, SetupConsoleStdioMakesSlaveTheControllingTerminal) {
  auto pty = open_pty(std::nullopt);
  ASSERT_TRUE(pty.has_value()) << pty.error().message();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!setup_console_stdio(pty->slave.get()).has_value()) ::_exit(10);
    for (int fd = 0; fd <= 2; ++fd) {
      if (::isatty(fd) != 1) ::_exit(11);
      if (::fcntl(fd, F_GETFD) & FD_CLOEXEC) ::_exit(12);  // stdio must survive exec
    }
    if (::getsid(0) != ::getpid()) ::_exit(13);    // a new session
    if (::tcgetsid(0) != ::getpid()) ::_exit(14);  // ... whose terminal is our stdin
    if (::tcgetpgrp(0) != ::getpgrp()) ::_exit(15);
    int tty = ::open("/dev/tty", O_RDWR | O_CLOEXEC);  // works only with a ctty
    if (tty < 0) ::_exit(16);
    const char* name = ::ttyname(0);
    if (name == nullptr || pty->slave_path != name) ::_exit(17);
    ::_exit(0);
  }
  EXPECT_EQ(wait_exit_code(pid), 0);
}

TEST(TerminalTest, ProxyCopiesInputAndOutput) {
  auto pty = open_pty(std::nullopt);
  ASSERT_TRUE(pty.has_value()) << pty.error().message();
  auto in = make_pipe();
  auto out = make_pipe();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!setup_console_stdio(pty->slave.get()).has_value()) ::_exit(10);
    char line[64] = {};
    ssize_t n = ::read(STDIN_FILENO, line, sizeof line - 1);  // canonical mode: one line
    if (n <= 0) ::_exit(11);
    child_say("got: ");
    child_say(line);
    ::_exit(0);
  }
  pty->slave.reset();
  write_str(in.write.get(), "ping\n");
  in.write.reset();

  auto st = proxy_terminal(pty->master.get(), pid, {in.read.get(), out.write.get()});
  ASSERT_TRUE(st.has_value()) << st.error().message();
  EXPECT_EQ(wait_exit_code(pid), 0);  // the proxy left the child for us to reap
  out.write.reset();
  std::string output = read_all(out.read.get());
  EXPECT_NE(output.find("got: ping\n"), std::string::npos) << output;
  // ONLCR is cleared on the container's side: no "\r\n" for what the program wrote.
  EXPECT_EQ(output.find("got: ping\r"), std::string::npos) << output;
}

TEST(TerminalTest, ProxyEndsWhenChildExitsEvenIfSlaveStaysOpen) {
  auto pty = open_pty(std::nullopt);
  ASSERT_TRUE(pty.has_value()) << pty.error().message();
  auto out = make_pipe();
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!setup_console_stdio(pty->slave.get()).has_value()) ::_exit(10);
    child_say("bye\n");
    ::_exit(0);
  }
  // We keep pty->slave open, as a daemon left in the container would: no EIO on the master.
  auto st = proxy_terminal(pty->master.get(), pid, {devnull.get(), out.write.get()});
  ASSERT_TRUE(st.has_value()) << st.error().message();
  EXPECT_EQ(wait_exit_code(pid), 0);
  out.write.reset();
  EXPECT_NE(read_all(out.read.get()).find("bye"), std::string::npos);
}

TEST(TerminalTest, ProxyWithoutChildEndsAtMasterEio) {
  auto pty = open_pty(std::nullopt);
  ASSERT_TRUE(pty.has_value()) << pty.error().message();
  auto out = make_pipe();
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!setup_console_stdio(pty->slave.get()).has_value()) ::_exit(10);
    child_say("from child\n");
    ::_exit(0);
  }
  pty->slave.reset();
  auto st = proxy_terminal(pty->master.get(), 0, {devnull.get(), out.write.get()});
  ASSERT_TRUE(st.has_value()) << st.error().message();
  EXPECT_EQ(wait_exit_code(pid), 0);
  out.write.reset();
  EXPECT_NE(read_all(out.read.get()).find("from child"), std::string::npos);
}

// Our "user terminal" is a second pty: its slave is the proxy's input, a real tty.
TEST(TerminalTest, ProxyRawModeWindowSizeAndRestore) {
  auto user = open_pty(oci::ConsoleSize{30, 100});
  ASSERT_TRUE(user.has_value()) << user.error().message();
  auto pty = open_pty(std::nullopt);
  ASSERT_TRUE(pty.has_value()) << pty.error().message();
  termios before{};
  ASSERT_EQ(::tcgetattr(user->slave.get(), &before), 0);
  ASSERT_TRUE(before.c_lflag & ICANON);
  auto out = make_pipe();

  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!setup_console_stdio(pty->slave.get()).has_value()) ::_exit(10);
    // The proxy copied the user's size at start.
    child_say(child_wait_for_size(STDIN_FILENO, 30, 100) ? "initial ok\n" : "initial bad\n");
    termios t{};
    bool raw = ::tcgetattr(user->slave.get(), &t) == 0 && !(t.c_lflag & ICANON) &&
               !(t.c_lflag & ECHO) && (t.c_oflag & OPOST);
    child_say(raw ? "raw ok\n" : "raw bad\n");
    // The user resizes their terminal; the runtime gets SIGWINCH.
    winsize ws{};
    ws.ws_row = 40;
    ws.ws_col = 120;
    ::ioctl(user->slave.get(), TIOCSWINSZ, &ws);
    ::kill(::getppid(), SIGWINCH);
    child_say(child_wait_for_size(STDIN_FILENO, 40, 120) ? "resized ok\n" : "resized bad\n");
    ::_exit(0);
  }
  pty->slave.reset();
  auto st = proxy_terminal(pty->master.get(), pid, {user->slave.get(), out.write.get()});
  ASSERT_TRUE(st.has_value()) << st.error().message();
  EXPECT_EQ(wait_exit_code(pid), 0);
  out.write.reset();
  std::string output = read_all(out.read.get());
  EXPECT_NE(output.find("initial ok"), std::string::npos) << output;
  EXPECT_NE(output.find("raw ok"), std::string::npos) << output;
  EXPECT_NE(output.find("resized ok"), std::string::npos) << output;

  termios after{};
  ASSERT_EQ(::tcgetattr(user->slave.get(), &after), 0);
  EXPECT_EQ(after.c_lflag, before.c_lflag);
  EXPECT_EQ(after.c_iflag, before.c_iflag);
  EXPECT_EQ(after.c_oflag, before.c_oflag);
  // SIGWINCH is unblocked again.
  sigset_t mask;
  ASSERT_EQ(::pthread_sigmask(SIG_SETMASK, nullptr, &mask), 0);
  EXPECT_EQ(sigismember(&mask, SIGWINCH), 0);
}

// A `kill` of the runtime reaches the container: SIGTERM sent to us while proxying goes to the
// child (without that it would end us with the user's terminal raw and the container running).
TEST(TerminalTest, ProxyForwardsSignalsToChild) {
  auto user = open_pty(oci::ConsoleSize{30, 100});
  ASSERT_TRUE(user.has_value()) << user.error().message();
  auto pty = open_pty(std::nullopt);
  ASSERT_TRUE(pty.has_value()) << pty.error().message();
  auto out = make_pipe();
  // Should the proxy not take SIGTERM, this no-op keeps the test process alive to fail.
  struct sigaction noop = {};
  struct sigaction old = {};
  noop.sa_handler = [](int) {};
  ASSERT_EQ(::sigaction(SIGTERM, &noop, &old), 0);

  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!setup_console_stdio(pty->slave.get()).has_value()) ::_exit(10);
    struct sigaction on_term = {};
    on_term.sa_handler = [](int) { ::_exit(7); };
    ::sigaction(SIGTERM, &on_term, nullptr);
    ::alarm(10);  // not forwarded: SIGALRM ends the child instead
    // The proxy copies the user's size once its signals are set up: then it is listening.
    if (!child_wait_for_size(STDIN_FILENO, 30, 100)) ::_exit(11);
    ::kill(::getppid(), SIGTERM);
    for (;;) ::pause();
  }
  pty->slave.reset();
  auto st = proxy_terminal(pty->master.get(), pid, {user->slave.get(), out.write.get()});
  ::sigaction(SIGTERM, &old, nullptr);
  ASSERT_TRUE(st.has_value()) << st.error().message();
  EXPECT_EQ(wait_exit_code(pid), 7);
  sigset_t mask;
  ASSERT_EQ(::pthread_sigmask(SIG_SETMASK, nullptr, &mask), 0);
  EXPECT_EQ(sigismember(&mask, SIGTERM), 0);  // unblocked again
}

TEST(TerminalTest, ProxyRestoresModeWhenOutputFails) {
  auto user = open_pty(std::nullopt);
  ASSERT_TRUE(user.has_value()) << user.error().message();
  auto pty = open_pty(std::nullopt);
  ASSERT_TRUE(pty.has_value()) << pty.error().message();
  termios before{};
  ASSERT_EQ(::tcgetattr(user->slave.get(), &before), 0);
  auto out = make_pipe();
  out.read.reset();  // nobody reads our output: EPIPE, not SIGPIPE

  write_str(pty->slave.get(), "lost\n");
  auto st = proxy_terminal(pty->master.get(), 0, {user->slave.get(), out.write.get()});
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().err, EPIPE);
  termios after{};
  ASSERT_EQ(::tcgetattr(user->slave.get(), &after), 0);
  EXPECT_EQ(after.c_lflag, before.c_lflag);
}

}  // namespace
}  // namespace forker::linux
