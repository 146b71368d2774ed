// `forker stats`: a busy container with -m 64m shows its name, its 64MiB limit and a CPU % from
// two real samples; an idle one next to it stays near 0; a stopped one shows "--"; an unknown
// name fails; the streaming form redraws the table with docker's clear-screen codes.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "integration/forker_cli_fixture.hpp"

namespace forker::test {
namespace {

using ForkerStats = ForkerCliTest;

// The cells of a table line: tabwriter separates columns by at least three spaces.
std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < line.size()) {
    size_t gap = line.find("   ", at);
    out.push_back(line.substr(at, gap - at));
    if (gap == std::string::npos) break;
    at = line.find_first_not_of(' ', gap);
  }
  return out;
}

// NAME -> its row's cells, from a `stats` table; checks the header on the way.
std::map<std::string, std::vector<std::string>> rows_by_name(const std::string& table) {
  std::map<std::string, std::vector<std::string>> out;
  auto ls = lines(table);
  EXPECT_FALSE(ls.empty());
  if (ls.empty()) return out;
  EXPECT_EQ(cells(ls[0]), (std::vector<std::string>{"CONTAINER ID", "NAME", "CPU %",
                                                    "MEM USAGE / LIMIT", "MEM %", "PIDS"}))
      << ls[0];
  for (size_t i = 1; i < ls.size(); ++i) {
    auto c = cells(ls[i]);
    if (c.size() == 6) out[c[1]] = c;
  }
  return out;
}

double percent(const std::string& cell) { return std::strtod(cell.c_str(), nullptr); }

TEST_F(ForkerStats, NoStreamShowsLimitCpuAndPids) {
  std::string busy = run_detached(
      {"--name", "stats-busy", "-m", "64m", "busybox", "sh", "-c", "while :; do :; done"});
  std::string idle = run_detached({"--name", "stats-idle", "busybox", "sleep", "60"});
  RunResult r = forker({"stats", "--no-stream"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto rows = rows_by_name(r.out);
  ASSERT_TRUE(rows.count("stats-busy")) << r.out;
  ASSERT_TRUE(rows.count("stats-idle")) << r.out;
  const auto& b = rows["stats-busy"];
  EXPECT_EQ(b[0], busy.substr(0, 12));
  EXPECT_GT(percent(b[2]), 10.0) << r.out;   // a busy loop: near 100% of one CPU
  EXPECT_LT(percent(b[2]), 250.0) << r.out;  // one process: one CPU at most (2 on this host)
  EXPECT_TRUE(b[3].ends_with(" / 64MiB")) << b[3];
  EXPECT_NE(b[3].find("iB / "), std::string::npos) << b[3];
  EXPECT_TRUE(b[4].ends_with('%')) << b[4];
  EXPECT_LT(percent(b[4]), 50.0) << b[4];
  EXPECT_EQ(b[5], "1");  // sh alone: the loop is a builtin
  const auto& i = rows["stats-idle"];
  EXPECT_EQ(i[0], idle.substr(0, 12));
  EXPECT_LT(percent(i[2]), 5.0) << r.out;
  EXPECT_FALSE(i[3].ends_with(" / 64MiB")) << i[3];  // no limit: the host's memory

  // Named: only that one, in the order asked.
  r = forker({"stats", "--no-stream", "stats-idle"});
  ASSERT_EQ(r.status, 0) << r.err;
  rows = rows_by_name(r.out);
  EXPECT_EQ(rows.size(), 1u) << r.out;
  EXPECT_TRUE(rows.count("stats-idle")) << r.out;
}

TEST_F(ForkerStats, StoppedUnknownAndStreaming) {
  run_detached({"--name", "stats-stopped", "busybox", "sleep", "60"});
  ASSERT_EQ(forker({"stop", "-t", "1", "stats-stopped"}).status, 0);
  RunResult r = forker({"stats", "--no-stream", "stats-stopped"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto rows = rows_by_name(r.out);
  ASSERT_TRUE(rows.count("stats-stopped")) << r.out;
  EXPECT_EQ(rows["stats-stopped"][2], "--");
  EXPECT_EQ(rows["stats-stopped"][3], "-- / --");

  r = forker({"stats", "--no-stream", "no-such-container"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "forker: no such container: no-such-container\n");
  EXPECT_EQ(r.out, "");

  r = forker({"stats", "--format", "{{.Nope}}"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "forker: template: unknown field .Nope\n");

  // Streaming until interrupted: a frame after 1 s, then every 2 s (about 3 in 6 s), each after
  // a screen clear.
  run_detached({"--name", "stats-live", "busybox", "sleep", "60"});
  std::vector<std::string> argv{"/usr/bin/timeout", "-s",  "INT",  "6", FORKER_CLI_BIN,
                                "--storage-root",   root_, "stats"};
  r = run_cmd(argv, 20);
  reap();
  EXPECT_EQ(r.status, 124) << r.err;  // timeout's status: stats was still running
  size_t frames = 0;
  for (size_t at = 0; (at = r.out.find("\033[2J\033[H", at)) != std::string::npos; ++at) ++frames;
  EXPECT_GE(frames, 2u) << r.out;
  EXPECT_LE(frames, 3u) << r.out;
  EXPECT_NE(r.out.find("stats-live"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("stats-stopped"), std::string::npos) << "only running ones unnamed";
}

}  // namespace
}  // namespace forker::test
