// linux.resources applied to the container's cgroup (read from inside through the cgroup mount)
// and linux.cgroupsPath. The host may be cgroup v1, hybrid or v2: files are chosen per layout.
#include <sys/stat.h>

#include "integration/config_fixture.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;

bool is_v2_host() { return std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers"); }

class ConfigCgroups : public ConfigBase {
 protected:
  std::string cat(const std::string& path) {
    auto r = run({"probe", "cat", path});
    EXPECT_EQ(r.status, 0) << path << ": " << r.err;
    return r.out;
  }
};

TEST_F(ConfigCgroups, ResourceLimitsAreVisibleInside) {
  config()["linux"]["resources"]["memory"] = {{"limit", 64 * 1024 * 1024}};
  config()["linux"]["resources"]["pids"] = {{"limit", 32}};
  config()["linux"]["resources"]["cpu"] = {{"shares", 512}, {"quota", 50000}, {"period", 100000}};
  if (is_v2_host()) {
    EXPECT_EQ(cat("/sys/fs/cgroup/memory.max"), "67108864\n");
    EXPECT_EQ(cat("/sys/fs/cgroup/pids.max"), "32\n");
    EXPECT_EQ(cat("/sys/fs/cgroup/cpu.max"), "50000 100000\n");
    return;
  }
  EXPECT_EQ(cat("/sys/fs/cgroup/memory/memory.limit_in_bytes"), "67108864\n");
  EXPECT_EQ(cat("/sys/fs/cgroup/pids/pids.max"), "32\n");
  EXPECT_EQ(cat("/sys/fs/cgroup/cpu/cpu.shares"), "512\n");
  EXPECT_EQ(cat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), "50000\n");
  EXPECT_EQ(cat("/sys/fs/cgroup/cpu/cpu.cfs_period_us"), "100000\n");
  // The probe itself is the one task of its cgroup.
  EXPECT_EQ(cat("/sys/fs/cgroup/memory/cgroup.procs"), "1\n");
  EXPECT_EQ(cat("/sys/fs/cgroup/pids/cgroup.procs"), "1\n");
}

TEST_F(ConfigCgroups, MoreMemoryAndCpuSettings) {
  if (is_v2_host()) GTEST_SKIP() << "cgroup v1 files";
  config()["linux"]["resources"]["memory"] = {
      {"limit", 128 * 1024 * 1024}, {"reservation", 32 * 1024 * 1024}, {"swappiness", 10}};
  config()["linux"]["resources"]["cpu"] = {{"cpus", "0"}, {"mems", "0"}};
  EXPECT_EQ(cat("/sys/fs/cgroup/memory/memory.limit_in_bytes"), "134217728\n");
  EXPECT_EQ(cat("/sys/fs/cgroup/memory/memory.soft_limit_in_bytes"), "33554432\n");
  EXPECT_EQ(cat("/sys/fs/cgroup/memory/memory.swappiness"), "10\n");
  EXPECT_EQ(cat("/sys/fs/cgroup/cpuset/cpuset.cpus"), "0\n");
  EXPECT_EQ(cat("/sys/fs/cgroup/cpuset/cpuset.mems"), "0\n");
}

TEST_F(ConfigCgroups, PidsLimitIsEnforced) {
  if (!have_busybox()) GTEST_SKIP() << "needs busybox";
  config()["linux"]["resources"]["pids"] = {{"limit", 2}};
  // sh is one task; a pipeline of three more cannot all fork.
  auto r = run({"/bin/sh", "-c", "/probe pid | /probe pid | /probe pid; echo done"});
  EXPECT_THAT(r.err, HasSubstr("fork")) << r.out;
}

TEST_F(ConfigCgroups, CgroupsPathPlacesTheContainer) {
  auto& b = bundle();
  std::string parent = "/" + b.id("-parent");
  std::string path = parent + "/c1";
  // delete removes the leaf; the parent this test named is its own to remove.
  on_teardown([parent] {
    std::error_code ec;
    for (const auto& h : std::filesystem::directory_iterator("/sys/fs/cgroup", ec))
      rmdir((h.path().string() + parent).c_str());
  });
  config()["linux"]["cgroupsPath"] = path;
  int pid = run_detached("", {"probe", "sleep", "60"});
  ASSERT_GT(pid, 0);
  std::string host_dir =
      is_v2_host() ? "/sys/fs/cgroup" + path : "/sys/fs/cgroup/memory" + path;
  EXPECT_TRUE(std::filesystem::is_directory(host_dir));
  EXPECT_EQ(read_text(host_dir + "/cgroup.procs"), std::to_string(pid) + "\n");
  EXPECT_EQ(state().value("status", ""), "running");
  std::string own = read_text("/proc/" + std::to_string(pid) + "/cgroup");
  EXPECT_THAT(own, HasSubstr(is_v2_host() ? "0::" + path + "\n" : ":memory:" + path + "\n"));
  auto r = b.oci({"delete", "-f", b.id()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(host_dir));
  // The parent did not exist before create made it: delete removes it too, now it is empty.
  EXPECT_FALSE(std::filesystem::exists(is_v2_host() ? "/sys/fs/cgroup" + parent
                                                    : "/sys/fs/cgroup/memory" + parent));
}

TEST_F(ConfigCgroups, DeleteKeepsAParentThatExistedBefore) {
  auto& b = bundle();
  std::string parent = "/" + b.id("-pre");
  std::vector<std::string> made;
  std::vector<std::filesystem::path> hierarchies;
  std::error_code ec;
  if (is_v2_host()) {
    hierarchies.push_back("/sys/fs/cgroup");
  } else {
    for (const auto& h : std::filesystem::directory_iterator("/sys/fs/cgroup", ec))
      if (std::filesystem::exists(h.path() / "cgroup.procs")) hierarchies.push_back(h.path());
  }
  for (const auto& h : hierarchies) {
    std::string d = h.string() + parent;
    if (mkdir(d.c_str(), 0755) == 0) made.push_back(d);
  }
  on_teardown([made] {
    for (const auto& d : made) rmdir(d.c_str());
  });
  ASSERT_FALSE(made.empty());
  config()["linux"]["cgroupsPath"] = parent + "/c1";
  auto r = run({"probe", "pid"});
  EXPECT_EQ(r.status, 0) << r.err;
  for (const auto& d : made) {
    EXPECT_TRUE(std::filesystem::is_directory(d)) << d;
    EXPECT_FALSE(std::filesystem::exists(d + "/c1")) << d;
  }
}

TEST_F(ConfigCgroups, RelativeCgroupsPathSitsUnderTheRuntimesOwnCgroup) {
  auto& b = bundle();
  // runc's rule: a relative path is joined to the runtime's own cgroup in each hierarchy (here
  // the memory one may be /process_api/..., the others /). forker-oci inherits ours.
  std::string name = b.id("-rel");
  std::string key = is_v2_host() ? "0::" : ":memory:";
  std::string self = read_text("/proc/self/cgroup");
  auto at = self.find(key);
  ASSERT_NE(at, std::string::npos) << self;
  std::string own = self.substr(at + key.size(), self.find('\n', at) - at - key.size());
  std::string expected = (own == "/" ? "" : own) + "/" + name;
  std::string memory_dir =
      is_v2_host() ? "/sys/fs/cgroup" + expected : "/sys/fs/cgroup/memory" + expected;
  on_teardown([name, memory_dir] {
    rmdir(memory_dir.c_str());
    std::error_code ec;
    for (const auto& h : std::filesystem::directory_iterator("/sys/fs/cgroup", ec))
      rmdir((h.path().string() + "/" + name).c_str());
  });
  config()["linux"]["cgroupsPath"] = name;
  int pid = run_detached("", {"probe", "sleep", "60"});
  ASSERT_GT(pid, 0);
  std::string cgroups = read_text("/proc/" + std::to_string(pid) + "/cgroup");
  EXPECT_THAT(cgroups, HasSubstr(key + expected + "\n"));
  EXPECT_TRUE(std::filesystem::is_directory(memory_dir)) << memory_dir;
  // Later commands find it through the state: pause and delete reach the same directories.
  EXPECT_EQ(b.oci({"pause", b.id()}).status, 0);
  EXPECT_THAT(b.oci({"state", b.id()}).out, HasSubstr("\"paused\""));
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
  EXPECT_FALSE(std::filesystem::exists(memory_dir)) << memory_dir;
}

}  // namespace
}  // namespace forker::test
