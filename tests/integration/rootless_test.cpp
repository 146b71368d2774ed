// Rootless: a user the test creates runs forker-oci itself (setpriv), with the state under its
// XDG_RUNTIME_DIR, a user namespace mapping it to root, and no cgroup unless delegated.
#include <gmock/gmock.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <sstream>

#include "integration/support/harness.hpp"
#include "integration/support/test_user.hpp"
#include "oci/default_spec.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace fs = std::filesystem;

class Rootless : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    user_ = TestUser::create(why);
    if (!user_) GTEST_SKIP() << why;
    bundle_ =
        std::make_unique<Bundle>(::testing::UnitTest::GetInstance()->current_test_info()->name());
    xdg_ = bundle_->dir() + "/xdg";
    fs::create_directories(xdg_);
    chmod(xdg_.c_str(), 0700);
    // The rootless spec the user would write, with the probe in the foreground.
    config() = nlohmann::json::parse(oci::default_spec_json(true, user_->uid(), user_->gid()));
    config()["process"]["terminal"] = false;
    config()["root"]["readonly"] = false;
  }
  void TearDown() override {
    if (!user_) return;
    // Containers the user still has, as the user; then everything it runs, then the user.
    for (const std::string& root : {state_root(), fallback_root()}) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(root, ec))
        oci({"--root", root, "delete", "-f", e.path().filename().string()});
    }
    std::string id = bundle_->id(), dir = bundle_->dir();
    std::vector<pid_t> left = user_->processes();
    std::error_code ec;
    fs::remove_all(fallback_root(), ec);
    bundle_.reset();
    user_.reset();  // kills what it still runs, then userdel
    for (const auto& d : delegated_) {
      rmdir((d + "/" + id).c_str());
      EXPECT_EQ(rmdir(d.c_str()), 0) << d << ": " << strerror(errno);
    }
    EXPECT_THAT(left, IsEmpty()) << "processes of the test user were still running";
    EXPECT_THAT(leftovers(dir, id, ""), IsEmpty());
  }

  nlohmann::json& config() { return bundle_->config(); }
  std::string state_root() const { return xdg_ + "/forker-oci"; }
  std::string fallback_root() const {
    return user_ ? "/tmp/forker-oci-" + std::to_string(user_->uid()) : "";
  }
  // forker-oci ARGS as the user, with XDG_RUNTIME_DIR set (unless no_xdg).
  RunResult oci(const std::vector<std::string>& args, bool no_xdg = false) {
    std::vector<std::string> argv = {FORKER_OCI_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env;
    if (!no_xdg) env.push_back("XDG_RUNTIME_DIR=" + xdg_);
    return user_->run(argv, env);
  }
  // Saves the config, hands the bundle to the user and runs it in the foreground.
  RunResult run(const std::vector<std::string>& argv, const std::string& suffix = "") {
    bundle_->args(argv);
    bundle_->save();
    user_->give(bundle_->dir());
    return oci({"run", "--bundle", bundle_->dir(), bundle_->id(suffix)});
  }
  RunResult run_detached(const std::vector<std::string>& argv, bool no_xdg = false) {
    bundle_->args(argv);
    bundle_->save();
    user_->give(bundle_->dir());
    return oci({"run", "-d", "--bundle", bundle_->dir(), bundle_->id()}, no_xdg);
  }
  int pid_of(const std::string& id, bool no_xdg = false) {
    auto r = oci({"state", id}, no_xdg);
    if (r.status != 0) return -1;
    return nlohmann::json::parse(r.out).value("pid", -1);
  }
  static std::string host_status_field(int pid, const std::string& field) {
    std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/status"));
    for (std::string line; std::getline(in, line);)
      if (line.rfind(field + ":", 0) == 0) return line.substr(field.size() + 1);
    return "";
  }
  // "0 1000 1" from uid_map text (columns squeezed).
  static std::string squeeze(const std::string& text) {
    std::istringstream in(text);
    std::string out, w;
    int n = 0;
    while (in >> w) out += (n++ % 3 == 0 && n > 1 ? "\n" : (n > 1 ? " " : "")) + w;
    return out;
  }

  std::unique_ptr<TestUser> user_;
  std::unique_ptr<Bundle> bundle_;
  std::string xdg_;
  std::vector<std::string> delegated_;  // cgroup directories handed to the user; removed
};

TEST_F(Rootless, SpecRootlessWritesUserMappings) {
  std::string dir = bundle_->dir() + "/specdir";
  fs::create_directories(dir);
  user_->give(bundle_->dir());
  auto r = oci({"spec", "--rootless", "--bundle", dir});
  ASSERT_EQ(r.status, 0) << r.err;
  auto spec = nlohmann::json::parse(read_text(dir + "/config.json"));
  EXPECT_EQ(spec["linux"]["uidMappings"][0]["hostID"], user_->uid());
  EXPECT_EQ(spec["linux"]["gidMappings"][0]["hostID"], user_->gid());
  EXPECT_FALSE(spec["linux"].contains("resources"));
}

TEST_F(Rootless, RunMapsTheUserToRoot) {
  auto r = run({"probe", "cat", "/proc/self/uid_map"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(squeeze(r.out), "0 " + std::to_string(user_->uid()) + " 1");
  EXPECT_EQ(r.err, "") << "no warning without limits";
  r = run({"probe", "cat", "/proc/self/gid_map"});
  EXPECT_EQ(squeeze(r.out), "0 " + std::to_string(user_->gid()) + " 1");
  // Unprivileged, the gid map needs setgroups denied first.
  r = run({"probe", "cat", "/proc/self/setgroups"});
  EXPECT_EQ(r.out, "deny\n");
  r = run({"probe", "id"});
  EXPECT_EQ(r.out, "uid=0 gid=0 euid=0 egid=0 groups=0\n") << r.err;
  // Devices are the host's nodes bound in (no mknod in a user namespace).
  r = run({"probe", "open", "/dev/null"});
  EXPECT_EQ(r.out, "ok\n") << r.err;
}

TEST_F(Rootless, ProcessRunsAsTheUserOnTheHost) {
  auto r = run_detached({"probe", "sleep", "600"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string id = bundle_->id();
  EXPECT_TRUE(fs::exists(state_root() + "/" + id + "/state.json")) << "state under XDG_RUNTIME_DIR";
  int pid = pid_of(id);
  ASSERT_GT(pid, 0);
  std::string uid = std::to_string(user_->uid());
  EXPECT_EQ(squeeze(host_status_field(pid, "Uid")), uid + " " + uid + " " + uid + "\n" + uid);
  // exec joins the container's user namespace: root inside again.
  r = oci({"exec", id, "/probe", "id"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "uid=0 gid=0 euid=0 egid=0 groups=0\n");
  r = oci({"ps", "--format", "json", id});
  EXPECT_EQ(r.out, "[" + std::to_string(pid) + "]\n") << r.err;
  r = oci({"delete", "-f", id});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(fs::exists(state_root() + "/" + id));
}

TEST_F(Rootless, StateFallsBackToTmpWithoutXdgRuntimeDir) {
  auto r = run_detached({"probe", "sleep", "600"}, /*no_xdg=*/true);
  ASSERT_EQ(r.status, 0) << r.err;
  std::string id = bundle_->id();
  EXPECT_TRUE(fs::exists(fallback_root() + "/" + id + "/state.json"));
  EXPECT_EQ(oci({"delete", "-f", id}, true).status, 0);
}

TEST_F(Rootless, MultipleRangesThroughNewuidmap) {
  if (access("/usr/bin/newuidmap", X_OK) != 0) GTEST_SKIP() << "needs newuidmap (uidmap)";
  ASSERT_GE(user_->subuid_count(), 65536u);
  ASSERT_GE(user_->subgid_count(), 65536u);
  auto maps = [](uint32_t own, uint32_t sub) {
    return nlohmann::json::array({{{"containerID", 0}, {"hostID", own}, {"size", 1}},
                                  {{"containerID", 1}, {"hostID", sub}, {"size", 65536}}});
  };
  config()["linux"]["uidMappings"] = maps(user_->uid(), user_->subuid_start());
  config()["linux"]["gidMappings"] = maps(user_->gid(), user_->subgid_start());
  auto r = run({"probe", "cat", "/proc/self/uid_map"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(squeeze(r.out), "0 " + std::to_string(user_->uid()) + " 1\n1 " +
                                std::to_string(user_->subuid_start()) + " 65536");
  r = run({"probe", "cat", "/proc/self/gid_map"});
  EXPECT_EQ(squeeze(r.out), "0 " + std::to_string(user_->gid()) + " 1\n1 " +
                                std::to_string(user_->subgid_start()) + " 65536");
  // A container user other than root is one of the user's subordinate uids on the host.
  config()["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  r = run_detached({"probe", "sleep", "600"});
  ASSERT_EQ(r.status, 0) << r.err;
  int pid = pid_of(bundle_->id());
  ASSERT_GT(pid, 0);
  std::string host_uid = std::to_string(user_->subuid_start() + 999);
  EXPECT_THAT(host_status_field(pid, "Uid"), HasSubstr(host_uid));
  EXPECT_EQ(oci({"delete", "-f", bundle_->id()}).status, 0);
}

// Limits that need a cgroup are not applied without one, and one warning says which.
TEST_F(Rootless, LimitsWithoutDelegatedCgroupWarnOnce) {
  config()["linux"]["resources"] = {
      {"memory", {{"limit", 256 << 20}}}, {"pids", {{"limit", 64}}}, {"cpu", {{"shares", 512}}}};
  auto r = run({"probe", "pid"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "1\n");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("warning"));
  EXPECT_THAT(r.err, HasSubstr("NOT applied"));
  for (const char* limit :
       {"linux.resources.memory.limit", "linux.resources.pids.limit", "linux.resources.cpu.shares"})
    EXPECT_THAT(r.err, HasSubstr(limit));
}

// With a cgroup delegated to the user (a directory it owns in every hierarchy, and the caller
// inside it in cgroup v2, whose migration rule wants write access to the common ancestor, as
// systemd's Delegate=yes sets it up), limits are applied there.
TEST_F(Rootless, DelegatedCgroupIsUsed) {
  if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0)
    GTEST_SKIP() << "pure cgroup v2: joining the delegated child fails with EOPNOTSUPP while the "
                    "runtime itself sits in the delegated cgroup (no-internal-process rule); "
                    "the delegation layout of this test is v1/hybrid only (open in the roadmap)";
  std::string name = "forker-deleg-" + std::to_string(getpid());
  std::string unified;
  std::istringstream in(read_text("/proc/self/mountinfo"));
  for (std::string line; std::getline(in, line);) {
    auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream rest(line.substr(sep + 3));
    std::string fstype;
    rest >> fstype;
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    std::istringstream f(line);
    std::string a, b, c, root, mp;
    f >> a >> b >> c >> root >> mp;
    std::string dir = mp + "/" + name;
    ASSERT_TRUE(fs::create_directory(dir)) << dir;
    delegated_.push_back(dir);
    if (fs::exists(mp + "/cpuset.cpus") && !fs::exists(mp + "/cgroup.subtree_control")) {
      write_text(dir + "/cpuset.cpus", read_text(mp + "/cpuset.cpus"));
      write_text(dir + "/cpuset.mems", read_text(mp + "/cpuset.mems"));
    }
    user_->give(dir);
    if (fstype == "cgroup2") unified = dir;
  }
  ASSERT_FALSE(delegated_.empty());
  config()["linux"]["cgroupsPath"] = "/" + name + "/" + bundle_->id();
  config()["linux"]["resources"] = {{"pids", {{"limit", 42}}}};
  bundle_->args({"probe", "sleep", "600"});
  bundle_->save();
  user_->give(bundle_->dir());
  std::vector<std::string> argv = {"/bin/sh", "-c",
                                   "[ -z \"$CG\" ] || echo $$ > \"$CG/cgroup.procs\" || exit 99; "
                                   "exec \"$@\"",
                                   "sh"};
  for (const auto& a :
       user_->command({FORKER_OCI_BIN, "run", "-d", "--bundle", bundle_->dir(), bundle_->id()},
                      {"XDG_RUNTIME_DIR=" + xdg_}))
    argv.push_back(a);
  setenv("CG", unified.c_str(), 1);
  auto r = run_cmd(argv);
  unsetenv("CG");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("NOT applied")));
  std::string pids_max;
  for (const auto& d : delegated_) {
    std::string f = d + "/" + bundle_->id() + "/pids.max";
    if (fs::exists(f)) pids_max = read_text(f);
  }
  EXPECT_EQ(pids_max, "42\n");
  EXPECT_EQ(oci({"delete", "-f", bundle_->id()}).status, 0);
  for (const auto& d : delegated_)
    EXPECT_FALSE(fs::exists(d + "/" + bundle_->id())) << "delete removes the container's cgroup";
}

}  // namespace
}  // namespace forker::test
