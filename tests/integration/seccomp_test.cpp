// linux.seccomp end to end: every action and comparison operator, unknown syscall names, the
// notify listener handed to an agent that answers a syscall, and the default profile.
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "integration/config_fixture.hpp"

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

namespace forker::test {
namespace {

using ::testing::HasSubstr;

// A seccomp agent at a unix socket: takes the listener fd and the container process state the
// runtime sends (runtime-spec "seccomp" section), then answers every notified syscall with
// -ANSWER_ERRNO, counting the notifications.
class NotifyAgent {
 public:
  NotifyAgent(const std::string& path, int answer_errno) : path_(path), answer_(answer_errno) {
    sock_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    bound_ =
        bind(sock_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && listen(sock_, 4) == 0;
    stop_ = eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] { serve(); });
  }
  ~NotifyAgent() {
    uint64_t one = 1;
    ssize_t ignored = write(stop_, &one, sizeof one);
    (void)ignored;
    thread_.join();
    close(stop_);
    close(sock_);
    unlink(path_.c_str());
  }
  bool bound() const { return bound_; }
  // After the container ran: what the runtime sent, and what was notified.
  const std::string& state_json() const { return state_; }
  int fds_received() const { return fds_; }
  int notifications() const { return notifications_; }
  const std::vector<int>& syscalls() const { return syscalls_; }

 private:
  // Waits for FD to be readable or the stop event; false on stop.
  bool wait_for(int fd) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_, POLLIN, 0}};
    for (;;) {
      int n = poll(p, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      return n > 0 && !(p[1].revents & POLLIN) && (p[0].revents & (POLLIN | POLLHUP));
    }
  }
  void serve() {
    while (wait_for(sock_)) {
      int conn = accept4(sock_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      int listener = receive(conn);
      close(conn);
      if (listener >= 0) {
        answer(listener);
        close(listener);
      }
    }
  }
  int receive(int conn) {
    char buf[8192];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) return -1;
    state_.assign(buf, static_cast<size_t>(n));
    // The rest of the JSON, when the stream split it.
    while ((n = read(conn, buf, sizeof buf)) > 0) state_.append(buf, static_cast<size_t>(n));
    int fd = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
        ++fds_;
      }
    return fd;
  }
  void answer(int listener) {
    // Until the filter's last user exits (POLLHUP) or the test ends.
    for (;;) {
      pollfd p[2] = {{listener, POLLIN, 0}, {stop_, POLLIN, 0}};
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if ((p[1].revents & POLLIN) || !(p[0].revents & POLLIN)) return;
      seccomp_notif req{};
      if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) continue;  // ENOENT: gone
      ++notifications_;
      syscalls_.push_back(req.data.nr);
      seccomp_notif_resp resp{};
      resp.id = req.id;
      resp.error = -answer_;
      ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
  }

  std::string path_;
  int answer_;
  int sock_ = -1, stop_ = -1;
  bool bound_ = false;
  std::thread thread_;
  std::string state_;
  int fds_ = 0, notifications_ = 0;
  std::vector<int> syscalls_;
};

class Seccomp : public ConfigBase {
 protected:
  void rule(const std::string& name, const std::string& action,
            const nlohmann::json& extra = nlohmann::json::object()) {
    nlohmann::json r = {{"names", {name}}, {"action", action}};
    r.update(extra);
    config()["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", {r}}};
  }
  // Whether this kernel knows the seccomp filter flags FLAGS (EFAULT for a null program).
  static bool kernel_has_flags(unsigned long flags) {
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, nullptr) < 0 && errno == EFAULT;
  }
  void notify_getcwd(const std::vector<std::string>& flags) {
    auto& b = bundle();
    std::string path = b.dir() + "/agent.sock";
    NotifyAgent agent(path, ENOMEDIUM);
    ASSERT_TRUE(agent.bound());
    rule("getcwd", "SCMP_ACT_NOTIFY");
    config()["linux"]["seccomp"]["listenerPath"] = path;
    config()["linux"]["seccomp"]["listenerMetadata"] = "forker-test-metadata";
    config()["linux"]["seccomp"]["flags"] = flags;
    auto r = run({"probe", "cwd"});
    // The agent's answer is what the container's getcwd returned.
    EXPECT_EQ(r.out, "ERR getcwd: " + err_text(ENOMEDIUM) + "\n") << r.err;
    EXPECT_EQ(r.status, 1);
    auto st = nlohmann::json::parse(agent.state_json(), nullptr, false);
    ASSERT_TRUE(st.is_object()) << agent.state_json();
    EXPECT_EQ(agent.fds_received(), 1);
    EXPECT_EQ(st["fds"], nlohmann::json::array({"seccompFd"}));
    EXPECT_EQ(st["metadata"], "forker-test-metadata");
    EXPECT_GT(st.value("pid", 0), 0);
    EXPECT_EQ(st["state"]["id"], b.id());
    EXPECT_EQ(st["state"]["pid"], st["pid"]);
    EXPECT_TRUE(st.contains("ociVersion"));
    EXPECT_GE(agent.notifications(), 1);
    for (int nr : agent.syscalls()) EXPECT_EQ(nr, SYS_getcwd);
  }
};

TEST_F(Seccomp, NotifyAgentAnswersTheSyscall) { notify_getcwd({}); }

TEST_F(Seccomp, NotifyWithWaitKillableRecv) {
  if (!kernel_has_flags(SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV))
    GTEST_SKIP() << "kernel before 5.19: no SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV";
  notify_getcwd({"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"});
}

// Every action on getcwd: the probe's exit status, or what getcwd returned.
TEST_F(Seccomp, EveryAction) {
  struct Case {
    const char* action;
    int status;       // 159 = 128 + SIGSYS
    const char* out;  // "" when the process died
  } kCases[] = {
      {"SCMP_ACT_KILL", 128 + SIGSYS, ""},
      {"SCMP_ACT_KILL_THREAD", 128 + SIGSYS, ""},
      {"SCMP_ACT_KILL_PROCESS", 128 + SIGSYS, ""},
      {"SCMP_ACT_TRAP", 128 + SIGSYS, ""},
      {"SCMP_ACT_LOG", 0, "/\n"},
      {"SCMP_ACT_ALLOW", 0, "/\n"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.action);
    rule("getcwd", c.action);
    // A second rule keeps a filter even where the first equals the default (ALLOW).
    config()["linux"]["seccomp"]["syscalls"].push_back(
        {{"names", {"acct"}}, {"action", "SCMP_ACT_ERRNO"}});
    auto r = run({"probe", "cwd"});
    EXPECT_EQ(r.status, c.status) << r.err;
    EXPECT_EQ(r.out, c.out);
  }
  // TRACE with no tracer attached: the call fails with ENOSYS.
  rule("getcwd", "SCMP_ACT_TRACE");
  auto r = run({"probe", "cwd"});
  EXPECT_EQ(r.out, "ERR getcwd: " + err_text(ENOSYS) + "\n") << r.err;
  rule("getcwd", "SCMP_ACT_ERRNO", {{"errnoRet", EXDEV}});
  r = run({"probe", "cwd"});
  EXPECT_EQ(r.out, "ERR getcwd: " + err_text(EXDEV) + "\n") << r.err;
}

// Every comparison operator, on personality(2)'s argument: one value it matches, one it does not.
TEST_F(Seccomp, EveryOperator) {
  struct Case {
    const char* op;
    uint64_t value, value_two;
    const char *match, *miss;
  } kCases[] = {
      {"SCMP_CMP_EQ", 8, 0, "8", "9"},
      {"SCMP_CMP_NE", 8, 0, "9", "8"},
      {"SCMP_CMP_LT", 8, 0, "7", "8"},
      {"SCMP_CMP_LE", 8, 0, "8", "9"},
      {"SCMP_CMP_GT", 8, 0, "9", "8"},
      {"SCMP_CMP_GE", 8, 0, "8", "7"},
      {"SCMP_CMP_MASKED_EQ", 0xff, 8, "0x108", "0x109"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.op);
    rule("personality", "SCMP_ACT_ERRNO",
         {{"errnoRet", EXDEV},
          {"args", {{{"index", 0}, {"value", c.value}, {"valueTwo", c.value_two}, {"op", c.op}}}}});
    auto r = run({"probe", "personality", c.match});
    EXPECT_EQ(r.out, "ERR personality: " + err_text(EXDEV) + "\n") << r.err;
    r = run({"probe", "personality", c.miss});
    EXPECT_EQ(r.out, "ok\n") << r.err;
  }
}

// Names this libseccomp does not know are skipped (runc's rule), the rest still apply.
TEST_F(Seccomp, UnknownSyscallNamesAreSkipped) {
  config()["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls",
       {{{"names", {"no_such_syscall_forker", "getcwd"}}, {"action", "SCMP_ACT_ERRNO"}}}}};
  auto r = run({"probe", "cwd"});
  EXPECT_EQ(r.out, "ERR getcwd: " + err_text(EPERM) + "\n") << r.err;
}

class DefaultProfile : public ConfigBase {
 protected:
  // The config `forker-oci spec --seccomp-default` writes, made runnable by the probe.
  void SetUp() override {
    ConfigBase::SetUp();
    if (IsSkipped()) return;
    std::string dir = bundle().dir() + "/spec";
    std::filesystem::create_directories(dir);
    auto r = run_oci({"spec", "--seccomp-default", "--bundle", dir}, "");
    ASSERT_EQ(r.status, 0) << r.err;
    auto spec = nlohmann::json::parse(read_text(dir + "/config.json"));
    ASSERT_TRUE(spec["linux"].contains("seccomp"));
    config()["linux"]["seccomp"] = spec["linux"]["seccomp"];
  }
};

TEST_F(DefaultProfile, SpecWritesAnAllowlist) {
  const auto& s = config()["linux"]["seccomp"];
  EXPECT_EQ(s["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(s["defaultErrnoRet"], 1);
#if defined(__x86_64__)
  EXPECT_EQ(s["architectures"],
            nlohmann::json::array({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
#endif
  // Plain `spec` stays runc's: no seccomp.
  std::string dir = bundle().dir() + "/plain";
  std::filesystem::create_directories(dir);
  ASSERT_EQ(run_oci({"spec", "--bundle", dir}, "").status, 0);
  EXPECT_FALSE(nlohmann::json::parse(read_text(dir + "/config.json"))["linux"].contains("seccomp"));
}

TEST_F(DefaultProfile, OrdinaryProgramsRun) {
  auto r = run({"probe", "cwd"});
  EXPECT_EQ(r.out, "/\n") << r.err;
  r = run({"probe", "socket", "1", "1"});  // AF_UNIX, SOCK_STREAM
  EXPECT_EQ(r.out, "ok\n") << r.err;
  r = run({"probe", "personality", "0xffffffff"});  // the query
  EXPECT_EQ(r.out, "ok\n") << r.err;
  if (have_busybox()) {
    // fork + exec through clone without namespace flags.
    r = run({"/bin/sh", "-c", "/bin/echo forked"});
    EXPECT_EQ(r.out, "forked\n") << r.err;
  }
}

TEST_F(DefaultProfile, DeniesWhatDockersProfileDenies) {
  struct Case {
    std::vector<std::string> argv;
    std::string out;
  } kCases[] = {
      // New namespaces need CAP_SYS_ADMIN, which the default capabilities lack.
      {{"probe", "unshare", "0x10000000"}, "ERR unshare: " + err_text(EPERM) + "\n"},
      // clone3's flags are out of seccomp's reach: ENOSYS, so libc falls back to clone.
      {{"probe", "clone3"}, "ERR clone3: " + err_text(ENOSYS) + "\n"},
      {{"probe", "socket", "40", "1"}, "ERR socket: " + err_text(EPERM) + "\n"},  // AF_VSOCK
      {{"probe", "personality", "1"}, "ERR personality: " + err_text(EPERM) + "\n"},
      {{"probe", "mount", "tmpfs", "/dev"}, "ERR mount: " + err_text(EPERM) + "\n"},
      {{"probe", "init-module"}, "ERR init_module: " + err_text(EPERM) + "\n"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.argv[1]);
    auto r = run(c.argv);
    EXPECT_EQ(r.out, c.out) << r.err;
  }
}

}  // namespace
}  // namespace forker::test
