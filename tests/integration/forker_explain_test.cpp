// `forker run --explain`: the tree it prints on stderr is checked against what the kernel shows
// inside the same container: the mounts listed are exactly the container's mountinfo, the
// namespaces the clone and unshare steps name are the ones that differ from ours, the memory
// limit written is the one the cgroup file holds, the capability sets are CapEff and CapBnd,
// and the last step is the exec of the command.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <set>
#include <sstream>

#include "image/layer_unpack.hpp"
#include "integration/support/harness.hpp"
#include "linux/capabilities.hpp"

namespace forker::test {
namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// One line of the tree: its depth (from the indentation), its text and its duration column.
struct ExplainLine {
  int depth = 0;
  std::string text;
  std::string duration;  // "123 µs", "—" or "unfinished"
  bool failed = false;
};

struct Explain {
  std::string header;
  std::vector<ExplainLine> lines;
};

// Parses the tree that follows "forker run --explain: N steps, total T µs" in TEXT.
Explain parse_explain(const std::string& text) {
  Explain e;
  auto all = lines_of(text);
  size_t i = 0;
  while (i < all.size() && !all[i].starts_with("forker run --explain: ")) ++i;
  if (i == all.size()) return e;
  e.header = all[i++];
  for (; i < all.size(); ++i) {
    std::string l = all[i];
    // The prefix is made of 3-column units: "│  ", "   ", "├─ ", "└─ ".
    size_t pos = 0;
    int units = 0;
    for (;;) {
      if (l.compare(pos, 5, "│  ") == 0)
        pos += 5;  // "│" is 3 bytes
      else if (l.compare(pos, 3, "   ") == 0)
        pos += 3;
      else if (l.compare(pos, 7, "├─ ") == 0 || l.compare(pos, 7, "└─ ") == 0) {
        pos += 7;
        ++units;
        break;
      } else {
        break;
      }
      ++units;
    }
    if (units == 0) break;  // past the tree
    ExplainLine x;
    x.depth = units - 1;
    std::string rest = l.substr(pos);
    if (auto f = rest.find("  ✗ "); f != std::string::npos) {
      x.failed = true;
      rest.resize(f);
    }
    for (const char* d : {"—", "unfinished"}) {
      if (rest.ends_with(d)) {
        x.duration = d;
        rest.resize(rest.size() - std::string(d).size());
      }
    }
    if (x.duration.empty() && rest.ends_with(" µs")) {
      size_t end = rest.size() - std::string(" µs").size();
      size_t start = rest.find_last_not_of("0123456789", end - 1) + 1;
      x.duration = rest.substr(start);
      rest.resize(start);
    }
    while (!rest.empty() && rest.back() == ' ') rest.pop_back();
    x.text = rest;
    e.lines.push_back(x);
  }
  return e;
}

// The word after " on " in a mount or move_mount step: the target.
std::string mount_target(const std::string& text) {
  size_t on = text.find(" on ");
  if (on == std::string::npos) return "";
  std::string rest = text.substr(on + 4);
  return rest.substr(0, rest.find(' '));
}

// Mount points (field 5) of a mountinfo text.
std::set<std::string> mount_points(const std::string& mountinfo) {
  std::set<std::string> out;
  for (const auto& l : lines_of(mountinfo)) {
    std::istringstream in(l);
    std::string id, parent, dev, root, mp;
    if (in >> id >> parent >> dev >> root >> mp) out.insert(mp);
  }
  return out;
}

// "CAP_CHOWN|CAP_KILL" -> the kernel's bit mask.
uint64_t mask_of(const std::string& names) {
  std::map<std::string, int> number;
  for (int cap = 0; cap < 64; ++cap) number[linux::capability_name(cap)] = cap;
  uint64_t mask = 0;
  std::istringstream in(names);
  for (std::string n; std::getline(in, n, '|');) {
    if (n == "none") continue;
    EXPECT_TRUE(number.count(n)) << n;
    mask |= uint64_t{1} << number[n];
  }
  return mask;
}

std::string after(const std::string& text, const std::string& key) {
  size_t p = text.find(key);
  if (p == std::string::npos) return "";
  std::string rest = text.substr(p + key.size());
  return rest.substr(0, rest.find_first_of(" \n"));
}

class ForkerExplain : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT();
    if (!have_busybox()) GTEST_SKIP() << "needs a static /bin/busybox";
    char tmpl[] = "/tmp/forker-explain-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/store";
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);  // a detached container's monitor
  }

  void TearDown() override {
    if (dir_.empty()) return;
    for (const auto& id : lines_of(forker({"ps", "-aq", "--no-trunc"}).out))
      if (!id.empty()) forker({"rm", "-f", id});
    EXPECT_EQ(forker({"ps", "-aq"}).out, "");
    for (const auto& e : remove_forker_networks(root_)) ADD_FAILURE() << e;
    for (const auto& short_id : short_ids_) {
      auto left = leftovers(dir_, short_id, "");
      EXPECT_TRUE(left.empty()) << "left behind by " << short_id << ": " << left.front();
    }
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    (void)image::remove_tree(dir_);
  }

  RunResult forker(const std::vector<std::string>& args) {
    std::vector<std::string> argv{FORKER_CLI_BIN, "--storage-root", root_};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = run_cmd(argv, 60);
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    return r;
  }

  std::string dir_, root_;
  std::vector<std::string> short_ids_;  // hostnames: the first 12 digits of each id
};

TEST_F(ForkerExplain, StepsMatchWhatTheKernelShowsInside) {
  // Everything the checks need, read by the container itself, one section per marker.
  const std::string script =
      "hostname; echo @mountinfo; cat /proc/self/mountinfo; echo @ns;"
      "for n in mnt pid net ipc uts cgroup user; do echo $n $(readlink /proc/self/ns/$n); done;"
      "echo @memory; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null ||"
      " cat /sys/fs/cgroup/memory.max; echo @status; cat /proc/self/status";
  RunResult r = forker({"run", "--rm", "--explain", "-m", "64m", "busybox", "sh", "-c", script});
  ASSERT_EQ(r.status, 0) << r.err;
  std::map<std::string, std::string> section;
  std::string current = "hostname";
  for (const auto& l : lines_of(r.out)) {
    if (l.starts_with("@"))
      current = l.substr(1);
    else
      section[current] += l + "\n";
  }
  short_ids_.push_back(lines_of(section["hostname"]).at(0));

  Explain e = parse_explain(r.err);
  ASSERT_FALSE(e.header.empty()) << r.err;
  ASSERT_FALSE(e.lines.empty()) << r.err;
  // The header counts every line below it, and each line has a duration (or "—").
  EXPECT_NE(e.header.find(": " + std::to_string(e.lines.size()) + " steps, total "),
            std::string::npos)
      << e.header;
  for (const auto& l : e.lines) {
    EXPECT_FALSE(l.duration.empty()) << l.text;
    EXPECT_NE(l.duration, "unfinished") << l.text;
  }
  // Top-level phases, in order.
  std::vector<std::string> top;
  for (const auto& l : e.lines)
    if (l.depth == 0) top.push_back(l.text.substr(0, l.text.find(' ')));
  std::vector<std::string> want = {"prepare", "create", "init", "wait", "network:", "start",
                                   "exec"};
  EXPECT_EQ(top, want) << r.err;

  // Mounts: every target the init mounted (after the rootfs step began, before pivot_root they
  // are shown relative to the new root; after it they are the container's own paths) is a mount
  // point in the container's mountinfo, and every mount point there was mounted by a step.
  std::set<std::string> explained;
  bool in_init = false;
  for (const auto& l : e.lines) {
    if (l.depth == 0) in_init = l.text == "init";
    if (!in_init) continue;
    if (!l.text.starts_with("mount ") && !l.text.starts_with("move_mount ")) continue;
    std::string target = mount_target(l.text);
    if (target.starts_with("/")) explained.insert(target);  // not "." nor host:/
  }
  // Host paths ("host:/") appear only before pivot_root: after it every path is the container's.
  bool pivoted = false, host_paths_before = false;
  for (const auto& l : e.lines) {
    pivoted |= l.text.starts_with("pivot_root . ");
    if (pivoted)
      EXPECT_EQ(l.text.find("host:"), std::string::npos) << l.text;
    else
      host_paths_before |= l.text.find(" on host:/ ") != std::string::npos;
  }
  EXPECT_TRUE(pivoted) << r.err;
  EXPECT_TRUE(host_paths_before) << "the propagation change of the old root\n" << r.err;
  std::set<std::string> kernel = mount_points(section["mountinfo"]);
  for (const char* main : {"/", "/proc", "/dev", "/sys", "/dev/pts", "/dev/shm", "/dev/mqueue",
                           "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/sys/fs/cgroup"}) {
    EXPECT_TRUE(explained.count(main)) << main << " not in the explain\n" << r.err;
    EXPECT_TRUE(kernel.count(main)) << main << " not in mountinfo\n" << section["mountinfo"];
  }
  for (const auto& t : explained)
    EXPECT_TRUE(kernel.count(t)) << t << " explained but not mounted\n" << section["mountinfo"];
  for (const auto& k : kernel)
    EXPECT_TRUE(explained.count(k)) << k << " mounted but not explained\n" << r.err;

  // Namespaces: the ones the clone and unshare steps name are new (their inode differs from
  // ours); the others are ours.
  std::string ns_flags;
  for (const auto& l : e.lines)
    if (l.text.starts_with("clone3 ") || l.text.starts_with("unshare ")) ns_flags += l.text + " ";
  for (const char* f : {"CLONE_NEWNS", "CLONE_NEWPID", "CLONE_NEWNET", "CLONE_NEWIPC",
                        "CLONE_NEWUTS", "CLONE_NEWCGROUP"})
    EXPECT_NE(ns_flags.find(f), std::string::npos) << f << " in " << ns_flags;
  const std::map<std::string, std::string> flag_of = {
      {"mnt", "CLONE_NEWNS"},   {"pid", "CLONE_NEWPID"}, {"net", "CLONE_NEWNET"},
      {"ipc", "CLONE_NEWIPC"},  {"uts", "CLONE_NEWUTS"}, {"cgroup", "CLONE_NEWCGROUP"},
      {"user", "CLONE_NEWUSER"}};
  ASSERT_EQ(lines_of(section["ns"]).size(), flag_of.size()) << section["ns"];
  for (const auto& l : lines_of(section["ns"])) {
    std::string name = l.substr(0, l.find(' ')), link = l.substr(l.find(' ') + 1);
    char ours[256] = {};
    ASSERT_GT(::readlink(("/proc/self/ns/" + name).c_str(), ours, sizeof ours - 1), 0);
    bool listed = ns_flags.find(flag_of.at(name)) != std::string::npos;
    EXPECT_EQ(listed, link != ours) << name << ": " << link << " vs ours " << ours;
  }

  // The memory limit step wrote 64m, and the container's cgroup file holds that value.
  std::string written;
  for (const auto& l : e.lines)
    if (l.text.starts_with("write ") &&
        (l.text.find("/memory.limit_in_bytes ") != std::string::npos ||
         l.text.find("/memory.max ") != std::string::npos))
      written = l.text.substr(l.text.rfind(' ') + 1);
  EXPECT_EQ(written, "67108864") << r.err;
  EXPECT_EQ(section["memory"], written + "\n");

  // Capabilities: the sets capset was given are the shell's CapEff/CapPrm, the bounding set
  // kept is CapBnd.
  std::string capset, bounding;
  for (const auto& l : e.lines) {
    if (l.text.starts_with("capset ")) capset = l.text;
    if (l.text.starts_with("bounding set: keep ")) bounding = l.text;
  }
  ASSERT_NE(capset.find("CAP_CHOWN"), std::string::npos) << r.err;
  std::string eff = after(capset, "effective=permitted=");
  ASSERT_FALSE(eff.empty()) << capset;
  const std::string& status = section["status"];
  EXPECT_EQ(std::stoull(after(status, "CapEff:\t"), nullptr, 16), mask_of(eff)) << capset;
  EXPECT_EQ(std::stoull(after(status, "CapPrm:\t"), nullptr, 16), mask_of(eff)) << capset;
  std::string kept = after(bounding, "bounding set: keep ");
  kept = kept.substr(0, kept.find(';'));
  EXPECT_EQ(std::stoull(after(status, "CapBnd:\t"), nullptr, 16), mask_of(kept)) << bounding;

  // seccomp: a filter was loaded, and the kernel says the process runs under one.
  bool seccomp = false;
  for (const auto& l : e.lines)
    seccomp |= l.text.starts_with("seccomp SECCOMP_SET_MODE_FILTER ") && !l.failed;
  EXPECT_TRUE(seccomp) << r.err;
  EXPECT_EQ(after(status, "Seccomp:\t"), "2");
  // ids: setresuid 0 0 0 and the process's Uid line.
  bool uid0 = false;
  for (const auto& l : e.lines) uid0 |= l.text == "setresuid 0 0 0";
  EXPECT_TRUE(uid0) << r.err;
  EXPECT_NE(status.find("Uid:\t0\t0\t0\t0"), std::string::npos);

  // The last step is the exec of the command, with no duration to measure.
  const ExplainLine& last = e.lines.back();
  EXPECT_TRUE(last.text.starts_with("exec /bin/sh [sh -c ")) << last.text;
  EXPECT_EQ(last.duration, "—");
  EXPECT_EQ(last.depth, 0);
}

TEST_F(ForkerExplain, DetachedRunPrintsTheTreeUpToTheExec) {
  RunResult r = forker({"run", "-d", "--explain", "busybox", "sleep", "30"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string id = lines_of(r.out).at(0);
  ASSERT_EQ(id.size(), 64u) << r.out;
  short_ids_.push_back(id.substr(0, 12));
  Explain e = parse_explain(r.err);
  ASSERT_FALSE(e.lines.empty()) << r.err;
  EXPECT_EQ(e.lines.front().text, "prepare");
  // The monitor started it; the tree still ends with the init's exec.
  EXPECT_EQ(e.lines.back().text, "exec /bin/sleep [sleep 30]") << r.err;
  bool cloned = false;
  for (const auto& l : e.lines) cloned |= l.text.starts_with("clone3 ");
  EXPECT_TRUE(cloned) << r.err;
  EXPECT_EQ(forker({"rm", "-f", id}).status, 0);
}

TEST_F(ForkerExplain, OffPrintsNothing) {
  RunResult r = forker({"run", "--rm", "busybox", "hostname"});
  ASSERT_EQ(r.status, 0) << r.err;
  short_ids_.push_back(lines_of(r.out).at(0));
  EXPECT_EQ(r.err, "");
}

}  // namespace
}  // namespace forker::test
