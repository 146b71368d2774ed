// linux.namespaces: each type made new (seen from inside), joined by path, user namespaces with
// id mappings, time namespaces with offsets.
#include <sys/stat.h>

#include <iterator>

#include "integration/config_fixture.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ConfigNamespaces : public ConfigBase {
 protected:
  // The container's readlink of /proc/self/ns/TYPE.
  std::string ns_inside(const std::string& type) {
    auto r = run({"probe", "readlink", "/proc/self/ns/" + type});
    EXPECT_EQ(r.status, 0) << r.err;
    if (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
    return r.out;
  }
};

TEST_F(ConfigNamespaces, PidNamespaceMakesProbePidOne) {
  auto r = run({"probe", "pid"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "1\n");
  EXPECT_NE(ns_inside("pid"), host_readlink("/proc/self/ns/pid"));
}

TEST_F(ConfigNamespaces, WithoutPidNamespaceProbeIsNotPidOne) {
  remove_namespace("pid");
  auto r = run({"probe", "pid"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out, "1\n");
  EXPECT_EQ(ns_inside("pid"), host_readlink("/proc/self/ns/pid"));
}

TEST_F(ConfigNamespaces, UtsNamespace) {
  config()["hostname"] = "uts-test";
  EXPECT_NE(ns_inside("uts"), host_readlink("/proc/self/ns/uts"));
  auto r = run({"probe", "hostname"});
  EXPECT_EQ(r.out, "uts-test\n") << r.err;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  EXPECT_NE(std::string(host), "uts-test");
}

TEST_F(ConfigNamespaces, IpcNamespaceNewOrShared) {
  std::string host = host_readlink("/proc/self/ns/ipc");
  ASSERT_THAT(host, HasSubstr("ipc:["));
  EXPECT_NE(ns_inside("ipc"), host);
  remove_namespace("ipc");
  EXPECT_EQ(ns_inside("ipc"), host);
}

TEST_F(ConfigNamespaces, MountNamespace) {
  EXPECT_NE(ns_inside("mnt"), host_readlink("/proc/self/ns/mnt"));
}

TEST_F(ConfigNamespaces, NetworkNamespaceHasOnlyLoopback) {
  auto r = run({"probe", "cat", "/proc/net/dev"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<std::string> ifaces;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos || line.find('|') != std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    ifaces.push_back(name);
  }
  EXPECT_EQ(ifaces, std::vector<std::string>{"lo"});
  EXPECT_NE(ns_inside("net"), host_readlink("/proc/self/ns/net"));
}

TEST_F(ConfigNamespaces, CgroupNamespaceShowsRootPaths) {
  auto r = run({"probe", "cat", "/proc/self/cgroup"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream in(r.out);
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines)
    EXPECT_TRUE(line.size() >= 2 && line.substr(line.size() - 2) == ":/") << line;
  EXPECT_GT(lines, 0);
  EXPECT_NE(ns_inside("cgroup"), host_readlink("/proc/self/ns/cgroup"));
}

TEST_F(ConfigNamespaces, WithoutCgroupNamespaceShowsTheContainersCgroup) {
  remove_namespace("cgroup");
  // Without a cgroup namespace a cgroup v1 mount cannot be made: bind the host's (the default
  // /sys/fs/cgroup mount does that).
  auto r = run({"probe", "cat", "/proc/self/cgroup"});
  ASSERT_EQ(r.status, 0) << r.err;
  bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
  EXPECT_THAT(r.out, HasSubstr((v2 ? "0::/forker/" : "memory:/forker/") + bundle().id() + "\n"));
}

TEST_F(ConfigNamespaces, UserNamespaceWithMappings) {
  auto& b = bundle();
  // The init runs as the mapped host ids: it must be able to reach the rootfs, and the image
  // belongs to them (as a real one would), except /etc/passwd, left to the host's root.
  chmod(b.dir().c_str(), 0755);
  ASSERT_EQ(lchown(b.rootfs().c_str(), 100000, 200000), 0);
  for (const auto& e : std::filesystem::recursive_directory_iterator(b.rootfs())) {
    if (e.path() == b.rootfs() + "/etc/passwd") continue;
    ASSERT_EQ(lchown(e.path().c_str(), 100000, 200000), 0) << e.path();
  }
  add_namespace("user");
  config()["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  config()["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 200000}, {"size", 65536}}};
  auto r = run({"probe", "cat", "/proc/self/uid_map"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream in(r.out);
  std::vector<std::string> f{std::istream_iterator<std::string>(in), {}};
  EXPECT_EQ(f, (std::vector<std::string>{"0", "100000", "65536"}));
  r = run({"probe", "cat", "/proc/self/gid_map"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream gin(r.out);
  std::vector<std::string> g{std::istream_iterator<std::string>(gin), {}};
  EXPECT_EQ(g, (std::vector<std::string>{"0", "200000", "65536"}));
  r = run({"probe", "id"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "uid=0 gid=0 euid=0 egid=0 groups=\n");
  EXPECT_NE(ns_inside("user"), host_readlink("/proc/self/ns/user"));
  // Files of the mapped ids show as root; those of the host's root are unmapped: overflow ids.
  r = run({"probe", "stat", "/probe"});
  EXPECT_EQ(r.out, "file 755 0 0 0:0\n") << r.err;
  r = run({"probe", "stat", "/etc/passwd"});
  EXPECT_EQ(r.out, "file 644 65534 65534 0:0\n") << r.err;
}

TEST_F(ConfigNamespaces, TimeNamespaceBoottimeOffset) {
  add_namespace("time");
  config()["linux"]["timeOffsets"] = {{"boottime", {{"secs", 86400}, {"nanosecs", 0}}},
                                      {"monotonic", {{"secs", 7200}, {"nanosecs", 500}}}};
  auto r = run({"probe", "cat", "/proc/self/timens_offsets"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream in(r.out);
  std::vector<std::string> f{std::istream_iterator<std::string>(in), {}};
  EXPECT_EQ(f, (std::vector<std::string>{"monotonic", "7200", "500", "boottime", "86400", "0"}));
  double host_before = std::stod(read_text("/proc/uptime"));
  r = run({"probe", "cat", "/proc/uptime"});
  ASSERT_EQ(r.status, 0) << r.err;
  double inside = std::stod(r.out);
  EXPECT_GE(inside, 86400.0);
  EXPECT_GE(inside, host_before + 86400.0);  // read before the container's: never larger
  EXPECT_NE(ns_inside("time"), host_readlink("/proc/self/ns/time"));
}

TEST_F(ConfigNamespaces, JoinNetworkNamespaceByPath) {
  auto& b = bundle();
  int pid = run_detached("-a", {"probe", "sleep", "60"});
  ASSERT_GT(pid, 0);
  std::string first = host_readlink("/proc/" + std::to_string(pid) + "/ns/net");
  ASSERT_THAT(first, HasSubstr("net:["));
  EXPECT_NE(first, host_readlink("/proc/self/ns/net"));
  add_namespace("network", "/proc/" + std::to_string(pid) + "/ns/net");
  b.args({"probe", "readlink", "/proc/self/ns/net"});
  b.save();
  auto r = b.oci({"run", "--bundle", b.dir(), b.id("-b")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, first + "\n");
  EXPECT_EQ(b.oci({"delete", "-f", b.id("-a")}).status, 0);
}

TEST_F(ConfigNamespaces, JoinIpcAndUtsNamespacesByPath) {
  auto& b = bundle();
  config()["hostname"] = "first";
  int pid = run_detached("-a", {"probe", "sleep", "60"});
  ASSERT_GT(pid, 0);
  std::string p = "/proc/" + std::to_string(pid) + "/ns/";
  add_namespace("ipc", p + "ipc");
  add_namespace("uts", p + "uts");
  config().erase("hostname");
  b.args({"probe", "hostname"});
  b.save();
  auto r = b.oci({"run", "--bundle", b.dir(), b.id("-b")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "first\n");
  b.args({"probe", "readlink", "/proc/self/ns/ipc"});
  b.save();
  r = b.oci({"run", "--bundle", b.dir(), b.id("-c")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, host_readlink(p + "ipc") + "\n");
  EXPECT_EQ(b.oci({"delete", "-f", b.id("-a")}).status, 0);
}

TEST_F(ConfigNamespaces, JoinMissingNamespacePathFails) {
  add_namespace("network", "/proc/0/ns/net-does-not-exist");
  auto r = run({"probe", "pid"});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("/proc/0/ns/net-does-not-exist"));
}

}  // namespace
}  // namespace forker::test

namespace forker::test {
namespace {

// runtime-spec: a namespace type left out is the runtime's. Without a mount namespace the
// container's mounts are made in the host's table (under the rootfs) and delete removes them.
TEST_F(ConfigNamespaces, WithoutMountNamespaceMountsAreTakenDownOnDelete) {
  auto& b = bundle();
  remove_namespace("mount");
  int pid = run_detached("", {"probe", "sleep", "60"});
  ASSERT_GT(pid, 0);
  EXPECT_EQ(host_readlink("/proc/" + std::to_string(pid) + "/ns/mnt"),
            host_readlink("/proc/self/ns/mnt"));
  std::string mi = read_text("/proc/self/mountinfo");
  EXPECT_THAT(mi, HasSubstr(b.rootfs() + "/proc ")) << "proc is mounted in the host's table";
  EXPECT_EQ(read_text("/proc/" + std::to_string(pid) + "/root/probe").empty(), false);
  auto r = b.oci({"delete", "-f", b.id()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(read_text("/proc/self/mountinfo"), Not(HasSubstr(b.rootfs())));
}

TEST_F(ConfigNamespaces, WithoutMountNamespaceReadonlyRootIsRefused) {
  remove_namespace("mount");
  config()["root"]["readonly"] = true;
  auto r = run({"probe", "pid"});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("root.readonly: needs a mount namespace"));
}

}  // namespace
}  // namespace forker::test
