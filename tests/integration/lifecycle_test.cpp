// create/start/state/kill/delete/run/list against real containers.
#include <gmock/gmock.h>

#include "integration/support/harness.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;

class Lifecycle : public ContainerTest {
 protected:
};

TEST_F(Lifecycle, RunReportsExitStatusAndIsPidOne) {
  auto& b = bundle();
  b.args({"probe", "pid"});
  auto r = b.run();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "1\n");
  b.args({"probe", "exit", "7"});
  r = b.run();
  EXPECT_EQ(r.status, 7) << r.err;
}

TEST_F(Lifecycle, CreateStartStateKillDelete) {
  auto& b = bundle();
  b.args({"probe", "pause"});
  b.save();
  std::string pidfile = b.dir() + "/pid";
  auto r = b.oci({"create", "--bundle", b.dir(), "--pid-file", pidfile, b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  auto st = nlohmann::json::parse(b.oci({"state", b.id()}).out);
  EXPECT_EQ(st["status"], "created");
  EXPECT_EQ(std::to_string(st["pid"].get<int>()), read_text(pidfile));
  EXPECT_EQ(st["bundle"], b.dir());
  r = b.oci({"start", b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(b.oci({"state", b.id()}).out)["status"], "running");
  r = b.oci({"start", b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("running"));
  r = b.oci({"delete", b.id()});
  EXPECT_NE(r.status, 0) << "delete of a running container needs --force";
  r = b.oci({"kill", b.id(), "KILL"});
  ASSERT_EQ(r.status, 0) << r.err;
  for (int i = 0; i < 100; ++i) {
    if (nlohmann::json::parse(b.oci({"state", b.id()}).out)["status"] == "stopped") break;
    usleep(20000);
  }
  EXPECT_EQ(nlohmann::json::parse(b.oci({"state", b.id()}).out)["status"], "stopped");
  r = b.oci({"delete", b.id()});
  EXPECT_EQ(r.status, 0) << r.err;
  r = b.oci({"state", b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
}

TEST_F(Lifecycle, DeleteForceKillsRunningContainer) {
  auto& b = bundle();
  b.args({"probe", "sleep", "100"});
  b.save();
  ASSERT_EQ(b.oci({"run", "-d", "--bundle", b.dir(), b.id()}).status, 0);
  EXPECT_EQ(nlohmann::json::parse(b.oci({"state", b.id()}).out)["status"], "running");
  auto r = b.oci({"delete", "-f", b.id()});
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST_F(Lifecycle, ListShowsContainers) {
  auto& b = bundle();
  b.args({"probe", "pause"});
  b.save();
  ASSERT_EQ(b.oci({"create", "--bundle", b.dir(), b.id()}).status, 0);
  auto r = b.oci({"list", "-q"});
  EXPECT_EQ(r.out, b.id() + "\n");
  auto j = nlohmann::json::parse(b.oci({"list", "-f", "json"}).out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["status"], "created");
  // A created container is deleted without --force (runc's behaviour, which engines rely on).
  EXPECT_EQ(b.oci({"delete", b.id()}).status, 0);
}

}  // namespace
}  // namespace forker::test
