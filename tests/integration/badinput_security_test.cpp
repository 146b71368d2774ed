// Bad security input: malformed seccomp, architectures this host cannot filter, id mappings the
// user may not have, a missing newuidmap. Each refusal exits non-zero with one line on stderr
// naming the problem, and leaves nothing behind (state, cgroups, mounts, processes).
#include <gmock/gmock.h>
#include <sys/stat.h>

#include <filesystem>

#include "integration/support/harness.hpp"
#include "integration/support/test_user.hpp"
#include "oci/default_spec.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace fs = std::filesystem;

class BadSecurityInput : public ::testing::Test {
 protected:
  void SetUp() override { REQUIRE_ROOT(); }
  void TearDown() override {
    std::vector<pid_t> left;
    std::string xdg_root = xdg_.empty() ? "" : xdg_ + "/forker-oci";
    if (user_) left = user_->processes();
    if (!bundle_) return;
    std::string id = bundle_->id(), root = bundle_->root(), dir = bundle_->dir();
    EXPECT_THAT(leftovers("", id, xdg_root), IsEmpty());
    bundle_.reset();
    user_.reset();
    EXPECT_THAT(left, IsEmpty()) << "processes of the test user were left running";
    EXPECT_THAT(leftovers(dir, id, root), IsEmpty());
  }
  Bundle& bundle() {
    if (!bundle_)
      bundle_ =
          std::make_unique<Bundle>(::testing::UnitTest::GetInstance()->current_test_info()->name());
    return *bundle_;
  }
  nlohmann::json& seccomp() { return bundle().config()["linux"]["seccomp"]; }

  void expect_refused(const RunResult& r, const std::string& what) {
    EXPECT_NE(r.status, 0) << "stdout: " << r.out;
    EXPECT_NE(r.status, -1) << "timed out";
    EXPECT_THAT(r.err, HasSubstr(what));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr: " << r.err;
  }
  // create and run as root with the config as it is now.
  void expect_create_refused(const std::string& what) {
    auto& b = bundle();
    b.save();
    {
      SCOPED_TRACE("create");
      expect_refused(b.oci({"create", "--bundle", b.dir(), b.id()}), what);
    }
    SCOPED_TRACE("run");
    expect_refused(b.run(), what);
    EXPECT_THAT(leftovers(b.dir(), b.id(), b.root()), IsEmpty());
    EXPECT_EQ(b.oci({"list", "-q"}).out, "");
  }

  // Rootless: a test user with a bundle it owns and its own XDG_RUNTIME_DIR.
  bool make_user() {
    std::string why;
    user_ = TestUser::create(why);
    if (!user_) {
      skip_ = why;
      return false;
    }
    auto& b = bundle();
    xdg_ = b.dir() + "/xdg";
    fs::create_directories(xdg_);
    chmod(xdg_.c_str(), 0700);
    b.config() = nlohmann::json::parse(oci::default_spec_json(true, user_->uid(), user_->gid()));
    b.config()["process"]["terminal"] = false;
    b.config()["process"]["args"] = {"/probe", "pid"};
    return true;
  }
  // create and run as the user; PATH as given.
  void expect_user_refused(const std::string& what, const std::string& path) {
    auto& b = bundle();
    b.save();
    user_->give(b.dir());
    std::vector<std::string> env = {"XDG_RUNTIME_DIR=" + xdg_};
    for (const char* cmd : {"create", "run"}) {
      SCOPED_TRACE(cmd);
      auto r = user_->run({FORKER_OCI_BIN, cmd, "--bundle", b.dir(), b.id()}, env, path);
      expect_refused(r, what);
      EXPECT_THAT(leftovers("", b.id(), xdg_ + "/forker-oci"), IsEmpty());
      EXPECT_THAT(user_->processes(), IsEmpty());
    }
  }

  std::unique_ptr<Bundle> bundle_;
  std::unique_ptr<TestUser> user_;
  std::string xdg_, skip_;
};

TEST_F(BadSecurityInput, MalformedSeccomp) {
  seccomp() = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", "getcwd"}};
  expect_create_refused("linux.seccomp.syscalls");
  seccomp() = {{"defaultAction", 5}};
  expect_create_refused("linux.seccomp.defaultAction");
  seccomp() = {{"defaultAction", "SCMP_ACT_ALLOW"},
               {"syscalls", {{{"names", "getcwd"}, {"action", "SCMP_ACT_ERRNO"}}}}};
  expect_create_refused("linux.seccomp.syscalls[0].names");
  seccomp() = {{"defaultAction", "SCMP_ACT_ALLOW"},
               {"syscalls",
                {{{"names", {"getcwd"}},
                  {"action", "SCMP_ACT_ERRNO"},
                  {"args", {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_ROUGHLY"}}}}}}}};
  expect_create_refused("SCMP_CMP_ROUGHLY");
  seccomp() = {{"defaultAction", "SCMP_ACT_ALLOW"},
               {"syscalls",
                {{{"names", {"getcwd"}},
                  {"action", "SCMP_ACT_ERRNO"},
                  {"args", {{{"index", 6}, {"value", 1}, {"op", "SCMP_CMP_EQ"}}}}}}}};
  expect_create_refused("index 6");
  seccomp() = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"flags", {"SECCOMP_FILTER_FLAG_BOGUS"}}};
  expect_create_refused("SECCOMP_FILTER_FLAG_BOGUS");
  seccomp() = {{"defaultAction", "SCMP_ACT_NOTIFY"}};
  expect_create_refused("SCMP_ACT_NOTIFY");
}

TEST_F(BadSecurityInput, NotifyWithoutListener) {
  seccomp() = {{"defaultAction", "SCMP_ACT_ALLOW"},
               {"syscalls", {{{"names", {"getcwd"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
  expect_create_refused("listenerPath");
  // A listenerPath nobody listens on: the container is not left waiting for an agent.
  seccomp()["listenerPath"] = bundle().dir() + "/no-agent.sock";
  expect_create_refused("no-agent.sock");
}

TEST_F(BadSecurityInput, UnknownArchitecture) {
  seccomp() = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"architectures", {"SCMP_ARCH_VAX"}}};
  expect_create_refused("SCMP_ARCH_VAX: unknown architecture");
}

// A big-endian architecture next to a little-endian native one (or the other way round):
// libseccomp cannot build one filter for both, and such a process can never run here anyway.
TEST_F(BadSecurityInput, ArchitectureOfTheOtherByteOrder) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  const char* foreign = "SCMP_ARCH_PPC64";
#else
  const char* foreign = "SCMP_ARCH_X86_64";
#endif
  seccomp() = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"architectures", {foreign}}};
  expect_create_refused(std::string(foreign) + ": cannot be filtered on this host");
}

TEST_F(BadSecurityInput, RootlessMappingOutsideTheUsersRanges) {
  if (!make_user()) GTEST_SKIP() << skip_;
  if (access("/usr/bin/newuidmap", X_OK) != 0) GTEST_SKIP() << "needs newuidmap (uidmap)";
  auto& lx = bundle().config()["linux"];
  // Host ids 0..65535 belong to other users.
  lx["uidMappings"] = {{{"containerID", 0}, {"hostID", user_->uid()}, {"size", 1}},
                       {{"containerID", 1}, {"hostID", 1}, {"size", 65536}}};
  expect_user_refused("uidMappings: newuidmap", TestUser::kDefaultPath);
  expect_user_refused("not allowed", TestUser::kDefaultPath);
  lx["uidMappings"] = {{{"containerID", 0}, {"hostID", user_->uid()}, {"size", 1}}};
  lx["gidMappings"] = {{{"containerID", 0}, {"hostID", 0}, {"size", 1}}};  // root's group
  expect_user_refused("gidMappings: newgidmap", TestUser::kDefaultPath);
}

TEST_F(BadSecurityInput, RootlessWithoutNewuidmap) {
  if (!make_user()) GTEST_SKIP() << skip_;
  auto& lx = bundle().config()["linux"];
  lx["uidMappings"] = {{{"containerID", 0}, {"hostID", user_->uid()}, {"size", 1}},
                       {{"containerID", 1}, {"hostID", user_->subuid_start()}, {"size", 1000}}};
  // A PATH without the uidmap package's helpers.
  std::string empty = bundle().dir() + "/empty-bin";
  fs::create_directories(empty);
  expect_user_refused("newuidmap not found (install the uidmap package)", empty);
}

}  // namespace
}  // namespace forker::test
