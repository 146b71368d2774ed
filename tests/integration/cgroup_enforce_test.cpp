// Cgroup limits enforced on real containers (v1/hybrid here, v2 in the VM): OOM kill, a fork bomb
// under pids.max, CPU throttling, device access letters, pause/resume, update, events. Values
// are read inside the container or from the exit status; waits are bounded, never asserted on.
#include <sys/stat.h>
#include <time.h>

#include <thread>

#include "integration/config_fixture.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

bool is_v2_host() { return std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers"); }

void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, nullptr);
}

// The value of KEY in a "key value" file text (cpu.stat, pids.events), or -1.
long long keyed(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string k;
    long long v = 0;
    if (f >> k >> v && k == key) return v;
  }
  return -1;
}

// utime + stime of PID in clock ticks, or -1 when it is gone.
long long cpu_ticks(int pid) {
  std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return utime + stime;
}

class CgroupEnforce : public ConfigBase {
 protected:
  // A cgroup file of the container seen from inside: /sys/fs/cgroup[/CONTROLLER]/FILE.
  static std::string inside(const std::string& controller, const std::string& file) {
    return is_v2_host() ? "/sys/fs/cgroup/" + file : "/sys/fs/cgroup/" + controller + "/" + file;
  }
  // The same file from the host, for the container ID (default cgroupsPath /forker/ID).
  static std::string host_file(const std::string& id, const std::string& controller,
                               const std::string& file) {
    return is_v2_host() ? "/sys/fs/cgroup/forker/" + id + "/" + file
                        : "/sys/fs/cgroup/" + controller + "/forker/" + id + "/" + file;
  }
  void memory_limit(int64_t bytes) {
    // memory+swap at the same figure: a host with swap would page out instead of killing.
    config()["linux"]["resources"]["memory"] = {{"limit", bytes}, {"swap", bytes}};
  }
  std::string status_of(const std::string& suffix = "") {
    return state(suffix).value("status", "");
  }
};

TEST_F(CgroupEnforce, MemoryLimitExceededIsOomKilled) {
  memory_limit(32 << 20);
  auto r = run({"probe", "alloc", "64"});
  EXPECT_EQ(r.status, 137) << r.out << r.err;  // SIGKILL from the OOM killer
  EXPECT_EQ(r.out, "");
  // Under the limit the same probe lives.
  r = run({"probe", "alloc", "8"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "ok\n");
}

// The limit is written before the container's first process joins the cgroup, so a limit far
// below the runtime's own footprint still starts a small program.
TEST_F(CgroupEnforce, HalfAMebibyteLimitStillRunsTheProbe) {
  memory_limit(512 << 10);
  auto r = run({"probe", "pid"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "1\n");
}

TEST_F(CgroupEnforce, ForkBombIsContainedByPidsLimit) {
  if (!have_busybox()) GTEST_SKIP() << "needs busybox";
  config()["linux"]["resources"]["pids"] = {{"limit", 64}};
  auto& b = bundle();
  int pid = run_detached("", {"/bin/sh", "-c", "b() { b | b & }; while :; do b; done"});
  ASSERT_GT(pid, 0);
  std::string current = host_file(b.id(), "pids", "pids.current");
  std::string events = host_file(b.id(), "pids", "pids.events");
  long long highest = 0, refused = 0;
  // Bounded: until the kernel has refused forks and a few samples were taken (at most ~30 s).
  for (int i = 0; i < 300 && (refused <= 0 || i < 10); ++i) {
    highest = std::max(highest, keyed("current " + read_text(current), "current"));
    refused = keyed(read_text(events), "max");
    sleep_ms(100);
  }
  EXPECT_GT(refused, 0) << "no fork was refused";
  EXPECT_GT(highest, 1);
  EXPECT_LE(highest, 64);
  // The host still forks and runs programs.
  EXPECT_EQ(run_cmd({"/bin/true"}).status, 0);
  auto r = b.oci({"delete", "-f", b.id()}, 60);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(current));
}

TEST_F(CgroupEnforce, CpuQuotaThrottlesABusyLoop) {
  if (!have_busybox()) GTEST_SKIP() << "needs busybox";
  config()["linux"]["resources"]["cpu"] = {{"quota", 50000}, {"period", 100000}};
  auto r = run({"/bin/sh", "-c", "/probe spin 1500 && /probe cat " + inside("cpu", "cpu.stat")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_GT(keyed(r.out, "nr_periods"), 0) << r.out;
  EXPECT_GT(keyed(r.out, "nr_throttled"), 0) << r.out;
}

// Extends ConfigDevices (config_linux_test.cpp), which checks allow/deny per device: here the
// access letters. Only "r" is granted for /dev/fuse, so a read open passes and a write open is
// refused by the device cgroup (v1 devices.allow, v2 the BPF filter).
TEST_F(CgroupEnforce, DeviceRuleGrantsOnlyTheAccessItNames) {
  if (!have_busybox()) GTEST_SKIP() << "needs busybox";
  if (!std::filesystem::exists("/dev/fuse")) GTEST_SKIP() << "needs /dev/fuse on the host";
  for (const char* set : {"bounding", "effective", "permitted"})
    config()["process"]["capabilities"][set].push_back("CAP_MKNOD");
  config()["linux"]["resources"]["devices"].push_back(
      {{"allow", true}, {"type", "c"}, {"major", 10}, {"minor", 229}, {"access", "r"}});
  auto r = run({"/bin/sh", "-c",
                "/probe mknod-char /dev/myfuse 10 229 && /probe open-read /dev/myfuse && "
                "/probe open-write /dev/myfuse"});
  EXPECT_EQ(r.out, "ok\nok\nERR /dev/myfuse: " + err_text(EPERM) + "\n") << r.err;
  EXPECT_EQ(r.status, 1);
}

TEST_F(CgroupEnforce, PauseFreezesAndResumeThawsABusyLoop) {
  if (!have_busybox()) GTEST_SKIP() << "needs busybox";
  auto& b = bundle();
  int pid = run_detached("", {"/bin/sh", "-c", "while :; do :; done"});
  ASSERT_GT(pid, 0);
  auto r = b.oci({"resume", b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("not paused"));

  r = b.oci({"pause", b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(status_of(), "paused");
  std::string freezer = is_v2_host() ? host_file(b.id(), "", "cgroup.freeze")
                                     : host_file(b.id(), "freezer", "freezer.state");
  EXPECT_THAT(read_text(freezer), ::testing::AnyOf("FROZEN\n", "1\n"));
  long long frozen_at = cpu_ticks(pid);
  sleep_ms(500);  // a running loop would gain ~50 ticks here
  EXPECT_EQ(cpu_ticks(pid), frozen_at);
  r = b.oci({"pause", b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("not running"));
  r = b.oci({"exec", b.id(), "/probe", "pid"});
  EXPECT_NE(r.status, 0);

  r = b.oci({"resume", b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(status_of(), "running");
  bool advanced = false;
  for (int i = 0; i < 200 && !advanced; ++i) {  // bounded wait for the loop to run again
    sleep_ms(50);
    advanced = cpu_ticks(pid) > frozen_at;
  }
  EXPECT_TRUE(advanced);

  // A paused container is killed by KILL (thawed so that the signal acts) ...
  ASSERT_EQ(b.oci({"pause", b.id()}).status, 0);
  r = b.oci({"kill", b.id(), "KILL"});
  EXPECT_EQ(r.status, 0) << r.err;
  std::string st;
  for (int i = 0; i < 200 && (st = status_of()) != "stopped"; ++i) sleep_ms(50);
  EXPECT_EQ(st, "stopped");
  EXPECT_EQ(b.oci({"delete", b.id()}).status, 0);
  // ... and removed by delete -f.
  pid = run_detached("2", {"/bin/sh", "-c", "while :; do :; done"});
  ASSERT_GT(pid, 0);
  ASSERT_EQ(b.oci({"pause", b.id("2")}).status, 0);
  r = b.oci({"delete", b.id("2")});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("paused"));
  r = b.oci({"delete", "-f", b.id("2")});
  EXPECT_EQ(r.status, 0) << r.err;
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {  // bounded wait for the kernel to reap it
    std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    gone = stat.empty() || stat.find(") Z") != std::string::npos;
    if (!gone) sleep_ms(50);
  }
  EXPECT_TRUE(gone) << "pid " << pid << " outlived delete -f";
}

TEST_F(CgroupEnforce, UpdateChangesRunningLimits) {
  config()["linux"]["resources"]["memory"] = {{"limit", 64 << 20}};
  config()["linux"]["resources"]["pids"] = {{"limit", 100}};
  auto& b = bundle();
  ASSERT_GT(run_detached("", {"probe", "sleep", "600"}), 0);
  std::string mem_file = inside("memory", is_v2_host() ? "memory.max" : "memory.limit_in_bytes");
  std::string pids_file = inside("pids", "pids.max");
  auto cat = [&](const std::string& path) {
    auto r = b.oci({"exec", b.id(), "/probe", "cat", path});
    EXPECT_EQ(r.status, 0) << path << ": " << r.err;
    return r.out;
  };
  EXPECT_EQ(cat(mem_file), "67108864\n");

  auto r = b.oci({"update", "--memory", "32m", "--pids-limit", "10", b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(cat(mem_file), "33554432\n");
  EXPECT_EQ(cat(pids_file), "10\n");
  // The config kept in the state follows, so nothing reads the old limit from it.
  auto saved = nlohmann::json::parse(read_text(b.root() + "/" + b.id() + "/state.json"));
  auto config = nlohmann::json::parse(saved["config"].get<std::string>());
  EXPECT_EQ(config["linux"]["resources"]["memory"]["limit"], 33554432);
  EXPECT_EQ(config["linux"]["resources"]["pids"]["limit"], 10);

  // -r - : linux.resources JSON on stdin, as podman sends it.
  r = run_oci({"update", "-r", "-", b.id()}, b.root(), 30,
              R"({"memory": {"limit": 100663296}, "pids": {"limit": -1}})");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(cat(mem_file), "100663296\n");
  EXPECT_EQ(cat(pids_file), "max\n");
  // And from a file.
  std::string file = b.dir() + "/resources.json";
  write_text(file, R"({"pids": {"limit": 42}})");
  r = b.oci({"update", "--resources", file, b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(cat(pids_file), "42\n");

  // The lower memory limit is enforced: a process over it in the container is OOM-killed.
  ASSERT_EQ(b.oci({"update", "--memory", "16m", "--memory-swap", "16m", b.id()}).status, 0);
  r = b.oci({"exec", b.id(), "/probe", "alloc", "48"});
  EXPECT_EQ(r.status, 137) << r.out << r.err;
  EXPECT_EQ(status_of(), "running");  // only the exec'd process was killed
}

// Bad input: one line naming what is wrong, a non-zero status, and no limit changed.
TEST_F(CgroupEnforce, UpdateRefusesBadInput) {
  config()["linux"]["resources"]["pids"] = {{"limit", 100}};
  auto& b = bundle();
  ASSERT_GT(run_detached("", {"probe", "sleep", "600"}), 0);
  std::string pids_max = host_file(b.id(), "pids", "pids.max");
  struct Case {
    std::vector<std::string> args;
    std::string stdin_text;
    const char* says;
  } cases[] = {
      {{"--cpu-period", "10"}, "", "--cpu-period: 10 is out of range"},
      {{"--cpu-shares", "1"}, "", "--cpu-shares: 1 is out of range"},
      {{"--blkio-weight", "5000"}, "", "--blkio-weight: 5000 is out of range"},
      {{"--memory", "-5"}, "", "--memory"},
      {{"--memory", "12parsecs"}, "", "invalid size \"12parsecs\""},
      {{"--pids-limit", "lots"}, "", "--pids-limit lots: not an integer"},
      {{"--kernel-memory", "10m"}, "", "--kernel-memory"},
      {{"--memory", "64m", "--memory-swap", "32m"}, "", "below the memory limit"},
      {{"-r", "-"}, R"({"pids": {"limmit": 5}})", "linux.resources.pids.limmit: unknown key"},
      {{"-r", "-"}, R"({"cpu": {"quota": "lots"}})", "linux.resources.cpu.quota"},
      {{"-r", "-"},
       R"({"devices": [{"allow": true, "access": "rwm"}]})",
       "linux.resources.devices"},
      {{"-r", "-"}, R"({"memory": )", "parse resources"},
      {{"-r", "-", "--pids-limit", "5"}, R"({})", "not both"},
      {{}, "", "nothing to update"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"update"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    args.push_back(b.id());
    auto r = run_oci(args, b.root(), 30, c.stdin_text);
    std::string shown = ::testing::PrintToString(c.args);
    EXPECT_NE(r.status, 0) << shown;
    EXPECT_THAT(r.err, HasSubstr(c.says)) << shown;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << shown << ": " << r.err;
    EXPECT_EQ(read_text(pids_max), "100\n") << shown;
  }
  auto r = b.oci({"update", "--pids-limit", "5", b.id("-missing")});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // A value the kernel refuses names the cgroup file and the value.
  r = run_oci({"update", "-r", "-", b.id()}, b.root(), 30, R"({"cpu": {"cpus": "4095"}})");
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("cpuset.cpus"));
  EXPECT_THAT(r.err, HasSubstr("4095"));
}

TEST_F(CgroupEnforce, EventsReportStatsAndOomKills) {
  if (!have_busybox()) GTEST_SKIP() << "needs busybox";
  memory_limit(32 << 20);
  config()["linux"]["resources"]["pids"] = {{"limit", 50}};
  auto& b = bundle();
  // The init waits for /go, then has a child OOM-killed, marks /done, and lives on.
  ASSERT_GT(run_detached("", {"/bin/sh", "-c",
                              "while [ ! -e /go ]; do sleep 0.1; done; /probe alloc 64; "
                              ": > /done; exec /probe sleep 600"}),
            0);
  auto r = b.oci({"events", "--stats", b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  auto stats = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_EQ(stats.value("type", ""), "stats") << r.out;
  EXPECT_EQ(stats.value("id", ""), b.id());
  EXPECT_EQ(stats["data"]["pids"].value("limit", 0), 50) << r.out;
  EXPECT_GE(stats["data"]["pids"].value("current", 0), 1) << r.out;
  EXPECT_EQ(stats["data"]["memory"]["usage"].value("limit", 0), 32 << 20) << r.out;
  EXPECT_GT(stats["data"]["memory"]["usage"].value("usage", 0), 0) << r.out;
  EXPECT_TRUE(stats["data"]["cpu"]["usage"].contains("total")) << r.out;

  // The stream: stats every 100 ms, and the OOM kill when it happens; it ends with the
  // container. Its output goes to a file, so the test sees it while it runs.
  std::string out_file = b.dir() + "/events.out";
  RunResult stream;
  std::thread events([&] {
    stream = run_cmd({"/bin/sh", "-c",
                      std::string("exec ") + FORKER_OCI_BIN + " --root " + b.root() +
                          " events --interval 100ms " + b.id() + " > " + out_file},
                     180);
  });
  auto wait_for = [&](const std::string& text) {
    for (int i = 0; i < 600; ++i) {  // bounded: 60 s
      if (read_text(out_file).find(text) != std::string::npos) return true;
      sleep_ms(100);
    }
    return false;
  };
  // The OOM only once the stream runs (a stats line is out), so its baseline predates the kill.
  EXPECT_TRUE(wait_for("{\"type\":\"stats\",\"id\":\"" + b.id() + "\",\"data\":"));
  write_text(b.rootfs() + "/go", "");
  EXPECT_TRUE(wait_for("{\"type\":\"oom\",\"id\":\"" + b.id() + "\"}\n"));
  for (int i = 0; i < 600 && !std::filesystem::exists(b.rootfs() + "/done"); ++i) sleep_ms(100);
  EXPECT_TRUE(std::filesystem::exists(b.rootfs() + "/done"));
  EXPECT_EQ(status_of(), "running");  // only the child was killed
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
  events.join();
  EXPECT_EQ(stream.status, 0) << stream.err;  // the stream ended with the container

  r = b.oci({"events", "--stats", b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
}

}  // namespace
}  // namespace forker::test
