// The escape suite: a process inside a container tries to break out in the ways containers have
// been broken out of, and each attempt must fail for the right reason (the errno the kernel or
// the filter gives, checked exactly). CVE-2019-5736, CVE-2024-21626 and CVE-2019-19921 are in
// security_test.cpp.
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "integration/config_fixture.hpp"

namespace forker::test {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// Whether something is mounted at PATH (or below it) in the host's mount table.
bool host_mounted_on_path(const std::string& path) {
  std::istringstream in(read_text("/proc/self/mountinfo"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string a, b, c, root, mp;
    f >> a >> b >> c >> root >> mp;
    if (mp == path || mp.rfind(path + "/", 0) == 0) return true;
  }
  return false;
}

class Escape : public ConfigBase {
 protected:
  std::string errno_line(const std::string& what, int e) {
    return "ERR " + what + ": " + err_text(e) + "\n";
  }
  // The v1 hierarchies the container sees under /sys/fs/cgroup (empty on a cgroup v2 host).
  std::vector<std::string> v1_hierarchies() {
    std::vector<std::string> out;
    auto r = run({"probe", "mountinfo"});
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      auto sep = line.find(" - cgroup ");
      if (sep == std::string::npos) continue;
      std::istringstream f(line);
      std::string a, b, c, root, mp;
      f >> a >> b >> c >> root >> mp;
      out.push_back(mp);
    }
    return out;
  }
  void add_caps(const std::vector<std::string>& caps) {
    for (const char* set : {"bounding", "effective", "permitted"})
      for (const auto& c : caps) config()["process"]["capabilities"][set].push_back(c);
  }
  void default_seccomp() {
    std::string dir = bundle().dir() + "/spec";
    fs::create_directories(dir);
    auto r = run_oci({"spec", "--seccomp-default", "--bundle", dir}, "");
    ASSERT_EQ(r.status, 0) << r.err;
    config()["linux"]["seccomp"] =
        nlohmann::json::parse(read_text(dir + "/config.json"))["linux"]["seccomp"];
  }
};

// CVE-2022-0492: a release_agent written in a v1 cgroup runs as root on the host when the
// cgroup empties. The container's cgroup mounts are read-only, and below the hierarchy's root
// (where release_agent lives) thanks to the cgroup namespace.
TEST_F(Escape, CgroupV1ReleaseAgentIsNotWritable) {
  auto hierarchies = v1_hierarchies();
  if (hierarchies.empty()) GTEST_SKIP() << "no cgroup v1 hierarchy on this host";
  for (const auto& h : hierarchies) {
    SCOPED_TRACE(h);
    auto r = run({"probe", "open-write", h + "/notify_on_release"});
    EXPECT_EQ(r.out, errno_line(h + "/notify_on_release", EROFS)) << r.err;
    r = run({"probe", "open-write", h + "/release_agent"});
    EXPECT_THAT(r.out, AnyOf(errno_line(h + "/release_agent", EROFS),
                             errno_line(h + "/release_agent", ENOENT)))
        << r.err;
  }
  // Nor can a fresh hierarchy be mounted (where release_agent would be at the root).
  auto r = run({"probe", "mount", "cgroup", "/dev", "rdma"});
  EXPECT_EQ(r.out, errno_line("mount", EPERM)) << r.err;
}

TEST_F(Escape, ProcSysAndSysrqTriggerAreReadOnly) {
  for (const char* path :
       {"/proc/sys/kernel/core_pattern", "/proc/sys/vm/drop_caches", "/proc/sysrq-trigger"}) {
    if (!fs::exists(path)) continue;  // sysrq-trigger: a kernel without CONFIG_MAGIC_SYSRQ
    SCOPED_TRACE(path);
    auto r = run({"probe", "open-write", path});
    EXPECT_EQ(r.out, errno_line(path, EROFS)) << r.err;
  }
}

TEST_F(Escape, MaskedPathsReadEmpty) {
  // Masked files are /dev/null bound over them: they read as nothing.
  for (const char* path : {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"}) {
    if (!fs::exists(path)) continue;
    SCOPED_TRACE(path);
    auto r = run({"probe", "cat", path});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(r.out, "");
    r = run({"probe", "stat", path});
    EXPECT_EQ(r.out, "char 666 0 0 1:3\n");
  }
  // A masked directory is an empty read-only tmpfs.
  if (fs::exists("/sys/firmware")) {
    auto r = run({"probe", "ls", "/sys/firmware"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(Escape, MknodBlockDeviceIsRefused) {
  // No CAP_MKNOD in the default capabilities.
  auto r = run({"probe", "mknod-open", "/dev/sda-escape", "b", "8", "0"});
  EXPECT_EQ(r.out, errno_line("mknod", EPERM)) << r.err;
}

TEST_F(Escape, DeviceNotInLinuxDevicesCannotBeOpened) {
  // Even with CAP_MKNOD the node made is refused by the device cgroup on open: /dev/mem (1:1)
  // and the disk 8:0 are not in linux.devices.
  add_caps({"CAP_MKNOD"});
  auto r = run({"probe", "mknod-open", "/dev/mem-escape", "c", "1", "1"});
  EXPECT_EQ(r.out, "mknod ok\n" + errno_line("open", EPERM)) << r.err;
  r = run({"probe", "mknod-open", "/dev/sda-escape", "b", "8", "0"});
  EXPECT_EQ(r.out, "mknod ok\n" + errno_line("open", EPERM)) << r.err;
}

TEST_F(Escape, KernelModulesCannotBeLoaded) {
  // No CAP_SYS_MODULE: EPERM; a kernel built without modules has no such calls at all.
  const int want = fs::exists("/proc/modules") ? EPERM : ENOSYS;
  auto r = run({"probe", "init-module"});
  EXPECT_EQ(r.out, errno_line("init_module", want)) << r.err;
  r = run({"probe", "finit-module", "/probe"});
  EXPECT_EQ(r.out, errno_line("finit_module", want)) << r.err;
  // The default profile refuses both before the kernel looks.
  default_seccomp();
  r = run({"probe", "init-module"});
  EXPECT_EQ(r.out, errno_line("init_module", EPERM)) << r.err;
  r = run({"probe", "finit-module", "/probe"});
  EXPECT_EQ(r.out, errno_line("finit_module", EPERM)) << r.err;
}

TEST_F(Escape, FilesystemsCannotBeMounted) {
  auto r = run({"probe", "mount", "tmpfs", "/dev"});
  EXPECT_EQ(r.out, errno_line("mount", EPERM)) << r.err;
  r = run({"probe", "mount", "proc", "/proc"});
  EXPECT_EQ(r.out, errno_line("mount", EPERM)) << r.err;
}

TEST_F(Escape, HostProcessesCannotBeTraced) {
  // The test itself is a host process: invisible from the container's pid namespace.
  auto r = run({"probe", "ptrace", std::to_string(getpid())});
  EXPECT_EQ(r.out, errno_line("ptrace", ESRCH)) << r.err;
}

TEST_F(Escape, HostNamespacesCannotBeJoined) {
  // The host's processes are not in the container's /proc; its own pid 1 (the probe) is, and
  // joining its mount namespace needs CAP_SYS_ADMIN.
  auto r = run({"probe", "setns", "/proc/" + std::to_string(getpid()) + "/ns/mnt"});
  EXPECT_EQ(r.out, errno_line("open", ENOENT)) << r.err;
  r = run({"probe", "setns", "/proc/1/ns/mnt"});
  EXPECT_EQ(r.out, errno_line("setns", EPERM)) << r.err;
}

TEST_F(Escape, UserNamespaceForbiddenByTheDefaultProfile) {
  // Without a filter root in the container may make a user namespace (no capability needed),
  // where it would hold every capability over its new namespaces.
  auto r = run({"probe", "unshare", "0x10000000"});
  EXPECT_EQ(r.out, "ok\n") << "control: unshare(CLONE_NEWUSER) without seccomp " << r.err;
  default_seccomp();
  r = run({"probe", "unshare", "0x10000000"});
  EXPECT_EQ(r.out, errno_line("unshare", EPERM)) << r.err;
}

TEST_F(Escape, HostSessionKeyringIsNotReachable) {
  // The test's own session keyring (made if it has none).
  long host = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 1);
  ASSERT_GT(host, 0) << strerror(errno);
  auto r = run({"probe", "keyring"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out, std::to_string(host) + "\n") << "the container shares the host's keyring";
  // A container user other than root may not even look at it.
  config()["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  r = run({"probe", "key-describe", std::to_string(host)});
  EXPECT_THAT(r.out,
              AnyOf(errno_line("keyctl describe", EACCES), errno_line("keyctl describe", ENOKEY)))
      << r.err;
}

TEST_F(Escape, SetuidBinaryGainsNothingUnderNoNewPrivileges) {
  std::string suid = bundle().rootfs() + "/probe-suid";
  fs::copy_file(bundle().rootfs() + "/probe", suid);
  ASSERT_EQ(chown(suid.c_str(), 0, 0), 0);
  ASSERT_EQ(chmod(suid.c_str(), 04755), 0);
  config()["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  // Control: without no_new_privs the setuid bit works (euid 0, the bounding set's caps).
  config()["process"]["noNewPrivileges"] = false;
  auto r = run({"/probe-suid", "status"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(status_field(r.out, "Uid"), "1000\t0\t0\t0") << "control: setuid did not apply";
  config()["process"]["noNewPrivileges"] = true;
  r = run({"/probe-suid", "status"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(status_field(r.out, "Uid"), "1000\t1000\t1000\t1000");
  EXPECT_EQ(status_field(r.out, "CapEff"), "0000000000000000");
  EXPECT_EQ(status_field(r.out, "CapPrm"), "0000000000000000");
  EXPECT_EQ(status_field(r.out, "NoNewPrivs"), "1");
}

// CVE-2021-30465 style: while containers start, the rootfs swaps a mount's target between a
// directory and a symlink to a host directory. Whatever wins each race, nothing may be mounted on
// or written to the host directory.
TEST_F(Escape, SymlinkSwapRaceAgainstManyStarts) {
  std::string escape = "/tmp/forker-race-" + std::to_string(getpid());
  fs::create_directories(escape);
  on_teardown([escape] {
    std::error_code ec;
    fs::remove_all(escape, ec);
  });
  write_text(escape + "/host-marker", "x");
  std::string root = bundle().rootfs();
  fs::create_directories(root + "/target");
  fs::create_symlink("/../../../../../../../.." + escape, root + "/alt");
  config()["mounts"].push_back({{"destination", "/target"},
                                {"type", "tmpfs"},
                                {"source", "tmpfs"},
                                {"options", {"size=1m"}}});
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    std::string a = root + "/target", b = root + "/alt";
    while (!stop.load())
      syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE);
  });
  int started = 0;
  for (int i = 0; i < 40; ++i) {
    auto r = run({"probe", "write", "/target/from-container", "y"});
    if (r.status == 0) ++started;
    if (host_mounted_on_path(escape)) break;
  }
  stop = true;
  swapper.join();
  EXPECT_FALSE(host_mounted_on_path(escape)) << "a tmpfs landed on the host directory";
  EXPECT_FALSE(fs::exists(escape + "/from-container")) << "the container wrote on the host";
  EXPECT_TRUE(fs::exists(escape + "/host-marker"));
  RecordProperty("started", started);
}

}  // namespace
}  // namespace forker::test
