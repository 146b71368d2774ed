// update's input: runc's flags and sizes, -r JSON, range checks; no container needed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runtime/container.hpp"

namespace forker::runtime {
namespace {

using ::testing::HasSubstr;

TEST(UpdateSizes, RuncSuffixes) {
  EXPECT_EQ(*parse_memory_size("4096"), 4096);
  EXPECT_EQ(*parse_memory_size("64m"), 64 << 20);
  EXPECT_EQ(*parse_memory_size("64M"), 64 << 20);
  EXPECT_EQ(*parse_memory_size("1g"), 1 << 30);
  EXPECT_EQ(*parse_memory_size("1GiB"), 1 << 30);
  EXPECT_EQ(*parse_memory_size("512kb"), 512 << 10);
  EXPECT_EQ(*parse_memory_size("1.5k"), 1536);
  EXPECT_EQ(*parse_memory_size("-1"), -1);
  for (const char* bad : {"", "m", "-5", "12x", "1.5.5k", "64 mm", ".5k"})
    EXPECT_FALSE(parse_memory_size(bad)) << bad;
}

TEST(UpdateFlags, BecomeResources) {
  UpdateFlags f;
  f.memory = "32m";
  f.memory_swap = "-1";
  f.cpu_shares = "512";
  f.cpu_quota = "50000";
  f.cpu_period = "100000";
  f.cpuset_cpus = "0-1";
  f.pids_limit = "10";
  f.blkio_weight = "300";
  f.memory_reservation = "0";  // 0: unchanged, as runc
  auto req = parse_update(f, "");
  ASSERT_TRUE(req) << req.error().message();
  const auto& r = req->resources;
  EXPECT_EQ(r.memory->limit, 32 << 20);
  EXPECT_EQ(r.memory->swap, -1);
  EXPECT_FALSE(r.memory->reservation);
  EXPECT_EQ(r.cpu->shares, 512u);
  EXPECT_EQ(r.cpu->quota, 50000);
  EXPECT_EQ(r.cpu->period, 100000u);
  EXPECT_EQ(r.cpu->cpus, "0-1");
  EXPECT_EQ(r.pids_limit, 10);
  EXPECT_EQ(r.block_io->weight, 300);
  EXPECT_EQ(nlohmann::json::parse(req->resources_json)["memory"]["limit"], 32 << 20);
}

TEST(UpdateJson, ReadsLinuxResources) {
  auto req =
      parse_update({}, R"({"memory": {"limit": 1048576}, "unified": {"memory.high": "max"}})");
  ASSERT_TRUE(req) << req.error().message();
  EXPECT_EQ(req->resources.memory->limit, 1048576);
  EXPECT_EQ(req->resources.unified.at("memory.high"), "max");
}

TEST(UpdateBadInput, OneClearMessageEach) {
  auto msg = [](const UpdateFlags& f, const std::string& json) {
    auto r = parse_update(f, json);
    return r ? std::string("(accepted)") : r.error().message();
  };
  UpdateFlags f;
  f.cpu_period = "999";
  EXPECT_THAT(msg(f, ""), HasSubstr("--cpu-period: 999 is out of range (1000..1000000)"));
  f = {};
  f.cpu_quota = "-7";
  EXPECT_THAT(msg(f, ""), HasSubstr("--cpu-quota: -7 is out of range"));
  f = {};
  f.pids_limit = "-2";
  EXPECT_THAT(msg(f, ""), HasSubstr("--pids-limit: -2"));
  f = {};
  f.kernel_memory = "1m";
  EXPECT_THAT(msg(f, ""), HasSubstr("--kernel-memory"));
  f = {};
  f.memory = "64m";
  f.memory_swap = "32m";
  EXPECT_THAT(msg(f, ""), HasSubstr("below the memory limit"));
  EXPECT_THAT(msg({}, ""), HasSubstr("nothing to update"));
  EXPECT_THAT(msg({}, R"({"memroy": {}})"), HasSubstr("linux.resources.memroy: unknown key"));
  EXPECT_THAT(msg({}, R"({"blockIO": {"weightDevice": [{"major": 8, "wieght": 5}]}})"),
              HasSubstr("linux.resources.blockIO.weightDevice[0].wieght: unknown key"));
  EXPECT_THAT(msg({}, R"({"blockIO": {"weight": 5000}})"),
              HasSubstr("linux.resources.blockIO.weight"));
  EXPECT_THAT(msg({}, R"({"cpu": {"shares": -1}})"), HasSubstr("linux.resources.cpu.shares"));
  EXPECT_THAT(msg({}, R"([1, 2])"), HasSubstr("expected an object"));
  f = {};
  f.pids_limit = "3";
  EXPECT_THAT(msg(f, "{}"), HasSubstr("not both"));
}

TEST(EventsInterval, GoDurations) {
  EXPECT_EQ(*parse_interval("5s"), 5000);
  EXPECT_EQ(*parse_interval("250ms"), 250);
  EXPECT_EQ(*parse_interval("1m30s"), 90000);
  EXPECT_EQ(*parse_interval("1.5s"), 1500);
  EXPECT_EQ(*parse_interval("2h"), 7200000);
  for (const char* bad : {"", "5", "0s", "5x", "s", "-1s", "100us"})
    EXPECT_FALSE(parse_interval(bad)) << bad;
}

}  // namespace
}  // namespace forker::runtime
