// `forker stats` arithmetic: docker's memory usage without the inactive file cache (v1 and v2
// names), the limit capped at the host's memory, CPU % from two samples, and go-units' binary
// sizes.
#include "engine/container_stats.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace forker::engine {
namespace {

using json = nlohmann::json;
constexpr uint64_t kHost = 8ull << 30;  // 8 GiB

TEST(ContainerStats, CgroupV1FiguresAsDockerCountsThem) {
  json data = json::parse(R"({
    "cpu": {"usage": {"total": 123456789, "kernel": 1, "user": 2}},
    "memory": {"usage": {"usage": 10485760, "limit": 67108864},
               "raw": {"total_inactive_file": 4194304, "inactive_file": 1}},
    "pids": {"current": 3}})");
  StatsSample s = stats_from_json(data, kHost);
  EXPECT_EQ(s.cpu_ns, 123456789u);
  EXPECT_EQ(s.memory, 6291456u);  // 10 MiB less 4 MiB of inactive cache (the total_ name wins)
  EXPECT_EQ(s.memory_limit, 67108864u);
  EXPECT_EQ(s.pids, 3u);
  EXPECT_DOUBLE_EQ(memory_percent(s), 9.375);
}

TEST(ContainerStats, CgroupV2NamesAndNoLimit) {
  json data = json::parse(R"({
    "cpu": {"usage": {"total": 5000}},
    "memory": {"usage": {"usage": 3000, "limit": 18446744073709551615},
               "raw": {"inactive_file": 1000}},
    "pids": {}})");
  StatsSample s = stats_from_json(data, kHost);
  EXPECT_EQ(s.memory, 2000u);
  EXPECT_EQ(s.memory_limit, kHost);  // "max": the machine's memory, as docker shows it
  EXPECT_EQ(s.pids, 0u);
  // v1's "unlimited" (2^63 rounded down to a page) too.
  data["memory"]["usage"]["limit"] = 9223372036854771712ull;
  EXPECT_EQ(stats_from_json(data, kHost).memory_limit, kHost);
}

TEST(ContainerStats, CacheLargerThanUsageIsNotSubtracted) {
  json data = {{"memory", {{"usage", {{"usage", 100}}}, {"raw", {{"inactive_file", 500}}}}}};
  EXPECT_EQ(stats_from_json(data, kHost).memory, 100u);
  // Nothing at all (a cgroup without controllers): zeros, not a crash.
  StatsSample empty = stats_from_json(json::object(), kHost);
  EXPECT_EQ(empty.memory, 0u);
  EXPECT_EQ(empty.cpu_ns, 0u);
  EXPECT_EQ(memory_percent(stats_from_json(json::object(), 0)), 0);
}

TEST(ContainerStats, CpuPercentIsCpuTimeOverElapsedTime) {
  StatsSample a, b;
  a.cpu_ns = 1'000'000'000;
  b.cpu_ns = 2'500'000'000;
  b.at = a.at + std::chrono::seconds(1);
  EXPECT_DOUBLE_EQ(cpu_percent(a, b), 150.0);  // one and a half CPUs busy
  b.at = a.at + std::chrono::seconds(3);
  EXPECT_DOUBLE_EQ(cpu_percent(a, b), 50.0);
  EXPECT_EQ(cpu_percent(b, a), 0);  // time backwards or a counter reset: 0, not negative
  EXPECT_EQ(cpu_percent(a, a), 0);
}

TEST(ContainerStats, BinarySizesLikeGoUnits) {
  EXPECT_EQ(binary_size(0), "0B");
  EXPECT_EQ(binary_size(1023), "1023B");
  EXPECT_EQ(binary_size(1024), "1KiB");
  EXPECT_EQ(binary_size(253952), "248KiB");
  EXPECT_EQ(binary_size(1577058), "1.504MiB");
  EXPECT_EQ(binary_size(64.0 * 1024 * 1024), "64MiB");
  EXPECT_EQ(binary_size(25275158528.0), "23.54GiB");
}

TEST(ContainerStats, HostMemoryIsReadFromMeminfo) {
  uint64_t m = host_memory_bytes();
  EXPECT_GT(m, 64ull << 20);
  EXPECT_EQ(m % 1024, 0u);  // kB in /proc/meminfo
}

}  // namespace
}  // namespace forker::engine
