// `forker run` and the container commands, run as the real binary against a private
// --storage-root, checked from inside the containers: the five seed scenarios, detached
// containers with logs/stop/rm, restart policies, replicas, exec, docker's exit codes, and that
// nothing is left behind (no mount, cgroup, runtime state or record) after every test.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "image/layer_unpack.hpp"
#include "integration/forker_cli_fixture.hpp"
#include "integration/support/harness.hpp"

namespace forker::test {
namespace {

using nlohmann::json;

int count_lines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

// The shared fixture (private store, subreaper, rm -f of everything and the leftover check after
// each test) plus what these tests look at.
class ForkerRun : public ForkerCliTest {
 protected:
  static std::vector<std::string> split_lines(const std::string& s) { return lines(s); }

  json inspect(const std::string& name) {
    RunResult r = forker({"inspect", name});
    json j = json::parse(r.out, nullptr, false);
    if (!j.is_array() || j.empty()) return json::object();
    return j[0];
  }

  // A root directory with the host's static busybox and its applets, for `run ./rootfs`.
  std::string busybox_rootfs() {
    std::string rootfs = dir_ + "/rootfs";
    for (const char* d : {"", "/bin", "/etc", "/tmp", "/proc", "/sys", "/dev"})
      ::mkdir((rootfs + d).c_str(), 0755);
    EXPECT_EQ(run_cmd({"/bin/cp", "/bin/busybox", rootfs + "/bin/busybox"}).status, 0);
    // Relative links: `busybox --install -s` would point them at this host path.
    RunResult applets = run_cmd({"/bin/busybox", "--list"});
    EXPECT_EQ(applets.status, 0);
    for (const auto& applet : split_lines(applets.out))
      if (applet != "busybox") (void)::symlink("busybox", (rootfs + "/bin/" + applet).c_str());
    write_text(rootfs + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n");
    write_text(rootfs + "/etc/group", "root:x:0:\nnogroup:x:65534:\n");
    return rootfs;
  }

  // The container's cgroup file as the host sees it (v1 hierarchy, or the v2 unified tree).
  static std::string cgroup_file(const std::string& id, const std::string& controller,
                                 const std::string& file) {
    std::string v1 = "/sys/fs/cgroup/" + controller + "/forker/" + id + "/" + file;
    struct stat st {};
    if (::stat(v1.c_str(), &st) == 0) return read_text(v1);
    return read_text("/sys/fs/cgroup/forker/" + id + "/" + file);
  }
  static bool cgroup_v2() {
    struct stat st {};
    return ::stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
  }
  // The limits under their v1 names, read from whichever hierarchy the host has.
  static std::string memory_limit(const std::string& id) {
    return cgroup_v2() ? cgroup_file(id, "", "memory.max")
                       : cgroup_file(id, "memory", "memory.limit_in_bytes");
  }
  // v1 cpu.shares, or v2 cpu.weight converted back the way the runtime converted it.
  static std::string cpu_weight(const std::string& id) {
    return cgroup_v2() ? cgroup_file(id, "", "cpu.weight") : cgroup_file(id, "cpu", "cpu.shares");
  }
  // "QUOTA PERIOD": v1 cfs_quota_us and cfs_period_us, or v2 cpu.max.
  static std::string cpu_max(const std::string& id) {
    if (cgroup_v2()) return cgroup_file(id, "", "cpu.max");
    std::string q = cgroup_file(id, "cpu", "cpu.cfs_quota_us");
    std::string p = cgroup_file(id, "cpu", "cpu.cfs_period_us");
    return q.substr(0, q.find('\n')) + " " + p;
  }
  // CPU time used, in microseconds.
  static long long cpu_usage_us(const std::string& id) {
    if (!cgroup_v2()) return std::stoll(cgroup_file(id, "cpuacct", "cpuacct.usage")) / 1000;
    std::string stat = cgroup_file(id, "", "cpu.stat");  // "usage_usec N\n..."
    return std::stoll(stat.substr(stat.find(' ') + 1));
  }

  // Polls `forker ps -a --format json` until NAME's state is STATE (or 20 s pass).
  bool wait_state(const std::string& name, const std::string& state) {
    for (int i = 0; i < 400; ++i) {
      json j = inspect(name);
      if (j.contains("State") && j["State"]["Status"] == state) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  std::string dir_, root_;
  std::set<std::string> seen_;
};

// ---- seed scenario 2: hostname, PID 1, /proc flags, mounts invisible from the host ----
TEST_F(ForkerRun, HostnamePid1ProcFlagsAndNoHostMounts) {
  std::string host_mounts = read_text("/proc/self/mountinfo");
  std::string id = run_detached({"--name", "seed2", "--hostname", "custom-host", "busybox", "sh",
                                 "-c", "echo ready; exec sleep 60"});
  ASSERT_TRUE(wait_state("seed2", "running"));
  // While it runs: the host's mount table has not changed at all.
  EXPECT_EQ(count_lines(read_text("/proc/self/mountinfo")), count_lines(host_mounts));
  EXPECT_EQ(read_text("/proc/self/mountinfo").find(id), std::string::npos);

  RunResult r = forker({"exec", "seed2", "sh", "-c",
                        "hostname; cat /proc/1/comm; awk '$5 == \"/proc\"' /proc/self/mountinfo"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto lines = split_lines(r.out);
  ASSERT_GE(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0], "custom-host");
  EXPECT_EQ(lines[1], "sleep");  // the command is PID 1 (sh exec'd sleep)
  for (const char* flag : {"nosuid", "nodev", "noexec"})
    EXPECT_NE(lines[2].find(flag), std::string::npos) << lines[2];

  // And in a foreground run, the command itself is PID 1.
  RunResult fg = forker({"run", "--rm", "--hostname", "custom-host", "busybox", "sh", "-c",
                         "echo $$; hostname"});
  EXPECT_EQ(fg.status, 0) << fg.err;
  EXPECT_EQ(fg.out, "1\ncustom-host\n");

  EXPECT_EQ(forker({"stop", "-t", "1", "seed2"}).status, 0);
  EXPECT_EQ(count_lines(read_text("/proc/self/mountinfo")), count_lines(host_mounts));
}

// ---- seed scenario 3: --memory-limit and --cpu-shares are enforced ----
TEST_F(ForkerRun, MemoryLimitAndCpuSharesEnforced) {
  // The limits as the kernel holds them, read while the container runs.
  std::string id = run_detached({"--name", "seed3", "--memory-limit", "100m", "--cpu-shares",
                                 "512", "busybox", "sleep", "60"});
  ASSERT_TRUE(wait_state("seed3", "running"));
  EXPECT_EQ(memory_limit(id), "104857600\n");
  EXPECT_EQ(cpu_weight(id), cgroup_v2() ? "20\n" : "512\n");  // v2: 1 + (512-2)*9999/262142
  EXPECT_EQ(forker({"rm", "-f", "seed3"}).status, 0);

  // Memory: 150 MB held in a shell variable is more than the limit allows (no swap here or
  // --memory-swap equal to the limit): the kernel kills it. 50 MB is fine.
  RunResult big = forker({"run", "--name", "big", "--memory-limit", "100m", "--memory-swap",
                          "100m", "busybox", "sh", "-c",
                          "x=$(head -c 150000000 /dev/zero | tr '\\0' a); echo survived"},
                         120);
  EXPECT_EQ(big.status, 137) << big.out << big.err;
  EXPECT_EQ(big.out.find("survived"), std::string::npos);
  EXPECT_EQ(inspect("big")["State"]["OOMKilled"], true);
  EXPECT_EQ(forker({"rm", "big"}).status, 0);
  RunResult small = forker({"run", "--rm", "--memory-limit", "100m", "--memory-swap", "100m",
                            "busybox", "sh", "-c",
                            "x=$(head -c 50000000 /dev/zero | tr '\\0' a); echo survived"},
                           120);
  EXPECT_EQ(small.status, 0) << small.err;
  EXPECT_EQ(small.out, "survived\n");

  // CPU shares: two busy containers pinned to one CPU, 1024 against 512 shares. The one with
  // more shares gets about twice the CPU time (checked loosely: more than 1.4 times).
  auto busy = [&](const std::string& name, const std::string& shares) {
    return run_detached({"--name", name, "--cpu-shares", shares, "busybox", "taskset", "-c", "0",
                         "sh", "-c", "while :; do :; done"});
  };
  std::string heavy = busy("shares-1024", "1024");
  std::string light = busy("shares-512", "512");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  auto usage = [&](const std::string& cid) { return cpu_usage_us(cid); };
  long long h = usage(heavy), l = usage(light);
  EXPECT_GT(static_cast<double>(h), 1.4 * static_cast<double>(l)) << h << " vs " << l;
  EXPECT_EQ(forker({"rm", "-f", "shares-1024", "shares-512"}).status, 0);
}

// ---- seed scenario 4: a plain directory as the root, never modified ----
TEST_F(ForkerRun, PlainDirectoryRootWithLimits) {
  std::string rootfs = busybox_rootfs();
  std::string before = run_cmd({"/usr/bin/find", rootfs, "-printf", "%p %s %T@\n"}).out;
  std::string id = run_detached({"--name", "seed4", "--hostname", "dirhost", "-m", "256m",
                                 "--pids-limit", "64", "--cpus", "0.5", rootfs, "/bin/sh", "-c",
                                 "echo changed > /etc/passwd; touch /newfile; exec sleep 60"});
  ASSERT_TRUE(wait_state("seed4", "running"));
  EXPECT_EQ(memory_limit(id), "268435456\n");
  EXPECT_EQ(cgroup_file(id, "pids", "pids.max"), "64\n");
  EXPECT_EQ(cpu_max(id), "50000 100000\n");
  RunResult r = forker({"exec", "seed4", "sh", "-c", "hostname; cat /etc/passwd; ls /newfile"});
  EXPECT_EQ(r.out, "dirhost\nchanged\n/newfile\n") << r.err;
  EXPECT_EQ(forker({"rm", "-f", "seed4"}).status, 0);
  // The writes went to the container's upper layer: the directory is as it was.
  EXPECT_EQ(run_cmd({"/usr/bin/find", rootfs, "-printf", "%p %s %T@\n"}).out, before);

  // --read-only: a read-only bind of the directory itself.
  RunResult ro = forker({"run", "--rm", "--read-only", rootfs, "/bin/sh", "-c",
                         "touch /x 2>&1 || echo refused"});
  EXPECT_NE(ro.out.find("refused"), std::string::npos) << ro.out << ro.err;
}

// ---- seed scenario 5: exported rootfs tarball, imported, fork bomb under --pids-limit ----
TEST_F(ForkerRun, ImportedRootfsForkBombContained) {
  std::string rootfs = busybox_rootfs();
  std::string tar = dir_ + "/rootfs.tar";
  ASSERT_EQ(run_cmd({"/bin/tar", "-C", rootfs, "-cf", tar, "."}).status, 0);
  ASSERT_EQ(forker({"import", tar, "bomb:1"}).status, 0);
  // A real fork bomb against a limit of 10: the kernel refuses the forks beyond it.
  std::string id = run_detached({"--name", "bomb", "--pids-limit", "10", "bomb:1", "sh", "-c",
                                 "bomb() { bomb | bomb & }; bomb; exec sleep 60"});
  std::this_thread::sleep_for(std::chrono::seconds(3));
  long current = std::stol(cgroup_file(id, "pids", "pids.current"));
  EXPECT_LE(current, 10);
  EXPECT_GE(current, 1);
  std::string events = cgroup_file(id, "pids", "pids.events");  // "max N": forks refused
  ASSERT_TRUE(events.starts_with("max ")) << events;
  EXPECT_GT(std::stol(events.substr(4)), 0) << events;
  // The host is untouched and the whole bomb goes with rm -f.
  EXPECT_EQ(run_cmd({"/bin/true"}).status, 0);
  EXPECT_EQ(forker({"rm", "-f", "bomb"}).status, 0);
  EXPECT_EQ(forker({"ps", "-aq"}).out, "");
}

// ---- seed scenario 1 (without networking): three replicas, each PID 1 binding :8080 ----
TEST_F(ForkerRun, ReplicasEachPid1OnTheSamePort) {
  RunResult r = forker({"run", "--replicas", "3", "--name", "web", "busybox", "sh", "-c",
                        "hostname; mkdir -p /www && hostname > /www/index.html && "
                        "exec httpd -f -p 8080 -h /www"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto ids = split_lines(r.out);
  ASSERT_EQ(ids.size(), 3u) << r.out;
  for (const auto& id : ids) seen_.insert(id);
  std::set<std::string> hostnames;
  for (int i = 1; i <= 3; ++i) {
    std::string name = "web-" + std::to_string(i);
    ASSERT_TRUE(wait_state(name, "running")) << name;
    RunResult e;
    for (int attempt = 0; attempt < 50; ++attempt) {  // httpd binds just after exec
      e = forker({"exec", name, "sh", "-c",
                  "cat /proc/1/comm; ip link show lo | grep -c UP; "
                  "wget -qO- http://127.0.0.1:8080/"});
      if (e.status == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(e.status, 0) << name << ": " << e.out << e.err;
    auto lines = split_lines(e.out);
    ASSERT_EQ(lines.size(), 3u) << e.out;
    EXPECT_EQ(lines[0], "httpd");
    EXPECT_EQ(lines[1], "1");  // loopback is up
    hostnames.insert(lines[2]);
  }
  EXPECT_EQ(hostnames.size(), 3u);  // each answered with its own hostname
  EXPECT_EQ(hostnames, (std::set<std::string>{"web-1", "web-2", "web-3"}));  // from the names

  // logs of the group: every member's, each line prefixed with its name.
  RunResult logs = forker({"logs", "web"});
  EXPECT_EQ(logs.status, 0) << logs.err;
  EXPECT_EQ(logs.out, "web-1 | web-1\nweb-2 | web-2\nweb-3 | web-3\n");

  // ps lists the group; stop and rm act on the whole group.
  RunResult ps = forker({"ps", "--format", "json"});
  EXPECT_EQ(count_lines(ps.out), 3) << ps.out;
  for (const auto& line : split_lines(ps.out)) EXPECT_EQ(json::parse(line)["Group"], "web");
  EXPECT_EQ(forker({"stop", "-t", "2", "web"}).status, 0);
  EXPECT_EQ(forker({"ps", "-q"}).out, "");
  EXPECT_EQ(count_lines(forker({"ps", "-aq"}).out), 3);
  EXPECT_EQ(forker({"rm", "web"}).status, 0);
  EXPECT_EQ(forker({"ps", "-aq"}).out, "");
}

// ---- detached: logs -f, stop (with a PID 1 that ignores SIGTERM), rm ----
TEST_F(ForkerRun, DetachedLogsStopRemove) {
  run_detached({"--name", "talker", "busybox", "sh", "-c",
                "echo out-1; echo err-1 >&2; sleep 0.5; echo out-2; exec sleep 60"});
  ASSERT_TRUE(wait_state("talker", "running"));
  // -f keeps printing until the container stops.
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    forker({"stop", "-t", "1", "talker"});
  });
  RunResult logs = forker({"logs", "-f", "talker"}, 30);
  stopper.join();
  EXPECT_EQ(logs.status, 0) << logs.err;
  EXPECT_EQ(logs.out, "out-1\nout-2\n");
  EXPECT_EQ(logs.err, "err-1\n");
  // sleep as PID 1 has no SIGTERM handler: stop had to kill it.
  json j = inspect("talker");
  EXPECT_EQ(j["State"]["Status"], "exited");
  EXPECT_EQ(j["State"]["ExitCode"], 137);
  EXPECT_EQ(j["State"]["IgnoredStopSignal"], true);
  EXPECT_NE(forker({"ps", "-a"}).out.find("ignored SIGTERM"), std::string::npos);

  RunResult tail = forker({"logs", "--tail", "1", "-t", "talker"});
  EXPECT_NE(tail.out.find("Z out-2\n"), std::string::npos) << tail.out;
  EXPECT_EQ(tail.out.find("out-1"), std::string::npos);

  EXPECT_EQ(forker({"rm", "talker"}).status, 0);
  EXPECT_NE(forker({"logs", "talker"}).status, 0);
}

// --init: a reaper is PID 1 and passes SIGTERM on, so stop needs no SIGKILL.
TEST_F(ForkerRun, InitForwardsStopSignal) {
  RunResult r = forker({"run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/comm; echo $$"});
  EXPECT_EQ(r.status, 0) << r.err;
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0], "forker-init");
  EXPECT_NE(lines[1], "1");
  run_detached({"--name", "inited", "--init", "busybox", "sleep", "60"});
  ASSERT_TRUE(wait_state("inited", "running"));
  EXPECT_EQ(forker({"stop", "-t", "20", "inited"}).status, 0);
  json j = inspect("inited");
  EXPECT_EQ(j["State"]["IgnoredStopSignal"], false);
  EXPECT_EQ(j["State"]["ExitCode"], 128 + SIGTERM);
}

TEST_F(ForkerRun, RemoveRunningNeedsForce) {
  run_detached({"--name", "busy", "busybox", "sleep", "60"});
  ASSERT_TRUE(wait_state("busy", "running"));
  RunResult r = forker({"rm", "busy"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("stop the container before removing or use -f"), std::string::npos) << r.err;
  EXPECT_EQ(forker({"rm", "-f", "busy"}).status, 0);
  EXPECT_EQ(forker({"ps", "-aq"}).out, "");
}

// ---- restart policies ----
TEST_F(ForkerRun, RestartOnFailureCountsAndStops) {
  run_detached({"--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c",
                "echo attempt; exit 3"});
  RunResult w = forker({"wait", "flaky"}, 60);
  // wait returns at the first exit; let the policy finish (two restarts, then it stays down).
  for (int i = 0; i < 200; ++i) {
    json j = inspect("flaky");
    if (j["RestartCount"] == 2 && j["State"]["Status"] == "exited" &&
        !j["State"]["FinishedAt"].get<std::string>().empty())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  json j = inspect("flaky");
  EXPECT_EQ(j["RestartCount"], 2);
  EXPECT_EQ(j["State"]["ExitCode"], 3);
  EXPECT_EQ(forker({"logs", "flaky"}).out, "attempt\nattempt\nattempt\n");
  EXPECT_EQ(w.out, "3\n");
}

TEST_F(ForkerRun, RestartAlwaysUntilStopped) {
  run_detached({"--name", "phoenix", "--restart", "always", "busybox", "sh", "-c",
                "echo up; sleep 0.2; exit 0"});
  for (int i = 0; i < 200 && inspect("phoenix")["RestartCount"].get<int>() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_GE(inspect("phoenix")["RestartCount"].get<int>(), 2);
  EXPECT_EQ(forker({"stop", "-t", "2", "phoenix"}).status, 0);
  // Stopped by the user: no further restarts.
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  json j = inspect("phoenix");
  int count = j["RestartCount"];
  EXPECT_EQ(j["State"]["Status"], "exited");
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_EQ(inspect("phoenix")["RestartCount"], count);
}

// ---- exec ----
TEST_F(ForkerRun, ExecEnvUserWorkdirAndExitCodes) {
  run_detached({"--name", "target", "-e", "FROM_RUN=1", "busybox", "sleep", "60"});
  ASSERT_TRUE(wait_state("target", "running"));
  RunResult r = forker({"exec", "-e", "X=y", "-u", "nobody", "-w", "/tmp", "target", "sh", "-c",
                        "echo $X $FROM_RUN; id -u; pwd"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "y 1\n65534\n/tmp\n");
  EXPECT_EQ(forker({"exec", "target", "sh", "-c", "exit 42"}).status, 42);
  EXPECT_EQ(forker({"exec", "target", "no-such-command"}).status, 127);
  RunResult stdin_in = forker({"exec", "-i", "target", "cat"}, 30, "piped\n");
  EXPECT_EQ(stdin_in.out, "piped\n");
}

// ---- docker's exit codes and what a failure leaves ----
TEST_F(ForkerRun, ExitCodesAndBadInput) {
  EXPECT_EQ(forker({"run", "--rm", "busybox", "sh", "-c", "exit 7"}).status, 7);
  RunResult missing = forker({"run", "--rm", "busybox", "no-such-command"});
  EXPECT_EQ(missing.status, 127) << missing.err;
  EXPECT_NE(missing.err.find("no-such-command"), std::string::npos) << missing.err;
  RunResult noexec = forker({"run", "--rm", "busybox", "/etc/passwd"});
  EXPECT_EQ(noexec.status, 126) << noexec.err;
  RunResult noimage = forker({"run", "--rm", "no-such-image-here"});
  EXPECT_EQ(noimage.status, 125);
  EXPECT_EQ(count_lines(noimage.err), 1) << noimage.err;
  RunResult badvol = forker({"run", "--rm", "-v", "relative:/x:bogus", "busybox", "true"});
  EXPECT_EQ(badvol.status, 125) << badvol.err;
  RunResult badflag = forker({"run", "--no-such-flag", "busybox", "true"});
  EXPECT_NE(badflag.status, 0);
  // A failed run (not --rm) leaves no container either.
  forker({"run", "--name", "ghost", "busybox", "no-such-command"});
  RunResult detached_missing = forker({"run", "-d", "--name", "ghost2", "busybox", "nope"});
  EXPECT_EQ(detached_missing.status, 127) << detached_missing.err;
  EXPECT_EQ(forker({"ps", "-aq"}).out, "");

  // A name in use.
  run_detached({"--name", "taken", "busybox", "sleep", "60"});
  RunResult dup = forker({"run", "--name", "taken", "busybox", "true"});
  EXPECT_EQ(dup.status, 125);
  EXPECT_NE(dup.err.find("already in use"), std::string::npos) << dup.err;
  EXPECT_EQ(count_lines(forker({"ps", "-aq"}).out), 1);
}

// --privileged: every capability we hold (not more: capset would refuse), no seccomp; and
// --network host shares our network namespace.
TEST_F(ForkerRun, PrivilegedAndHostNetwork) {
  auto status_field = [](const std::string& status, const std::string& key) {
    auto at = status.find(key + ":\t");
    return at == std::string::npos ? "" : status.substr(at + key.size() + 2, status.find('\n', at) - at - key.size() - 2);
  };
  std::string ours = read_text("/proc/self/status");
  RunResult r = forker({"run", "--rm", "--privileged", "busybox", "cat", "/proc/self/status"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(status_field(r.out, "CapEff"), status_field(ours, "CapBnd"));
  EXPECT_EQ(status_field(r.out, "Seccomp"), "0");
  RunResult plain = forker({"run", "--rm", "busybox", "cat", "/proc/self/status"});
  EXPECT_EQ(status_field(plain.out, "Seccomp"), "2");
  EXPECT_EQ(status_field(plain.out, "CapEff"), "00000000a80425fb");  // docker's 14

  char host_net[64] = {};
  ASSERT_GT(::readlink("/proc/self/ns/net", host_net, sizeof host_net - 1), 0);
  RunResult host = forker({"run", "--rm", "--network", "host", "busybox", "readlink",
                           "/proc/self/ns/net"});
  EXPECT_EQ(host.out, std::string(host_net) + "\n") << host.err;
  RunResult none = forker({"run", "--rm", "busybox", "readlink", "/proc/self/ns/net"});
  EXPECT_NE(none.out, std::string(host_net) + "\n");
}

// ---- foreground: a kept container, env, volumes, read-only, user ----
TEST_F(ForkerRun, ForegroundOptionsSeenInside) {
  std::string vol = dir_ + "/vol";
  ::mkdir(vol.c_str(), 0755);
  write_text(vol + "/in.txt", "from host\n");
  RunResult r = forker({"run", "--name", "fg", "-e", "A=1", "-w", "/work", "-v", vol + ":/data",
                        "-v", vol + ":/ro:ro", "--tmpfs", "/scratch", "-u", "nobody", "busybox",
                        "sh", "-c",
                        "echo $A; pwd; id -u; cat /data/in.txt; touch /ro/x 2>/dev/null || echo "
                        "ro-refused; grep ' /scratch ' /proc/self/mountinfo | grep -c tmpfs; "
                        "cat /etc/hostname"});
  EXPECT_EQ(r.status, 0) << r.err;
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 7u) << r.out << r.err;
  EXPECT_EQ(lines[0], "1");
  EXPECT_EQ(lines[1], "/work");
  EXPECT_EQ(lines[2], "65534");
  EXPECT_EQ(lines[3], "from host");
  EXPECT_EQ(lines[4], "ro-refused");
  EXPECT_EQ(lines[5], "1");
  json j = inspect("fg");
  EXPECT_EQ(j["State"]["Status"], "exited");
  EXPECT_EQ(j["State"]["ExitCode"], 0);
  EXPECT_EQ(lines[6], j["Config"]["Hostname"].get<std::string>());
  EXPECT_EQ(lines[6], "fg");  // the hostname comes from the name
  EXPECT_EQ(forker({"rm", "fg"}).status, 0);
}

}  // namespace
}  // namespace forker::test
