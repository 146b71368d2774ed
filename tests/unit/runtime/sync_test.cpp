// The parent <-> init handshake over a SOCK_SEQPACKET pair: steps, payloads, errors carried
// across, EOF, a step out of order, and an fd passed with SCM_RIGHTS.
#include "runtime/sync.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace forker::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pair = SyncChannel::make_pair();
    ASSERT_TRUE(pair) << pair.error().message();
    parent_ = std::move(pair->first);
    child_ = std::move(pair->second);
  }
  SyncChannel parent_, child_;
};

TEST_F(SyncTest, PairIsCloseOnExec) {
  EXPECT_GE(parent_.fd(), 0);
  EXPECT_GE(child_.fd(), 0);
  EXPECT_TRUE(fcntl(parent_.fd(), F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(fcntl(child_.fd(), F_GETFD) & FD_CLOEXEC);
}

TEST_F(SyncTest, StepWithoutPayload) {
  ASSERT_TRUE(child_.send(SyncStep::kHooksRequest));
  auto got = parent_.expect(SyncStep::kHooksRequest);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, "");
}

TEST_F(SyncTest, StepWithPayloadBothWays) {
  ASSERT_TRUE(parent_.send(SyncStep::kGo, R"({"id":"c1"})"));
  ASSERT_TRUE(child_.send(SyncStep::kReady, "1234"));
  auto go = child_.expect(SyncStep::kGo);
  ASSERT_TRUE(go) << go.error().message();
  EXPECT_EQ(*go, R"({"id":"c1"})");
  auto ready = parent_.expect(SyncStep::kReady);
  ASSERT_TRUE(ready) << ready.error().message();
  EXPECT_EQ(*ready, "1234");
}

TEST_F(SyncTest, MessagesKeepTheirBoundaries) {
  ASSERT_TRUE(child_.send(SyncStep::kHooksRequest, "one"));
  ASSERT_TRUE(child_.send(SyncStep::kReady, "two"));
  EXPECT_EQ(*parent_.expect(SyncStep::kHooksRequest), "one");
  EXPECT_EQ(*parent_.expect(SyncStep::kReady), "two");
}

TEST_F(SyncTest, BinaryPayload) {
  std::string payload("a\0b\0\xff", 5);
  ASSERT_TRUE(parent_.send(SyncStep::kGo, payload));
  EXPECT_EQ(*child_.expect(SyncStep::kGo), payload);
}

TEST_F(SyncTest, LargePayload) {
  std::string big(200 * 1024, 'x');
  ASSERT_TRUE(parent_.send(SyncStep::kGo, big));
  auto got = child_.expect(SyncStep::kGo);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->size(), big.size());
}

TEST_F(SyncTest, TooLargePayloadRefused) {
  std::string huge(256 * 1024 + 1, 'x');
  auto s = parent_.send(SyncStep::kGo, huge);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "sync message too large");
}

TEST_F(SyncTest, ErrorRoundTrip) {
  Error e = sys_error_errno(EPERM, "mount proc on", "/run/c1/rootfs/proc");
  e.add_context("rootfs").add_context("container init");
  ASSERT_TRUE(child_.send_error(e));
  auto got = parent_.expect(SyncStep::kReady);
  ASSERT_FALSE(got);
  const Error& r = got.error();
  EXPECT_EQ(r.op, "mount proc on");
  EXPECT_EQ(r.object, "/run/c1/rootfs/proc");
  EXPECT_EQ(r.err, EPERM);
  EXPECT_THAT(r.context, ElementsAre("rootfs", "container init"));
  EXPECT_EQ(r.message(), e.message());
}

TEST_F(SyncTest, ErrorWithoutErrnoOrObject) {
  ASSERT_TRUE(child_.send_error(make_error("process.args: must not be empty")));
  auto got = parent_.expect(SyncStep::kHooksRequest);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().err, 0);
  EXPECT_EQ(got.error().object, "");
  EXPECT_TRUE(got.error().context.empty());
  EXPECT_EQ(got.error().message(), "process.args: must not be empty");
}

TEST_F(SyncTest, ErrorWhileWaitingForAnFd) {
  ASSERT_TRUE(child_.send_error(sys_error_errno(ENOSYS, "seccomp", "listener")));
  auto got = parent_.expect_fd(SyncStep::kSeccompFd);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().err, ENOSYS);
  EXPECT_EQ(got.error().message(), "seccomp listener: Function not implemented");
}

TEST_F(SyncTest, EofMeansInitExited) {
  child_.close();
  auto got = parent_.expect(SyncStep::kReady);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().message(), "container init exited before it was ready");
  auto fd = parent_.expect_fd(SyncStep::kSeccompFd);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().message(), "container init exited before it was ready");
}

TEST_F(SyncTest, EofFromAnExitedChildProcess) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    parent_.close();
    _exit(0);  // dies without a word: its end closes
  }
  child_.close();
  auto got = parent_.expect(SyncStep::kReady);
  waitpid(pid, nullptr, 0);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().message(), "container init exited before it was ready");
}

TEST_F(SyncTest, ErrorFromAChildProcess) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    parent_.close();
    Error e = sys_error_errno(ENOENT, "exec", "/bin/missing");
    _exit(child_.send_error(e) ? 0 : 1);
  }
  child_.close();
  auto got = parent_.expect(SyncStep::kReady);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().message(), "exec /bin/missing: No such file or directory");
}

TEST_F(SyncTest, UnexpectedStep) {
  ASSERT_TRUE(child_.send(SyncStep::kHooksRequest));
  auto got = parent_.expect(SyncStep::kReady);
  ASSERT_FALSE(got);
  EXPECT_EQ(
      got.error().message(),
      "unexpected sync message " + std::to_string(static_cast<uint32_t>(SyncStep::kHooksRequest)));
}

TEST_F(SyncTest, UnexpectedStepWhileWaitingForAnFd) {
  ASSERT_TRUE(child_.send(SyncStep::kReady, "1"));
  auto got = parent_.expect_fd(SyncStep::kSeccompFd);
  ASSERT_FALSE(got);
  EXPECT_THAT(got.error().message(), HasSubstr("unexpected sync message"));
  EXPECT_THAT(got.error().message(), HasSubstr("(waiting for an fd)"));
}

TEST_F(SyncTest, StepWithoutTheFd) {
  ASSERT_TRUE(child_.send(SyncStep::kSeccompFd));
  auto got = parent_.expect_fd(SyncStep::kSeccompFd);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().message(), "sync message without an fd");
}

TEST_F(SyncTest, ShortMessage) {
  ASSERT_EQ(::send(child_.fd(), "ab", 2, 0), 2);
  auto got = parent_.expect(SyncStep::kReady);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().message(), "short sync message");
}

TEST_F(SyncTest, PassAPipeFd) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  ASSERT_TRUE(child_.send_fd(SyncStep::kSeccompFd, p[1]));
  close(p[1]);  // the sender's copy; the receiver gets its own
  auto got = parent_.expect_fd(SyncStep::kSeccompFd);
  ASSERT_TRUE(got) << got.error().message();
  UniqueFd w = std::move(got).value();
  ASSERT_TRUE(w.valid());
  EXPECT_TRUE(fcntl(w.get(), F_GETFD) & FD_CLOEXEC);  // received with MSG_CMSG_CLOEXEC
  ASSERT_EQ(write(w.get(), "hi", 2), 2);
  w.reset();
  char buf[4] = {};
  EXPECT_EQ(read(p[0], buf, sizeof buf), 2);
  EXPECT_STREQ(buf, "hi");
  EXPECT_EQ(read(p[0], buf, sizeof buf), 0);  // the passed end is the only writer left
  close(p[0]);
}

TEST_F(SyncTest, PassAnFdFromAChildProcess) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p[0]);
    if (write(p[1], "x", 1) != 1) _exit(2);
    _exit(child_.send_fd(SyncStep::kSeccompFd, p[1]) ? 0 : 1);
  }
  close(p[1]);
  child_.close();
  auto got = parent_.expect_fd(SyncStep::kSeccompFd);
  waitpid(pid, nullptr, 0);
  ASSERT_TRUE(got) << got.error().message();
  char c = 0;
  EXPECT_EQ(read(p[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  got->reset();
  EXPECT_EQ(read(p[0], &c, 1), 0);
  close(p[0]);
}

TEST_F(SyncTest, SendAfterPeerClosed) {
  child_.close();
  auto s = parent_.send(SyncStep::kGo, "x");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().op, "send");
  EXPECT_EQ(s.error().err, EPIPE);  // MSG_NOSIGNAL: an error, not SIGPIPE
}

}  // namespace
}  // namespace forker::runtime
