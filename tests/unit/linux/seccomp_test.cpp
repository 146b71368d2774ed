#include "linux/seccomp.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace forker::linux {
namespace {

using ::testing::HasSubstr;

// Runs fn in a forked child and returns what it reported; "" means it went as expected.
std::string run_in_child(const std::function<std::string()>& fn) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return "pipe failed";
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    const std::string report = fn();
    if (write(p[1], report.data(), report.size()) < 0) _exit(2);
    _exit(0);
  }
  close(p[1]);
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return "child killed by signal " + std::to_string(WTERMSIG(status));
  return out;
}

oci::Seccomp allow_by_default() {
  oci::Seccomp s;
  s.default_action = "SCMP_ACT_ALLOW";
  return s;
}

oci::SeccompSyscall rule(std::vector<std::string> names, std::string action) {
  oci::SeccompSyscall r;
  r.names = std::move(names);
  r.action = std::move(action);
  return r;
}

TEST(Seccomp, UnknownActionNamesTheField) {
  oci::Seccomp s = allow_by_default();
  s.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_ERRNO"));
  s.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_FOO"));
  auto r = compile_seccomp(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "linux.seccomp.syscalls[1].action SCMP_ACT_FOO: unknown action");
}

TEST(Seccomp, UnknownDefaultAction) {
  oci::Seccomp s;
  s.default_action = "SCMP_ACT_NOPE";
  auto r = compile_seccomp(s);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("linux.seccomp.defaultAction SCMP_ACT_NOPE"));
}

TEST(Seccomp, UnknownOperator) {
  oci::Seccomp s = allow_by_default();
  auto r0 = rule({"getcwd"}, "SCMP_ACT_ERRNO");
  r0.args.push_back({.index = 0, .value = 1, .value_two = 0, .op = "SCMP_CMP_ALMOST"});
  s.syscalls.push_back(r0);
  auto r = compile_seccomp(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "linux.seccomp.syscalls[0].args[0].op SCMP_CMP_ALMOST: unknown operator");
}

TEST(Seccomp, ArgIndexOutOfRange) {
  oci::Seccomp s = allow_by_default();
  auto r0 = rule({"getcwd"}, "SCMP_ACT_ERRNO");
  r0.args.push_back({.index = 6, .value = 1, .value_two = 0, .op = "SCMP_CMP_EQ"});
  s.syscalls.push_back(r0);
  auto r = compile_seccomp(s);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("args[0].index 6"));
}

TEST(Seccomp, UnknownFlag) {
  oci::Seccomp s = allow_by_default();
  s.flags = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_BOGUS"};
  auto r = compile_seccomp(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "linux.seccomp.flags SECCOMP_FILTER_FLAG_BOGUS: unknown flag");
}

TEST(Seccomp, UnknownArchitecture) {
  oci::Seccomp s = allow_by_default();
  s.architectures = {"SCMP_ARCH_PDP11"};
  auto r = compile_seccomp(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "linux.seccomp.architectures SCMP_ARCH_PDP11: unknown architecture");
}

TEST(Seccomp, KnownFlagsBecomeFilterFlags) {
  oci::Seccomp s = allow_by_default();
  s.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
             "SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
  s.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_ERRNO"));
  auto r = compile_seccomp(s);
  ASSERT_TRUE(r) << r.error().message();
  // TSYNC is accepted and dropped, as runc does.
  EXPECT_EQ(r->flags, SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW);
  EXPECT_EQ(seccomp_flags_to_string(r->flags), "LOG|SPEC_ALLOW");
}

TEST(Seccomp, WaitKillableRecvOnlyWithListener) {
  oci::Seccomp s = allow_by_default();
  s.flags = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  s.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_ERRNO"));
  auto plain = compile_seccomp(s);
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_EQ(plain->flags, 0u);
  s.syscalls.push_back(rule({"getpid"}, "SCMP_ACT_NOTIFY"));
  auto notify = compile_seccomp(s);
  ASSERT_TRUE(notify) << notify.error().message();
  EXPECT_TRUE(notify->needs_listener);
  EXPECT_EQ(notify->flags, static_cast<unsigned>(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV));
}

TEST(Seccomp, UnknownSyscallIsSkipped) {
  oci::Seccomp s = allow_by_default();
  s.syscalls.push_back(rule({"getcwd", "no_such_syscall_forker"}, "SCMP_ACT_ERRNO"));
  auto r = compile_seccomp(s);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->skipped_syscalls, std::vector<std::string>{"no_such_syscall_forker"});
  EXPECT_FALSE(r->filter.empty());
  EXPECT_FALSE(r->needs_listener);
}

TEST(Seccomp, RuleWithDefaultActionIsSkipped) {
  oci::Seccomp s = allow_by_default();
  auto empty = compile_seccomp(s);
  ASSERT_TRUE(empty) << empty.error().message();
  s.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_ALLOW"));
  auto same = compile_seccomp(s);
  ASSERT_TRUE(same) << same.error().message();
  ASSERT_EQ(same->filter.size(), empty->filter.size());
  EXPECT_EQ(0, std::memcmp(same->filter.data(), empty->filter.data(),
                           empty->filter.size() * sizeof(sock_filter)));
}

TEST(Seccomp, RuleCompilesToNonEmptyBpf) {
  oci::Seccomp s;
  s.default_action = "SCMP_ACT_ERRNO";
  s.default_errno_ret = 38;
  auto r0 = rule({"read", "write", "exit_group"}, "SCMP_ACT_ALLOW");
  auto r1 = rule({"personality"}, "SCMP_ACT_ALLOW");
  r1.args.push_back({.index = 0, .value = 0, .value_two = 0, .op = "SCMP_CMP_EQ"});
  s.syscalls = {r0,
                r1,
                rule({"ptrace"}, "SCMP_ACT_KILL_PROCESS"),
                rule({"mount"}, "SCMP_ACT_LOG"),
                rule({"umount2"}, "SCMP_ACT_TRAP"),
                rule({"reboot"}, "SCMP_ACT_TRACE"),
                rule({"swapon"}, "SCMP_ACT_KILL")};
  auto r = compile_seccomp(s);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_GT(r->filter.size(), 10u);
  EXPECT_TRUE(r->skipped_syscalls.empty());
  // The default action's errno is in a return instruction.
  bool default_ret = false;
  for (const sock_filter& insn : r->filter)
    default_ret |= insn.code == (BPF_RET | BPF_K) && insn.k == (SECCOMP_RET_ERRNO | 38);
  EXPECT_TRUE(default_ret);
}

TEST(Seccomp, MaskedEqTakesValueAsMaskAndValueTwoAsDatum) {
  oci::Seccomp s = allow_by_default();
  auto r0 = rule({"personality"}, "SCMP_ACT_ERRNO");
  r0.args.push_back({.index = 0, .value = 0xF0F0, .value_two = 0x3030, .op = "SCMP_CMP_MASKED_EQ"});
  s.syscalls.push_back(r0);
  auto r = compile_seccomp(s);
  ASSERT_TRUE(r) << r.error().message();
  bool masked = false, compared = false;
  for (const sock_filter& insn : r->filter) {
    masked |= insn.code == (BPF_ALU | BPF_AND | BPF_K) && insn.k == 0xF0F0;
    compared |= BPF_CLASS(insn.code) == BPF_JMP && insn.k == 0x3030;
  }
  EXPECT_TRUE(masked);
  EXPECT_TRUE(compared);
}

TEST(Seccomp, TwoConditionsOnOneArgumentBecomeTwoRules) {
  oci::Seccomp s = allow_by_default();
  auto r0 = rule({"personality"}, "SCMP_ACT_ERRNO");
  r0.args.push_back({.index = 0, .value = 1, .value_two = 0, .op = "SCMP_CMP_EQ"});
  r0.args.push_back({.index = 0, .value = 2, .value_two = 0, .op = "SCMP_CMP_EQ"});
  s.syscalls.push_back(r0);
  auto r = compile_seccomp(s);
  ASSERT_TRUE(r) << r.error().message();
}

TEST(Seccomp, ExtraArchitectureGrowsTheFilter) {
  oci::Seccomp s = allow_by_default();
  s.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_ERRNO"));
  auto native = compile_seccomp(s);
  ASSERT_TRUE(native) << native.error().message();
  s.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  auto multi = compile_seccomp(s);
  ASSERT_TRUE(multi) << multi.error().message();
  EXPECT_GT(multi->filter.size(), native->filter.size());
}

TEST(Seccomp, NotifyRules) {
  oci::Seccomp s = allow_by_default();
  s.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_NOTIFY"));
  auto r = compile_seccomp(s);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->needs_listener);

  s.syscalls.push_back(rule({"write"}, "SCMP_ACT_NOTIFY"));
  auto w = compile_seccomp(s);
  ASSERT_FALSE(w);
  EXPECT_THAT(w.error().message(), HasSubstr("syscalls[1].action SCMP_ACT_NOTIFY"));

  oci::Seccomp d;
  d.default_action = "SCMP_ACT_NOTIFY";
  EXPECT_FALSE(compile_seccomp(d));
}

TEST(Seccomp, EmptyNamesIsError) {
  oci::Seccomp s = allow_by_default();
  s.syscalls.push_back(rule({}, "SCMP_ACT_ERRNO"));
  auto r = compile_seccomp(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "linux.seccomp.syscalls[0].names: must not be empty");
}

// Unprivileged: no_new_privs allows any process to install a filter.
TEST(Seccomp, LoadedFilterReturnsErrnoInChild) {
  oci::Seccomp s = allow_by_default();
  auto r0 = rule({"getcwd"}, "SCMP_ACT_ERRNO");
  r0.errno_ret = 42;
  s.syscalls.push_back(r0);
  auto program = compile_seccomp(s);
  ASSERT_TRUE(program) << program.error().message();

  std::string report = run_in_child([&]() -> std::string {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return "PR_SET_NO_NEW_PRIVS failed";
    auto fd = load_seccomp(*program);
    if (!fd) return fd.error().message();
    if (*fd != -1) return "unexpected listener fd";
    char buf[4096];
    // Straight to the kernel: glibc's getcwd may fall back to walking the tree.
    if (syscall(SYS_getcwd, buf, sizeof(buf)) >= 0) return "getcwd succeeded";
    return errno == 42 ? "" : "errno " + std::to_string(errno);
  });
  EXPECT_EQ(report, "");
}

TEST(Seccomp, NotifyFilterReturnsListenerFd) {
  oci::Seccomp s = allow_by_default();
  s.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_NOTIFY"));
  auto program = compile_seccomp(s);
  ASSERT_TRUE(program) << program.error().message();
  std::string report = run_in_child([&]() -> std::string {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return "PR_SET_NO_NEW_PRIVS failed";
    auto fd = load_seccomp(*program);
    if (!fd) return fd.error().message();
    return *fd >= 0 ? "" : "no listener fd";
  });
  EXPECT_EQ(report, "");
}

TEST(Seccomp, LoadWithoutNoNewPrivsNamesTheCause) {
  oci::Seccomp s = allow_by_default();
  s.syscalls.push_back(rule({"getcwd"}, "SCMP_ACT_ERRNO"));
  auto program = compile_seccomp(s);
  ASSERT_TRUE(program) << program.error().message();
  std::string report = run_in_child([&]() -> std::string {
    // Without no_new_privs the kernel wants CAP_SYS_ADMIN: empty the effective set, so the
    // test means the same as root and as a user.
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &header, data) < 0) return "capget failed";
    data[0].effective = data[1].effective = 0;
    if (syscall(SYS_capset, &header, data) < 0) return "capset failed";
    auto fd = load_seccomp(*program);
    return fd ? "loaded" : fd.error().message();
  });
  EXPECT_THAT(report, HasSubstr("no_new_privs"));
}

TEST(Seccomp, LoadReportsUnsupportedFlags) {
  oci::Seccomp s = allow_by_default();
  auto program = compile_seccomp(s);
  ASSERT_TRUE(program) << program.error().message();
  program->flags = 1U << 20;  // no kernel knows this one
  std::string report = run_in_child([&]() -> std::string {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return "PR_SET_NO_NEW_PRIVS failed";
    auto fd = load_seccomp(*program);
    return fd ? "loaded" : fd.error().message();
  });
  EXPECT_THAT(report, HasSubstr("flags 1048576 not supported by this kernel"));
}

TEST(Seccomp, ContainerProcessState) {
  auto text = container_process_state_json(
      "1.2.0", 1234, "meta", R"({"ociVersion":"1.2.0","id":"c1","status":"creating"})");
  ASSERT_TRUE(text) << text.error().message();
  auto j = nlohmann::json::parse(*text);
  EXPECT_EQ(j["fds"], nlohmann::json::array({"seccompFd"}));
  EXPECT_EQ(j["pid"], 1234);
  EXPECT_EQ(j["metadata"], "meta");
  EXPECT_EQ(j["state"]["id"], "c1");
  EXPECT_FALSE(container_process_state_json("1.2.0", 1, "", "not json"));
}

TEST(Seccomp, SendListenerPassesFdAndState) {
  char dir[] = "/tmp/forker-seccomp-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/agent.sock";
  int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(server, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(server, 1), 0);

  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  const std::string state = R"({"ociVersion":"1.2.0","fds":["seccompFd"]})";
  Status sent = send_seccomp_listener(p[0], path, state);
  ASSERT_TRUE(sent) << sent.error().message();

  int conn = accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(conn, 0);
  char buf[256] = {};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{buf, sizeof(buf)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), state);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  ASSERT_NE(cmsg, nullptr);
  ASSERT_EQ(cmsg->cmsg_type, SCM_RIGHTS);
  int received = -1;
  std::memcpy(&received, CMSG_DATA(cmsg), sizeof(int));
  // The received fd is the pipe's read end: what goes into p[1] comes out of it.
  ASSERT_EQ(write(p[1], "x", 1), 1);
  char c = 0;
  EXPECT_EQ(read(received, &c, 1), 1);
  EXPECT_EQ(c, 'x');

  close(received);
  close(conn);
  close(p[0]);
  close(p[1]);
  close(server);
  unlink(path.c_str());
  rmdir(dir);

  auto missing = send_seccomp_listener(0, path, state);
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message(), HasSubstr("connect " + path));
}

}  // namespace
}  // namespace forker::linux
