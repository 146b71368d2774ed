// linux.devices and the device cgroup, linux.sysctl, linux.seccomp.
#include <sys/stat.h>

#include "integration/config_fixture.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;

class ConfigDevices : public ConfigBase {
 protected:
  void add_caps(const std::vector<std::string>& caps) {
    for (const char* set : {"bounding", "effective", "permitted"})
      for (const auto& c : caps) config()["process"]["capabilities"][set].push_back(c);
  }
};

TEST_F(ConfigDevices, DefaultDevicesAreCharNodesWithMode0666) {
  struct {
    const char* path;
    const char* want;
  } kDevs[] = {{"/dev/null", "char 666 0 0 1:3\n"},   {"/dev/zero", "char 666 0 0 1:5\n"},
               {"/dev/full", "char 666 0 0 1:7\n"},   {"/dev/random", "char 666 0 0 1:8\n"},
               {"/dev/urandom", "char 666 0 0 1:9\n"}, {"/dev/tty", "char 666 0 0 5:0\n"}};
  for (const auto& d : kDevs) {
    auto r = run({"probe", "stat", d.path});
    EXPECT_EQ(r.out, d.want) << d.path << ": " << r.err;
  }
  // Usable through the device cgroup's default rules.
  auto r = run({"probe", "open", "/dev/null"});
  EXPECT_EQ(r.out, "ok\n") << r.err;
  r = run({"probe", "open", "/dev/zero"});
  EXPECT_EQ(r.out, "ok\n") << r.err;
}

TEST_F(ConfigDevices, DefaultDevSymlinks) {
  struct {
    const char* path;
    const char* want;
  } kLinks[] = {{"/dev/fd", "/proc/self/fd\n"},       {"/dev/stdin", "/proc/self/fd/0\n"},
                {"/dev/stdout", "/proc/self/fd/1\n"}, {"/dev/stderr", "/proc/self/fd/2\n"},
                {"/dev/ptmx", "pts/ptmx\n"}};
  for (const auto& l : kLinks) {
    auto r = run({"probe", "readlink", l.path});
    EXPECT_EQ(r.out, l.want) << l.path << ": " << r.err;
  }
  auto r = run({"probe", "stat", "/dev/pts/ptmx"});
  EXPECT_EQ(r.out, "char 666 0 0 5:2\n") << r.err;
}

TEST_F(ConfigDevices, ConfiguredDevices) {
  config()["linux"]["devices"] = {
      {{"path", "/dev/fuse"}, {"type", "c"}, {"major", 10}, {"minor", 229}, {"fileMode", 0666},
       {"uid", 0}, {"gid", 0}},
      {{"path", "/dev/custom/zero0"}, {"type", "c"}, {"major", 1}, {"minor", 5},
       {"fileMode", 0606}, {"uid", 5}, {"gid", 6}},
      {{"path", "/dev/loop-test"}, {"type", "b"}, {"major", 7}, {"minor", 200},
       {"fileMode", 0660}},
      {{"path", "/dev/fifo-test"}, {"type", "p"}, {"fileMode", 0640}},
  };
  auto r = run({"probe", "stat", "/dev/fuse"});
  EXPECT_EQ(r.out, "char 666 0 0 10:229\n") << r.err;
  r = run({"probe", "stat", "/dev/custom/zero0"});
  EXPECT_EQ(r.out, "char 606 5 6 1:5\n") << r.err;
  r = run({"probe", "stat", "/dev/loop-test"});
  EXPECT_EQ(r.out, "block 660 0 0 7:200\n") << r.err;
  r = run({"probe", "stat", "/dev/fifo-test"});
  EXPECT_EQ(r.out, "fifo 640 0 0 0:0\n") << r.err;
  // A listed device is allowed by the device cgroup too.
  r = run({"probe", "open", "/dev/custom/zero0"});
  EXPECT_EQ(r.out, "ok\n") << r.err;
}

TEST_F(ConfigDevices, ConfiguredDeviceReplacesDefaultOfSamePath) {
  config()["linux"]["devices"] = {
      {{"path", "/dev/null"}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"fileMode", 0600}}};
  auto r = run({"probe", "stat", "/dev/null"});
  EXPECT_EQ(r.out, "char 600 0 0 1:3\n") << r.err;
}

// The default spec denies every device, then the runtime allows the default ones: a node made
// inside for an allowed device opens, one for any other device does not.
TEST_F(ConfigDevices, DeviceCgroupDeniesUnlistedDevices) {
  if (!have_busybox()) GTEST_SKIP() << "needs busybox";
  add_caps({"CAP_MKNOD"});
  // Both nodes in one container: /dev is a tmpfs made per container.
  std::string script =
      "/probe mknod-char /dev/mynull 1 3 && /probe open /dev/mynull && "
      "/probe mknod-char /dev/mykmsg 1 11 && /probe open-write /dev/mykmsg";
  auto r = run({"/bin/sh", "-c", script});
  EXPECT_EQ(r.out, "ok\nok\nok\nERR /dev/mykmsg: " + err_text(EPERM) + "\n") << r.err;
  EXPECT_EQ(r.status, 1);
  // Allowed by a rule of the config, /dev/kmsg opens for writing (which needs no capability).
  config()["linux"]["resources"]["devices"].push_back(
      {{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 11}, {"access", "w"}});
  r = run({"/bin/sh", "-c", script});
  EXPECT_EQ(r.out, "ok\nok\nok\nok\n") << r.err;
  EXPECT_EQ(r.status, 0);
}

TEST_F(ConfigDevices, MknodWithoutCapabilityFails) {
  auto r = run({"probe", "mknod-char", "/dev/x", "1", "3"});
  EXPECT_EQ(r.out, "ERR /dev/x: " + err_text(EPERM) + "\n") << r.err;
}

class ConfigSysctl : public ConfigBase {};

TEST_F(ConfigSysctl, NamespacedSysctlIsSetInsideOnly) {
  std::string host_before = read_text("/proc/sys/net/ipv4/ip_forward");
  std::string want = host_before == "1\n" ? "0" : "1";
  config()["linux"]["sysctl"] = {{"net.ipv4.ip_forward", want}, {"kernel.shmmax", "123456789"}};
  auto r = run({"probe", "cat", "/proc/sys/net/ipv4/ip_forward"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, want + "\n");
  r = run({"probe", "cat", "/proc/sys/kernel/shmmax"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "123456789\n");
  EXPECT_EQ(read_text("/proc/sys/net/ipv4/ip_forward"), host_before);
  EXPECT_NE(read_text("/proc/sys/kernel/shmmax"), "123456789\n");
}

TEST_F(ConfigSysctl, NonNamespacedSysctlIsRefused) {
  std::string before = read_text("/proc/sys/vm/swappiness");
  config()["linux"]["sysctl"] = {{"vm.swappiness", "13"}};
  auto r = run({"probe", "pid"});
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("vm.swappiness"));
  EXPECT_EQ(read_text("/proc/sys/vm/swappiness"), before);
  EXPECT_NE(bundle().oci({"state", bundle().id()}).status, 0);
}

TEST_F(ConfigSysctl, NetSysctlWithoutNetworkNamespaceIsRefused) {
  remove_namespace("network");
  config()["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
  auto r = run({"probe", "pid"});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("net.ipv4.ip_forward"));
}

class ConfigSeccomp : public ConfigBase {
 protected:
  void getcwd_errno_profile() {
    config()["linux"]["seccomp"] = {
        {"defaultAction", "SCMP_ACT_ALLOW"},
        {"syscalls", {{{"names", {"getcwd"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}}}};
  }
};

TEST_F(ConfigSeccomp, ErrnoRuleWithNoNewPrivileges) {
  getcwd_errno_profile();
  config()["process"]["noNewPrivileges"] = true;
  auto r = run({"probe", "cwd"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, "ERR getcwd: " + err_text(42) + "\n");
  r = run({"probe", "status"});
  EXPECT_EQ(status_field(r.out, "Seccomp"), "2") << r.err;
  EXPECT_EQ(status_field(r.out, "NoNewPrivs"), "1");
}

TEST_F(ConfigSeccomp, ErrnoRuleWithoutNoNewPrivileges) {
  getcwd_errno_profile();
  config()["process"]["noNewPrivileges"] = false;
  auto r = run({"probe", "cwd"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, "ERR getcwd: " + err_text(42) + "\n");
  r = run({"probe", "status"});
  EXPECT_EQ(status_field(r.out, "Seccomp"), "2") << r.err;
  EXPECT_EQ(status_field(r.out, "NoNewPrivs"), "0");
}

TEST_F(ConfigSeccomp, ErrnoRuleAsNonRootUser) {
  getcwd_errno_profile();
  config()["process"]["noNewPrivileges"] = false;
  config()["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  auto r = run({"probe", "cwd"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, "ERR getcwd: " + err_text(42) + "\n");
}

// An SCMP_ACT_ERRNO rule without errnoRet returns EPERM; calls no rule names are allowed.
TEST_F(ConfigSeccomp, ErrnoRuleWithoutErrnoRetGivesEperm) {
  config()["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls",
       {{{"names", {"getcwd", "uname"}}, {"action", "SCMP_ACT_ERRNO"}},  // errnoRet: EPERM
        {{"names", {"getpid"}}, {"action", "SCMP_ACT_ALLOW"}}}}};
  auto r = run({"probe", "cwd"});
  EXPECT_EQ(r.out, "ERR getcwd: " + err_text(EPERM) + "\n") << r.err;
  r = run({"probe", "pid"});
  EXPECT_EQ(r.out, "1\n") << r.err;
}

TEST_F(ConfigSeccomp, NoSeccompByDefault) {
  auto r = run({"probe", "status"});
  EXPECT_EQ(status_field(r.out, "Seccomp"), "0") << r.err;
}

}  // namespace
}  // namespace forker::test
