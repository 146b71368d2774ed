// Cgroup detection, path resolution, limit writers and the Cgroup owner, on temp dirs of fixture
// files: nothing here touches /sys/fs/cgroup.
#include "linux/cgroup.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/file.hpp"
#include "linux/cgroup_limits.hpp"
#include "support/temp_dir.hpp"

namespace forker::linux {
namespace {

namespace fs = std::filesystem;
using cgroup_internal::V1Dirs;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// ---- fixtures ----

using ::forker::test::TempDir;

void put(const std::string& path, const std::string& content = "") {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << content;
}

std::string get(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using Files = std::map<std::string, std::string>;

// Stands in for the kernel: a new directory under a mount gets that mount's control files, and
// removing one takes its files with it.
struct FakeCgroupFs {
  std::map<std::string, Files> templates;  // mount dir -> files a new cgroup gets
  std::vector<std::string> made, removed;

  CgroupFsOps ops() {
    return CgroupFsOps{
        [this](const std::string& dir) -> Status {
          if (::mkdir(dir.c_str(), 0755) < 0) return sys_error("mkdir", dir);
          made.push_back(dir);
          for (const auto& [mount, files] : templates) {
            if (dir.rfind(mount + "/", 0) != 0) continue;
            for (const auto& [name, content] : files) put(dir + "/" + name, content);
          }
          return ok();
        },
        [this](const std::string& dir) -> int {
          std::error_code ec;
          if (!fs::is_directory(dir, ec)) return ENOENT;
          for (const auto& e : fs::directory_iterator(dir))
            if (e.is_directory()) return EBUSY;  // a cgroup with children is busy
          for (const auto& e : fs::directory_iterator(dir)) fs::remove(e.path());
          if (::rmdir(dir.c_str()) < 0) return errno;
          removed.push_back(dir);
          return 0;
        },
    };
  }
};

const Files kMemoryFiles = {{"cgroup.procs", ""},
                            {"memory.limit_in_bytes", "0\n"},
                            {"memory.soft_limit_in_bytes", ""},
                            {"memory.memsw.limit_in_bytes", ""},
                            {"memory.swappiness", ""},
                            {"memory.oom_control", ""},
                            {"memory.usage_in_bytes", "0\n"}};
const Files kCpusetFiles = {{"cgroup.procs", ""}, {"cpuset.cpus", ""}, {"cpuset.mems", ""}};
const Files kPidsFiles = {{"cgroup.procs", ""}, {"pids.max", ""}};
const Files kFreezerFiles = {{"cgroup.procs", ""}, {"freezer.state", "THAWED\n"}};
const Files kPlainFiles = {{"cgroup.procs", ""}};
const Files kV2Files = {{"cgroup.procs", ""},
                        {"cgroup.controllers", "cpu memory pids\n"},
                        {"cgroup.subtree_control", ""},
                        {"cgroup.freeze", "0\n"},
                        {"cgroup.kill", ""},
                        {"memory.max", "max\n"},
                        {"memory.swap.max", "max\n"},
                        {"pids.max", "max\n"},
                        {"cpu.max", "max 100000\n"},
                        {"cpu.weight", "100\n"}};

void populate(const std::string& dir, const Files& files) {
  fs::create_directories(dir);
  for (const auto& [name, content] : files) put(dir + "/" + name, content);
}

// A hybrid host like this machine, under ROOT: v1 memory, cpuset, pids, freezer, name=systemd,
// and a cgroup2 tree for tracking only.
CgroupHost hybrid_host(const std::string& root, FakeCgroupFs& fake) {
  CgroupHost host;
  host.layout = CgroupLayout::kHybrid;
  auto add = [&](const std::string& name, const std::string& controller, const Files& files) {
    std::string dir = root + "/" + name;
    host.v1.push_back(CgroupMount{dir, "/", {controller}});
    fake.templates[dir] = files;
    populate(dir, files);
  };
  add("memory", "memory", kMemoryFiles);
  add("cpuset", "cpuset", kCpusetFiles);
  add("pids", "pids", kPidsFiles);
  add("freezer", "freezer", kFreezerFiles);
  add("systemd", "name=systemd", kPlainFiles);
  put(root + "/cpuset/cpuset.cpus", "0-3\n");
  put(root + "/cpuset/cpuset.mems", "0\n");
  host.unified = root + "/unified";
  fake.templates[host.unified] = kPlainFiles;
  populate(host.unified, {{"cgroup.procs", ""}, {"cgroup.controllers", "hugetlb\n"}});
  host.fs = fake.ops();
  return host;
}

CgroupHost v2_host(const std::string& root, FakeCgroupFs& fake) {
  CgroupHost host;
  host.layout = CgroupLayout::kV2;
  host.unified = root + "/v2";
  fake.templates[host.unified] = kV2Files;
  populate(host.unified, kV2Files);
  host.fs = fake.ops();
  return host;
}

// ---- detection ----

// This development machine, verbatim: cpu and cpuacct on separate mounts.
const char kThisMachine[] =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

// Ubuntu 20.04 style: joined cpu,cpuacct and net_cls,net_prio, optional fields, xattr.
const char kJoined[] =
    "25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "33 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 "
    "cgroup2 rw,nsdelegate\n"
    "35 33 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup "
    "cgroup rw,xattr,name=systemd\n"
    "38 33 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup "
    "cgroup rw,cpu,cpuacct\n"
    "39 33 0:34 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - "
    "cgroup cgroup rw,net_cls,net_prio\n"
    "40 33 0:35 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup "
    "rw,memory\n";

TEST(CgroupDetect, ThisMachineIsHybrid) {
  auto host = parse_cgroup_host(kThisMachine);
  ASSERT_TRUE(host) << host.error().message();
  EXPECT_EQ(host->layout, CgroupLayout::kHybrid);
  EXPECT_EQ(host->unified, "/sys/fs/cgroup/unified");
  ASSERT_EQ(host->v1.size(), 9u);
  ASSERT_NE(host->find_v1("cpu"), nullptr);
  ASSERT_NE(host->find_v1("cpuacct"), nullptr);
  EXPECT_EQ(host->find_v1("cpu")->dir, "/sys/fs/cgroup/cpu");
  EXPECT_EQ(host->find_v1("cpuacct")->dir, "/sys/fs/cgroup/cpuacct");
  EXPECT_EQ(host->find_v1("name=systemd")->dir, "/sys/fs/cgroup/systemd");
  EXPECT_EQ(host->find_v1("memory")->root, "/");
  EXPECT_EQ(host->find_v1("net_cls"), nullptr);
  EXPECT_EQ(host->find_v1("hugetlb"), nullptr);
}

TEST(CgroupDetect, JoinedControllersShareOneMount) {
  auto host = parse_cgroup_host(kJoined);
  ASSERT_TRUE(host) << host.error().message();
  EXPECT_EQ(host->layout, CgroupLayout::kHybrid);
  ASSERT_NE(host->find_v1("cpu"), nullptr);
  EXPECT_EQ(host->find_v1("cpu"), host->find_v1("cpuacct"));
  EXPECT_EQ(host->find_v1("cpu")->dir, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(host->find_v1("net_prio")->dir, "/sys/fs/cgroup/net_cls,net_prio");
  // xattr and rw are mount options, not controllers.
  EXPECT_THAT(host->find_v1("name=systemd")->controllers, ::testing::ElementsAre("name=systemd"));
}

TEST(CgroupDetect, PureV2IgnoresNamedHierarchy) {
  auto host = parse_cgroup_host(
      "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
      "rw,nsdelegate,memory_recursiveprot\n"
      "50 30 0:40 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n");
  ASSERT_TRUE(host) << host.error().message();
  EXPECT_EQ(host->layout, CgroupLayout::kV2);
  EXPECT_EQ(host->unified, "/sys/fs/cgroup");
  EXPECT_TRUE(host->v1.empty());
}

TEST(CgroupDetect, V1WithoutCgroup2) {
  auto host = parse_cgroup_host(
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n");
  ASSERT_TRUE(host) << host.error().message();
  EXPECT_EQ(host->layout, CgroupLayout::kV1);
  EXPECT_TRUE(host->unified.empty());
  EXPECT_EQ(cgroup_layout_name(host->layout), "v1");
}

TEST(CgroupDetect, NoCgroupsIsAnError) {
  auto host = parse_cgroup_host("22 1 0:21 / /proc rw - proc proc rw\n");
  ASSERT_FALSE(host);
  EXPECT_THAT(host.error().message(), HasSubstr("no cgroup controller mounted"));
}

TEST(CgroupDetect, PrefersTheMountOfTheHierarchyRoot) {
  // The same hierarchy (0:32) bind-mounted at a sub-cgroup first, then at its root.
  auto host = parse_cgroup_host(
      "35 31 0:32 /docker/abc /mnt/mem rw - cgroup cgroup rw,memory\n"
      "36 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
  ASSERT_TRUE(host);
  ASSERT_EQ(host->v1.size(), 1u);
  EXPECT_EQ(host->v1[0].dir, "/sys/fs/cgroup/memory");
}

TEST(CgroupDetect, UnescapesMountPoints) {
  auto host = parse_cgroup_host("36 31 0:32 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->unified, "/mnt/my cg");
}

TEST(CgroupDetect, ReadsThisProcessMountinfo) {
  auto host = detect_cgroup_host();  // reads /proc/self/mountinfo only
  ASSERT_TRUE(host) << host.error().message();
}

TEST(CgroupOwn, RelativePathsGoUnderTheRuntimesCgroupPerHierarchy) {
  auto host = parse_cgroup_host(kThisMachine);
  ASSERT_TRUE(host);
  // /proc lists joined controllers in its own order; a subtree mount strips its root.
  host->v1.push_back({"/mnt/cpu2", "/", {"cpuacct", "cpu"}, ""});
  ASSERT_TRUE(place_under_own_cgroups(*host,
                                      "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/x\n"
                                      "2:cpu,cpuacct:/a\n7:blkio:/\n6:freezer:/\n5:devices:/\n"
                                      "3:cpuset:/\n1:cpu:/\n10:cpuacct:/\n0::/u\n"));
  EXPECT_EQ(host->find_v1("memory")->base, "/process_api/x");
  EXPECT_EQ(host->find_v1("pids")->base, "");
  EXPECT_EQ(host->v1.back().base, "/a");
  EXPECT_EQ(host->unified_base, "/u");
  auto bases = cgroup_bases(*host);
  EXPECT_EQ(bases.size(), 3u);
  auto fresh = *parse_cgroup_host(kThisMachine);
  apply_cgroup_bases(fresh, bases);
  EXPECT_EQ(fresh.find_v1("memory")->base, "/process_api/x");
  EXPECT_EQ(fresh.unified_base, "/u");
  EXPECT_TRUE(is_relative_cgroups_path("a/b"));
  EXPECT_FALSE(is_relative_cgroups_path("/a/b"));
  EXPECT_FALSE(is_relative_cgroups_path(""));
}

TEST(CgroupOwn, AHierarchyMissingFromProcIsAnError) {
  auto host = parse_cgroup_host(kThisMachine);
  ASSERT_TRUE(host);
  auto st = place_under_own_cgroups(*host, "0::/\n");
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("not in /proc/self/cgroup"));
}

// ---- path resolution ----

TEST(CgroupPath, Resolves) {
  EXPECT_EQ(*resolve_cgroup_path("", "c1"), "/forker/c1");
  EXPECT_EQ(*resolve_cgroup_path("/foo/bar", "c1"), "/foo/bar");
  EXPECT_EQ(*resolve_cgroup_path("foo/bar", "c1"), "/foo/bar");
  EXPECT_EQ(*resolve_cgroup_path("//foo/./bar/", "c1"), "/foo/bar");
  EXPECT_EQ(*resolve_cgroup_path("../../../etc/x", "c1"), "/etc/x");
  EXPECT_EQ(*resolve_cgroup_path("/a/../b", "c1"), "/b");
}

TEST(CgroupPath, RefusesSystemdFormRootAndBadIds) {
  auto systemd = resolve_cgroup_path("system.slice:forker:c1", "c1");
  ASSERT_FALSE(systemd);
  EXPECT_THAT(systemd.error().message(),
              HasSubstr("cgroupsPath slice:prefix:name needs --systemd-cgroup"));
  EXPECT_FALSE(resolve_cgroup_path("/", "c1"));
  EXPECT_FALSE(resolve_cgroup_path("/..", "c1"));
  EXPECT_FALSE(resolve_cgroup_path("", ""));
  EXPECT_FALSE(resolve_cgroup_path("", "a/b"));
}

// ---- v1 limits ----

class CgroupV1 : public ::testing::Test {
 protected:
  void SetUp() override {
    dirs_ = {{"memory", tmp_.path() + "/memory"}, {"cpu", tmp_.path() + "/cpu"},
             {"cpuacct", tmp_.path() + "/cpu"},   {"pids", tmp_.path() + "/pids"},
             {"blkio", tmp_.path() + "/blkio"},   {"devices", tmp_.path() + "/devices"},
             {"cpuset", tmp_.path() + "/cpuset"}};
    populate(dirs_["memory"], kMemoryFiles);
    populate(dirs_["cpu"], {{"cpu.shares", ""},
                            {"cpu.cfs_quota_us", ""},
                            {"cpu.cfs_period_us", ""},
                            {"cpu.cfs_burst_us", ""},
                            {"cpu.rt_period_us", ""},
                            {"cpu.rt_runtime_us", ""},
                            {"cpu.idle", ""}});
    populate(dirs_["pids"], kPidsFiles);
    populate(dirs_["blkio"], {{"blkio.weight", ""},
                              {"blkio.leaf_weight", ""},
                              {"blkio.weight_device", ""},
                              {"blkio.throttle.read_bps_device", ""},
                              {"blkio.throttle.write_iops_device", ""}});
    populate(dirs_["devices"], {{"devices.allow", ""}, {"devices.deny", ""}});
    populate(dirs_["cpuset"], kCpusetFiles);
  }
  std::string file(const std::string& controller, const std::string& name) {
    return get(dirs_[controller] + "/" + name);
  }

  TempDir tmp_;
  V1Dirs dirs_;
};

TEST_F(CgroupV1, Memory) {
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = 1 << 30;
  r.memory->reservation = 1 << 29;
  r.memory->swap = int64_t{2} << 30;
  r.memory->swappiness = 10;
  r.memory->disable_oom_killer = true;
  ASSERT_TRUE(cgroup_internal::apply_v1(dirs_, r));
  EXPECT_EQ(file("memory", "memory.limit_in_bytes"), "1073741824");
  EXPECT_EQ(file("memory", "memory.soft_limit_in_bytes"), "536870912");
  EXPECT_EQ(file("memory", "memory.memsw.limit_in_bytes"), "2147483648");
  EXPECT_EQ(file("memory", "memory.swappiness"), "10");
  EXPECT_EQ(file("memory", "memory.oom_control"), "1");
}

TEST_F(CgroupV1, UnlimitedMemoryLiftsSwapToo) {
  put(dirs_["memory"] + "/memory.memsw.limit_in_bytes", "");
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = -1;
  ASSERT_TRUE(cgroup_internal::apply_v1(dirs_, r));
  EXPECT_EQ(file("memory", "memory.limit_in_bytes"), "-1");
  EXPECT_EQ(file("memory", "memory.memsw.limit_in_bytes"), "-1");
}

// memsw must stay >= limit: raising writes memsw first, lowering writes the limit first. An
// unwritable memsw file (a directory) shows which write came first.
TEST_F(CgroupV1, MemswOrderFollowsDirection) {
  std::string memsw = dirs_["memory"] + "/memory.memsw.limit_in_bytes";
  fs::remove(memsw);
  fs::create_directory(memsw);
  oci::Resources r;
  r.memory = oci::MemoryResources{};

  put(dirs_["memory"] + "/memory.limit_in_bytes", "1000\n");  // raising: memsw first, fails
  r.memory->limit = 2000;
  r.memory->swap = 4000;
  EXPECT_FALSE(cgroup_internal::apply_v1(dirs_, r));
  EXPECT_EQ(file("memory", "memory.limit_in_bytes"), "1000\n");

  put(dirs_["memory"] + "/memory.limit_in_bytes", "99999\n");  // lowering: limit first
  auto st = cgroup_internal::apply_v1(dirs_, r);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("linux.resources.memory.swap"));
  EXPECT_EQ(file("memory", "memory.limit_in_bytes").substr(0, 4), "2000");
}

TEST_F(CgroupV1, MemoryErrors) {
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->kernel = 1 << 20;
  auto st = cgroup_internal::apply_v1(dirs_, r);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("linux.resources.memory.kernel"));

  r.memory = oci::MemoryResources{};
  r.memory->swappiness = 101;
  EXPECT_FALSE(cgroup_internal::apply_v1(dirs_, r));

  fs::remove(dirs_["memory"] + "/memory.memsw.limit_in_bytes");
  r.memory = oci::MemoryResources{};
  r.memory->limit = 1000;
  r.memory->swap = 2000;
  st = cgroup_internal::apply_v1(dirs_, r);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("swapaccount=1"));
}

TEST_F(CgroupV1, Cpu) {
  oci::Resources r;
  r.cpu = oci::CpuResources{};
  r.cpu->shares = 512;
  r.cpu->quota = 50000;
  r.cpu->period = 100000;
  r.cpu->burst = 1000;
  r.cpu->realtime_period = 1000000;
  r.cpu->realtime_runtime = 950000;
  r.cpu->idle = 1;
  ASSERT_TRUE(cgroup_internal::apply_v1(dirs_, r));
  EXPECT_EQ(file("cpu", "cpu.shares"), "512");
  EXPECT_EQ(file("cpu", "cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(file("cpu", "cpu.cfs_period_us"), "100000");
  EXPECT_EQ(file("cpu", "cpu.cfs_burst_us"), "1000");
  EXPECT_EQ(file("cpu", "cpu.rt_period_us"), "1000000");
  EXPECT_EQ(file("cpu", "cpu.rt_runtime_us"), "950000");
  EXPECT_EQ(file("cpu", "cpu.idle"), "1");
}

TEST_F(CgroupV1, CpuIdleWithoutKernelSupportNamesField) {
  fs::remove(dirs_["cpu"] + "/cpu.idle");
  oci::Resources r;
  r.cpu = oci::CpuResources{};
  r.cpu->idle = 1;
  auto st = cgroup_internal::apply_v1(dirs_, r);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("linux.resources.cpu.idle"));
  EXPECT_EQ(st.error().err, ENOENT);
}

TEST_F(CgroupV1, CpusetAndPids) {
  oci::Resources r;
  r.cpu = oci::CpuResources{};
  r.cpu->cpus = "0-1";
  r.cpu->mems = "0";
  r.pids_limit = 100;
  ASSERT_TRUE(cgroup_internal::apply_v1(dirs_, r));
  EXPECT_EQ(file("cpuset", "cpuset.cpus"), "0-1");
  EXPECT_EQ(file("cpuset", "cpuset.mems"), "0");
  EXPECT_EQ(file("pids", "pids.max"), "100");
  for (int64_t unlimited : {-1, 0}) {
    r.pids_limit = unlimited;
    ASSERT_TRUE(cgroup_internal::apply_v1(dirs_, r));
    EXPECT_EQ(file("pids", "pids.max"), "max");
  }
}

TEST_F(CgroupV1, CpusetCopiedDownWhenEmpty) {
  std::string parent = tmp_.path() + "/cs", child = parent + "/forker", leaf = child + "/c1";
  populate(parent, {{"cpuset.cpus", "0-7\n"}, {"cpuset.mems", "0-1\n"}});
  populate(child, kCpusetFiles);
  populate(leaf, {{"cpuset.cpus", "2\n"}, {"cpuset.mems", ""}});
  ASSERT_TRUE(cgroup_internal::copy_cpuset_from_parent(child));
  ASSERT_TRUE(cgroup_internal::copy_cpuset_from_parent(leaf));
  EXPECT_EQ(get(child + "/cpuset.cpus"), "0-7");
  EXPECT_EQ(get(child + "/cpuset.mems"), "0-1");
  EXPECT_EQ(get(leaf + "/cpuset.cpus"), "2\n");  // set already: kept
  EXPECT_EQ(get(leaf + "/cpuset.mems"), "0-1");
}

TEST_F(CgroupV1, Blkio) {
  oci::Resources r;
  r.block_io = oci::BlockIoResources{};
  r.block_io->weight = 500;
  r.block_io->leaf_weight = 300;
  r.block_io->weight_device.push_back({8, 0, 700, std::nullopt});
  r.block_io->throttle_read_bps.push_back({8, 16, 1048576});
  r.block_io->throttle_write_iops.push_back({253, 1, 100});
  ASSERT_TRUE(cgroup_internal::apply_v1(dirs_, r));
  EXPECT_EQ(file("blkio", "blkio.weight"), "500");
  EXPECT_EQ(file("blkio", "blkio.leaf_weight"), "300");
  EXPECT_EQ(file("blkio", "blkio.weight_device"), "8:0 700");
  EXPECT_EQ(file("blkio", "blkio.throttle.read_bps_device"), "8:16 1048576");
  EXPECT_EQ(file("blkio", "blkio.throttle.write_iops_device"), "253:1 100");
}

TEST_F(CgroupV1, BlkioBfqWeight) {
  fs::remove(dirs_["blkio"] + "/blkio.weight");
  put(dirs_["blkio"] + "/blkio.bfq.weight");
  oci::Resources r;
  r.block_io = oci::BlockIoResources{};
  r.block_io->weight = 200;
  ASSERT_TRUE(cgroup_internal::apply_v1(dirs_, r));
  EXPECT_EQ(file("blkio", "blkio.bfq.weight"), "200");
}

TEST_F(CgroupV1, Devices) {
  oci::Resources r;
  r.devices.push_back({true, "c", 1, 3, "rwm"});
  r.devices.push_back({false, "c", 5, 1, "rwm"});
  ASSERT_TRUE(cgroup_internal::apply_v1(dirs_, r));
  EXPECT_EQ(file("devices", "devices.allow"), "c 1:3 rwm");
  // "a" first, then the deny rule over it (a fixture file is not truncated between writes).
  EXPECT_EQ(file("devices", "devices.deny"), "c 5:1 rwm");
}

TEST(CgroupV1Devices, RuleText) {
  using cgroup_internal::device_rule_text;
  EXPECT_EQ(device_rule_text({false, "a", std::nullopt, std::nullopt, "rwm"}), "a");
  EXPECT_EQ(device_rule_text({false, "", std::nullopt, std::nullopt, ""}), "a");
  EXPECT_EQ(device_rule_text({true, "c", 136, std::nullopt, "rwm"}), "c 136:* rwm");
  EXPECT_EQ(device_rule_text({true, "b", std::nullopt, std::nullopt, "r"}), "b *:* r");
  EXPECT_EQ(device_rule_text({true, "c", 1, 5, ""}), "c 1:5 rwm");
}

TEST_F(CgroupV1, HugetlbNetworkRdma) {
  std::string h = tmp_.path() + "/hugetlb", n = tmp_.path() + "/net", rd = tmp_.path() + "/rdma";
  populate(h, {{"hugetlb.2MB.limit_in_bytes", ""}});
  populate(n, {{"net_cls.classid", ""}, {"net_prio.ifpriomap", ""}});
  populate(rd, {{"rdma.max", ""}});
  dirs_["hugetlb"] = h;
  dirs_["net_cls"] = dirs_["net_prio"] = n;
  dirs_["rdma"] = rd;
  oci::Resources r;
  r.hugepage_limits.push_back({"2MB", 4194304});
  r.network = oci::NetworkResources{};
  r.network->class_id = 0x100001;
  r.network->priorities.push_back({"eth0", 5});
  r.rdma["mlx5_0"] = oci::RdmaLimit{3, 100};
  ASSERT_TRUE(cgroup_internal::apply_v1(dirs_, r));
  EXPECT_EQ(get(h + "/hugetlb.2MB.limit_in_bytes"), "4194304");
  EXPECT_EQ(get(n + "/net_cls.classid"), "1048577");
  EXPECT_EQ(get(n + "/net_prio.ifpriomap"), "eth0 5");
  EXPECT_EQ(get(rd + "/rdma.max"), "mlx5_0 hca_handle=3 hca_object=100");

  r = {};
  r.hugepage_limits.push_back({"1GB", 1});
  auto st = cgroup_internal::apply_v1(dirs_, r);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("page size 1GB"));
}

TEST_F(CgroupV1, UnmountedControllerNamesTheField) {
  oci::Resources r;
  r.network = oci::NetworkResources{};
  r.network->class_id = 1;
  auto st = cgroup_internal::apply_v1(dirs_, r);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(),
            "linux.resources.network.classID: net_cls controller not mounted");

  r = {};
  r.rdma["mlx5_0"] = oci::RdmaLimit{1, std::nullopt};
  st = cgroup_internal::apply_v1(dirs_, r);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("rdma controller not mounted"));

  r = {};
  r.hugepage_limits.push_back({"2MB", 1});
  EXPECT_FALSE(cgroup_internal::apply_v1(dirs_, r));
}

TEST_F(CgroupV1, UnifiedMapIsAnError) {
  oci::Resources r;
  r.unified["memory.high"] = "1000";
  auto st = cgroup_internal::apply_v1(dirs_, r);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("linux.resources.unified"));
}

// ---- v2 limits ----

TEST(CgroupConvert, SharesToWeight) {
  using cgroup_internal::cpu_shares_to_weight;
  EXPECT_EQ(cpu_shares_to_weight(0), 0u);
  EXPECT_EQ(cpu_shares_to_weight(2), 1u);
  EXPECT_EQ(cpu_shares_to_weight(1024), 39u);
  EXPECT_EQ(cpu_shares_to_weight(262144), 10000u);
  EXPECT_EQ(cpu_shares_to_weight(1), 1u);  // clamped like the kernel clamps shares
  EXPECT_EQ(cpu_shares_to_weight(1000000), 10000u);
}

TEST(CgroupConvert, BlkioWeightToIoWeight) {
  using cgroup_internal::blkio_weight_to_io_weight;
  EXPECT_EQ(blkio_weight_to_io_weight(10), 1u);
  EXPECT_EQ(blkio_weight_to_io_weight(500), 4950u);
  EXPECT_EQ(blkio_weight_to_io_weight(1000), 10000u);
}

TEST(CgroupConvert, SwapMax) {
  auto swap = [](std::optional<int64_t> limit, std::optional<int64_t> swap) {
    oci::MemoryResources m;
    m.limit = limit;
    m.swap = swap;
    return cgroup_internal::v2_swap_max(m);
  };
  EXPECT_EQ(*swap(1000, 3000), "2000");
  EXPECT_EQ(*swap(1000, 1000), "0");
  EXPECT_EQ(*swap(1000, -1), "max");
  EXPECT_EQ(*swap(-1, std::nullopt), "max");
  EXPECT_EQ(*swap(1000, std::nullopt), "");
  EXPECT_FALSE(swap(1000, 500));
  EXPECT_FALSE(swap(std::nullopt, 500));
}

class CgroupV2 : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path() + "/c1";
    // Empty files: a fixture file is not truncated by a write, so old text would show through.
    for (const auto& [name, content] : kV2Files)
      put(dir_ + "/" + name, name == "cgroup.controllers" ? content : "");
    populate(dir_, {{"memory.low", ""},
                    {"cpu.idle", ""},
                    {"cpu.max.burst", ""},
                    {"cpuset.cpus", ""},
                    {"cpuset.mems", ""},
                    {"io.weight", ""},
                    {"io.max", ""},
                    {"hugetlb.2MB.max", ""},
                    {"rdma.max", ""},
                    {"memory.high", ""}});
  }
  std::string file(const std::string& name) { return get(dir_ + "/" + name); }

  TempDir tmp_;
  std::string dir_;
};

TEST_F(CgroupV2, MemoryCpuPids) {
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = 1 << 30;
  r.memory->reservation = 1 << 29;
  r.memory->swap = int64_t{3} << 29;
  r.cpu = oci::CpuResources{};
  r.cpu->shares = 1024;
  r.cpu->quota = 50000;
  r.cpu->burst = 100;
  r.cpu->idle = 0;
  r.cpu->cpus = "0";
  r.cpu->mems = "0";
  r.pids_limit = 64;
  ASSERT_TRUE(cgroup_internal::apply_v2(dir_, r));
  EXPECT_EQ(file("memory.max"), "1073741824");
  EXPECT_EQ(file("memory.low"), "536870912");
  EXPECT_EQ(file("memory.swap.max"), "536870912");
  EXPECT_EQ(file("cpu.weight"), "39");
  EXPECT_EQ(file("cpu.max"), "50000 100000");
  EXPECT_EQ(file("cpu.max.burst"), "100");
  EXPECT_EQ(file("cpu.idle"), "0");
  EXPECT_EQ(file("cpuset.cpus"), "0");
  EXPECT_EQ(file("pids.max"), "64");
}

TEST_F(CgroupV2, UnlimitedValuesAreMax) {
  put(dir_ + "/memory.max", "");
  put(dir_ + "/memory.swap.max", "");
  put(dir_ + "/cpu.max", "");
  put(dir_ + "/pids.max", "");
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = -1;
  r.cpu = oci::CpuResources{};
  r.cpu->quota = -1;
  r.cpu->period = 20000;
  r.pids_limit = -1;
  ASSERT_TRUE(cgroup_internal::apply_v2(dir_, r));
  EXPECT_EQ(file("memory.max"), "max");
  EXPECT_EQ(file("memory.swap.max"), "max");
  EXPECT_EQ(file("cpu.max"), "max 20000");
  EXPECT_EQ(file("pids.max"), "max");
}

TEST_F(CgroupV2, IoHugetlbRdma) {
  oci::Resources r;
  r.block_io = oci::BlockIoResources{};
  r.block_io->weight = 500;
  r.block_io->throttle_write_bps.push_back({8, 0, 1048576});
  r.hugepage_limits.push_back({"2MB", 2097152});
  r.rdma["mlx5_0"] = oci::RdmaLimit{std::nullopt, 10};
  ASSERT_TRUE(cgroup_internal::apply_v2(dir_, r));
  EXPECT_EQ(file("io.weight"), "4950");
  EXPECT_EQ(file("io.max"), "8:0 wbps=1048576");
  EXPECT_EQ(file("hugetlb.2MB.max"), "2097152");
  EXPECT_EQ(file("rdma.max"), "mlx5_0 hca_object=10");
}

TEST_F(CgroupV2, BfqWeightTakesBlkioScale) {
  put(dir_ + "/io.bfq.weight");
  oci::Resources r;
  r.block_io = oci::BlockIoResources{};
  r.block_io->weight = 500;
  ASSERT_TRUE(cgroup_internal::apply_v2(dir_, r));
  EXPECT_EQ(file("io.bfq.weight"), "500");
}

TEST_F(CgroupV2, UnifiedMap) {
  oci::Resources r;
  r.unified["memory.high"] = "123456";
  ASSERT_TRUE(cgroup_internal::apply_v2(dir_, r));
  EXPECT_EQ(file("memory.high"), "123456");

  r.unified = {{"memory.nonexistent", "1"}};
  auto st = cgroup_internal::apply_v2(dir_, r);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("memory.nonexistent"));

  r.unified = {{"../memory.high", "1"}};
  EXPECT_FALSE(cgroup_internal::apply_v2(dir_, r));
}

TEST_F(CgroupV2, RefusesWhatV2CannotDo) {
  oci::Resources r;
  r.devices.push_back({false, "a", std::nullopt, std::nullopt, "rwm"});
  // A plain directory is no cgroup: attaching the device filter fails, naming the field.
  auto st = cgroup_internal::apply_v2(dir_, r);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message(), HasSubstr("linux.resources.devices"));

  r = {};
  r.network = oci::NetworkResources{};
  r.network->class_id = 1;
  EXPECT_FALSE(cgroup_internal::apply_v2(dir_, r));

  r = {};
  r.cpu = oci::CpuResources{};
  r.cpu->realtime_runtime = 1000;
  EXPECT_FALSE(cgroup_internal::apply_v2(dir_, r));

  r = {};
  r.memory = oci::MemoryResources{};
  r.memory->kernel_tcp = 1;
  EXPECT_FALSE(cgroup_internal::apply_v2(dir_, r));
}

TEST_F(CgroupV2, EnablesAvailableControllers) {
  ASSERT_TRUE(cgroup_internal::enable_v2_controllers(dir_));
  EXPECT_EQ(file("cgroup.subtree_control"), "+cpu +memory +pids");
  put(dir_ + "/cgroup.subtree_control", "cpu memory pids\n");
  ASSERT_TRUE(cgroup_internal::enable_v2_controllers(dir_));
  EXPECT_EQ(file("cgroup.subtree_control"), "cpu memory pids\n");  // nothing to add
}

// ---- the Cgroup owner ----

class CgroupOwner : public ::testing::Test {
 protected:
  std::string at(const std::string& rel) { return tmp_.path() + "/" + rel; }
  TempDir tmp_;
  FakeCgroupFs fake_;
};

TEST_F(CgroupOwner, HybridCreateWritesLimitsAndCopiesCpusetDown) {
  CgroupHost host = hybrid_host(tmp_.path(), fake_);
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = 1 << 30;
  r.pids_limit = 10;
  auto cg = Cgroup::create(host, "/forker/c1", &r);
  ASSERT_TRUE(cg) << cg.error().message();
  EXPECT_THAT(cg->dirs(), ::testing::ElementsAre(at("memory/forker/c1"), at("cpuset/forker/c1"),
                                                 at("pids/forker/c1"), at("freezer/forker/c1"),
                                                 at("systemd/forker/c1"), at("unified/forker/c1")));
  EXPECT_EQ(get(at("memory/forker/c1/memory.limit_in_bytes")), "1073741824");
  EXPECT_EQ(get(at("pids/forker/c1/pids.max")), "10");
  EXPECT_EQ(get(at("cpuset/forker/cpuset.cpus")), "0-3");
  EXPECT_EQ(get(at("cpuset/forker/c1/cpuset.mems")), "0");
  EXPECT_EQ(cg->unified_dir_fd(), -1);  // hybrid: v1 needs add_process anyway

  ASSERT_TRUE(cg->add_process(4242));
  for (const auto& dir : cg->dirs()) EXPECT_EQ(get(dir + "/cgroup.procs"), "4242") << dir;
  auto pids = cg->pids();
  ASSERT_TRUE(pids);
  EXPECT_THAT(*pids, ::testing::ElementsAre(4242));

  put(at("memory/forker/c1/nested/cgroup.procs"));  // a cgroup the container made
  ASSERT_TRUE(cg->destroy());
  for (const char* h : {"memory", "cpuset", "pids", "freezer", "systemd", "unified"}) {
    EXPECT_FALSE(fs::exists(at(std::string(h) + "/forker/c1"))) << h;
    EXPECT_TRUE(fs::exists(at(std::string(h) + "/forker"))) << h;  // forker's parent stays
  }
  EXPECT_TRUE(fs::exists(at("memory/cgroup.procs")));
}

TEST_F(CgroupOwner, V2CreateEnablesControllersAndOpensFd) {
  CgroupHost host = v2_host(tmp_.path(), fake_);
  oci::Resources r;
  r.memory = oci::MemoryResources{};
  r.memory->limit = 4096 * 1024;
  auto cg = Cgroup::create(host, "/forker/c1", &r);
  ASSERT_TRUE(cg) << cg.error().message();
  EXPECT_EQ(get(at("v2/cgroup.subtree_control")), "+cpu +memory +pids");
  EXPECT_EQ(get(at("v2/forker/cgroup.subtree_control")), "+cpu +memory +pids");
  EXPECT_EQ(get(at("v2/forker/c1/cgroup.subtree_control")), "");  // the leaf keeps its own
  EXPECT_EQ(get(at("v2/forker/c1/memory.max")), "4194304");
  EXPECT_GE(cg->unified_dir_fd(), 0);
  EXPECT_THAT(cg->dirs(), ::testing::ElementsAre(at("v2/forker/c1")));
  cg->commit();
}

TEST_F(CgroupOwner, FailedWriteRemovesOnlyCreatedDirs) {
  CgroupHost host = hybrid_host(tmp_.path(), fake_);
  // /forker exists already in the memory hierarchy (another container's parent).
  populate(at("memory/forker"), kMemoryFiles);
  put(at("memory/forker/other/cgroup.procs"));
  fake_.templates[at("pids")] = kPlainFiles;  // new pids cgroups lack pids.max
  oci::Resources r;
  r.pids_limit = 10;
  auto cg = Cgroup::create(host, "/forker/c1", &r);
  ASSERT_FALSE(cg);
  EXPECT_THAT(cg.error().message(), HasSubstr("create cgroup /forker/c1"));
  EXPECT_THAT(cg.error().message(), HasSubstr("linux.resources.pids.limit"));
  EXPECT_EQ(cg.error().err, ENOENT);
  EXPECT_TRUE(fs::exists(at("memory/forker/other")));
  EXPECT_FALSE(fs::exists(at("memory/forker/c1")));
  EXPECT_TRUE(fs::exists(at("memory/forker")));  // not ours: kept
  for (const char* h : {"cpuset", "pids", "freezer", "systemd", "unified"})
    EXPECT_FALSE(fs::exists(at(std::string(h) + "/forker"))) << h;
  EXPECT_THAT(fake_.removed, ::testing::Not(::testing::Contains(at("memory/forker"))));
  EXPECT_EQ(fake_.removed.size(), fake_.made.size());
}

TEST_F(CgroupOwner, UncommittedIsRemovedCommittedIsKept) {
  CgroupHost host = hybrid_host(tmp_.path(), fake_);
  {
    auto cg = Cgroup::create(host, "/forker/gone", nullptr);
    ASSERT_TRUE(cg);
    EXPECT_TRUE(fs::exists(at("memory/forker/gone")));
  }
  EXPECT_FALSE(fs::exists(at("memory/forker")));
  {
    auto cg = Cgroup::create(host, "/forker/kept", nullptr);
    ASSERT_TRUE(cg);
    Cgroup moved = std::move(*cg);  // the moved-from object must not remove anything
    moved.commit();
  }
  EXPECT_TRUE(fs::exists(at("memory/forker/kept")));
  EXPECT_TRUE(fs::exists(at("unified/forker/kept")));
}

TEST_F(CgroupOwner, OpenAndDestroyKeepsForkersParent) {
  CgroupHost host = hybrid_host(tmp_.path(), fake_);
  for (const char* id : {"/forker/a", "/forker/b"}) {
    auto cg = Cgroup::create(host, id, nullptr);
    ASSERT_TRUE(cg);
    cg->commit();
  }
  EXPECT_FALSE(Cgroup::open(host, "/forker/none"));
  EXPECT_EQ(Cgroup::open(host, "/forker/none").error().err, ENOENT);

  auto a = Cgroup::open(host, "/forker/a");
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(a->destroy());
  EXPECT_FALSE(fs::exists(at("memory/forker/a")));
  EXPECT_TRUE(fs::exists(at("memory/forker/b")));  // /forker still shared: kept

  auto b = Cgroup::open(host, "/forker/b");
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->destroy());
  // The last container gone, forker's parent stays for the next (as docker's /docker does).
  for (const char* h : {"memory", "cpuset", "pids", "freezer", "systemd", "unified"}) {
    EXPECT_FALSE(fs::exists(at(std::string(h) + "/forker/b"))) << h;
    EXPECT_TRUE(fs::exists(at(std::string(h) + "/forker"))) << h;
  }
  EXPECT_THAT(fake_.removed, ::testing::Not(::testing::Contains(at("memory/forker"))));
}

TEST_F(CgroupOwner, RefusesUnresolvedPaths) {
  CgroupHost host = hybrid_host(tmp_.path(), fake_);
  for (const char* bad : {"", "/", "relative", "/a/../b", "/a//b"})
    EXPECT_FALSE(Cgroup::create(host, bad, nullptr)) << bad;
  EXPECT_FALSE(Cgroup::open(host, "/"));
  EXPECT_TRUE(fake_.made.empty());
}

TEST_F(CgroupOwner, UserPathParentsAreNotRemovedAfterOpen) {
  CgroupHost host = hybrid_host(tmp_.path(), fake_);
  {
    auto cg = Cgroup::create(host, "/pods/c1", nullptr);
    ASSERT_TRUE(cg);
    cg->commit();
  }
  auto cg = Cgroup::open(host, "/pods/c1");
  ASSERT_TRUE(cg);
  ASSERT_TRUE(cg->destroy());
  EXPECT_FALSE(fs::exists(at("memory/pods/c1")));
  EXPECT_TRUE(fs::exists(at("memory/pods")));  // unknown origin after open(): left alone
}

// A real child stands in the fixture's cgroup.procs, so the signal really reaches something.
pid_t spawn_sleeper() {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::pause();
    ::_exit(0);
  }
  return pid;
}

int wait_signal(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status) ? WTERMSIG(status) : -1;
}

TEST_F(CgroupOwner, KillAllV1FreezesSignalsThaws) {
  CgroupHost host = hybrid_host(tmp_.path(), fake_);
  host.layout = CgroupLayout::kV1;  // pids come from a v1 hierarchy
  host.unified.clear();
  auto cg = Cgroup::create(host, "/forker/k", nullptr);
  ASSERT_TRUE(cg);
  pid_t child = spawn_sleeper();
  ASSERT_GT(child, 0);
  ASSERT_TRUE(cg->add_process(child));
  ASSERT_TRUE(cg->kill_all(SIGTERM));
  EXPECT_EQ(wait_signal(child), SIGTERM);
  EXPECT_EQ(get(at("freezer/forker/k/freezer.state")), "THAWED\n");
  EXPECT_FALSE(cg->frozen());

  // A paused container stays paused for a non-fatal signal.
  ASSERT_TRUE(cg->freeze());
  put(at("pids/forker/k/cgroup.procs"), "");
  ASSERT_TRUE(cg->kill_all(SIGUSR1));
  EXPECT_TRUE(cg->frozen());
  ASSERT_TRUE(cg->thaw());
}

TEST_F(CgroupOwner, KillAllV2UsesCgroupKillForSigkill) {
  CgroupHost host = v2_host(tmp_.path(), fake_);
  auto cg = Cgroup::create(host, "/forker/k", nullptr);
  ASSERT_TRUE(cg);
  ASSERT_TRUE(cg->kill_all(SIGKILL));
  EXPECT_EQ(get(at("v2/forker/k/cgroup.kill")), "1");

  // Without cgroup.kill and cgroup.events: freeze is best effort, each pid is signalled.
  fs::remove(at("v2/forker/k/cgroup.kill"));
  fs::remove(at("v2/forker/k/cgroup.freeze"));
  pid_t child = spawn_sleeper();
  ASSERT_GT(child, 0);
  put(at("v2/forker/k/cgroup.procs"), std::to_string(child) + "\n");
  ASSERT_TRUE(cg->kill_all(SIGKILL));
  EXPECT_EQ(wait_signal(child), SIGKILL);
}

}  // namespace
}  // namespace forker::linux
