// events' stats and OOM counter read from temp dirs of fixture files laid out as v1 and v2
// cgroups: nothing here touches /sys/fs/cgroup.
#include "linux/cgroup_stats.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace forker::linux {
namespace {

namespace fs = std::filesystem;

class CgroupStats : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/forker-cgstats-test-XXXXXX";
    root_ = ::mkdtemp(tmpl);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void put(const std::string& rel, const std::string& text) {
    fs::path p = root_ + "/" + rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  std::string root_;
};

TEST_F(CgroupStats, V1FilesMapToRuncFields) {
  const std::string c = "/forker/c1/";
  put("cpuacct" + c + "cpuacct.usage", "3000\n");
  put("cpuacct" + c + "cpuacct.usage_percpu", "1000 2000 \n");
  put("cpuacct" + c + "cpuacct.stat", "user 2\nsystem 1\n");
  put("cpu" + c + "cpu.stat", "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n");
  put("memory" + c + "memory.limit_in_bytes", "67108864\n");
  put("memory" + c + "memory.usage_in_bytes", "4096\n");
  put("memory" + c + "memory.max_usage_in_bytes", "8192\n");
  put("memory" + c + "memory.failcnt", "3\n");
  put("memory" + c + "memory.stat", "cache 12288\nrss 4096\n");
  put("memory" + c + "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  put("pids" + c + "pids.current", "5\n");
  put("pids" + c + "pids.max", "max\n");
  put("blkio" + c + "blkio.throttle.io_service_bytes_recursive",
      "8:0 Read 512\n8:0 Write 1024\nTotal 1536\n");
  put("hugetlb" + c + "hugetlb.2MB.usage_in_bytes", "2097152\n");
  put("hugetlb" + c + "hugetlb.2MB.max_usage_in_bytes", "4194304\n");
  put("hugetlb" + c + "hugetlb.2MB.failcnt", "1\n");
  CgroupHost host;
  host.layout = CgroupLayout::kV1;
  for (const char* ctl : {"cpuacct", "cpu", "memory", "pids", "blkio", "hugetlb"})
    host.v1.push_back({root_ + "/" + ctl, "/", {ctl}});
  auto cg = Cgroup::open(host, "/forker/c1");
  ASSERT_TRUE(cg) << cg.error().message();
  auto s = cgroup_stats(*cg);
  long tick_ns = 1000000000L / sysconf(_SC_CLK_TCK);
  EXPECT_EQ(s["cpu"]["usage"]["total"], 3000);
  EXPECT_EQ(s["cpu"]["usage"]["percpu"], nlohmann::json({1000, 2000}));
  EXPECT_EQ(s["cpu"]["usage"]["user"], 2 * tick_ns);
  EXPECT_EQ(s["cpu"]["usage"]["kernel"], tick_ns);
  EXPECT_EQ(s["cpu"]["throttling"],
            nlohmann::json({{"periods", 10}, {"throttledPeriods", 4}, {"throttledTime", 5000}}));
  EXPECT_EQ(s["memory"]["usage"],
            nlohmann::json({{"limit", 67108864}, {"usage", 4096}, {"max", 8192}, {"failcnt", 3}}));
  EXPECT_EQ(s["memory"]["cache"], 12288);
  EXPECT_EQ(s["memory"]["raw"]["rss"], 4096);
  EXPECT_EQ(s["pids"], nlohmann::json({{"current", 5}}));  // "max": no limit field, as runc
  EXPECT_EQ(s["blkio"]["ioServiceBytesRecursive"],
            nlohmann::json::parse(R"([{"major":8,"op":"Read","value":512},
                                      {"major":8,"op":"Write","value":1024}])"));
  EXPECT_EQ(s["hugetlb"]["2MB"],
            nlohmann::json({{"usage", 2097152}, {"max", 4194304}, {"failcnt", 1}}));
  EXPECT_EQ(cgroup_oom_kills(*cg), 2u);
}

TEST_F(CgroupStats, V2FilesMapToRuncFields) {
  const std::string c = "forker/c1/";
  put(c + "cpu.stat",
      "usage_usec 30\nuser_usec 20\nsystem_usec 10\nnr_periods 7\nnr_throttled 3\n"
      "throttled_usec 9\n");
  put(c + "memory.current", "4096\n");
  put(c + "memory.max", "max\n");
  put(c + "memory.peak", "8192\n");
  put(c + "memory.events", "low 0\nhigh 0\nmax 6\noom 1\noom_kill 1\n");
  put(c + "memory.stat", "anon 4096\nfile 8192\n");
  put(c + "pids.current", "2\n");
  put(c + "pids.max", "64\n");
  put(c + "io.stat", "8:16 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n");
  CgroupHost host;
  host.layout = CgroupLayout::kV2;
  host.unified = root_;
  auto cg = Cgroup::open(host, "/forker/c1");
  ASSERT_TRUE(cg) << cg.error().message();
  auto s = cgroup_stats(*cg);
  EXPECT_EQ(s["cpu"]["usage"]["total"], 30000);
  EXPECT_EQ(s["cpu"]["usage"]["user"], 20000);
  EXPECT_EQ(s["cpu"]["usage"]["kernel"], 10000);
  EXPECT_EQ(s["cpu"]["throttling"]["throttledPeriods"], 3);
  EXPECT_EQ(s["cpu"]["throttling"]["throttledTime"], 9000);
  EXPECT_EQ(s["memory"]["usage"]["limit"], UINT64_MAX);  // "max", as runc reports it
  EXPECT_EQ(s["memory"]["usage"]["usage"], 4096);
  EXPECT_EQ(s["memory"]["usage"]["max"], 8192);
  EXPECT_EQ(s["memory"]["usage"]["failcnt"], 6);
  EXPECT_EQ(s["memory"]["cache"], 8192);
  EXPECT_EQ(s["pids"], nlohmann::json({{"current", 2}, {"limit", 64}}));
  EXPECT_EQ(s["blkio"]["ioServicedRecursive"][1],
            nlohmann::json({{"major", 8}, {"minor", 16}, {"op", "Write"}, {"value", 2}}));
  EXPECT_EQ(cgroup_oom_kills(*cg), 1u);
  fs::remove(root_ + "/" + c + "memory.events");  // the cgroup going away
  EXPECT_EQ(cgroup_oom_kills(*cg), std::nullopt);
}

}  // namespace
}  // namespace forker::linux
