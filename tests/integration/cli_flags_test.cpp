// runc's create/run/exec flags that change the container: --no-pivot, --preserve-fds,
// --no-new-keyring, --systemd-cgroup (refused here), and `ps`.
#include <gmock/gmock.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "integration/support/harness.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class CliFlags : public ContainerTest {
 protected:
  // forker-oci ARGS with fd 3 open on PATH (no O_CLOEXEC), as an engine passing a socket would.
  RunResult with_fd3(const std::vector<std::string>& args, const std::string& path) {
    std::vector<std::string> argv = {"/bin/sh", "-c", "exec 3<\"$FD3\"; exec \"$0\" \"$@\"",
                                     FORKER_OCI_BIN, "--root", bundle().root()};
    argv.insert(argv.end(), args.begin(), args.end());
    setenv("FD3", path.c_str(), 1);
    auto r = run_cmd(argv);
    unsetenv("FD3");
    return r;
  }
};

TEST_F(CliFlags, NoPivotRunsInTheRootfs) {
  auto& b = bundle();
  b.args({"probe", "ls", "/"});
  auto r = b.run({"--no-pivot"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("probe\n"));
  b.args({"probe", "readlink", "/proc/self/root"});
  r = b.run({"--no-pivot"});
  EXPECT_EQ(r.out, "/\n") << r.err;
}

TEST_F(CliFlags, PreserveFdsPassesExactlyThatMany) {
  auto& b = bundle();
  write_text(b.dir() + "/passed", "x");
  b.args({"probe", "fds"});
  b.save();
  auto r = with_fd3({"run", "--preserve-fds", "1", "--bundle", b.dir(), b.id()}, b.dir() + "/passed");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("3 " + b.dir() + "/passed\n")) << r.out;
  r = with_fd3({"run", "--bundle", b.dir(), b.id()}, b.dir() + "/passed");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("\n3 "))) << "without --preserve-fds fd 3 is closed";
}

TEST_F(CliFlags, ExecPreserveFds) {
  auto& b = bundle();
  write_text(b.dir() + "/passed", "x");
  b.args({"probe", "pause"});
  b.save();
  ASSERT_EQ(b.oci({"run", "-d", "--bundle", b.dir(), b.id()}).status, 0);
  auto r = with_fd3({"exec", "--preserve-fds", "1", b.id(), "/probe", "fds"}, b.dir() + "/passed");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("3 " + b.dir() + "/passed\n")) << r.out;
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
}

TEST_F(CliFlags, NewSessionKeyringUnlessNoNewKeyring) {
  auto& b = bundle();
  long ours = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 1 /* create */);
  ASSERT_GT(ours, 0);
  b.args({"probe", "keyring"});
  auto r = b.run();
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out, std::to_string(ours) + "\n") << "the container gets a keyring of its own";
  r = b.run({"--no-new-keyring"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, std::to_string(ours) + "\n") << "--no-new-keyring keeps the caller's";
}

TEST_F(CliFlags, SystemdCgroupIsAClearError) {
  auto& b = bundle();
  b.save();
  auto r = run_oci({"--systemd-cgroup", "run", "--bundle", b.dir(), b.id()}, b.root());
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("--systemd-cgroup: systemd is not running"));
}

TEST_F(CliFlags, PsListsTheContainersProcesses) {
  auto& b = bundle();
  b.args({"probe", "pause"});
  b.save();
  std::string pidfile = b.dir() + "/pid";
  ASSERT_EQ(b.oci({"run", "-d", "--pid-file", pidfile, "--bundle", b.dir(), b.id()}).status, 0);
  std::string pid = read_text(pidfile);
  auto r = b.oci({"ps", "--format", "json", b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json::array({std::stoi(pid)}));
  r = b.oci({"ps", b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("PID"));
  EXPECT_THAT(r.out, HasSubstr(" " + pid + " "));
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
}

}  // namespace
}  // namespace forker::test
