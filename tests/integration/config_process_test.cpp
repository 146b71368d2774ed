// config.json "process": args, env, cwd, user, umask, rlimits, noNewPrivileges, oomScoreAdj,
// capabilities; hostname and domainname; personality; annotations.
#include "integration/config_fixture.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;

class ConfigProcess : public ConfigBase {};

TEST_F(ConfigProcess, ArgsArePassedVerbatimAndExitCodeIsReturned) {
  if (!have_busybox()) GTEST_SKIP() << "needs busybox";
  auto r = run({"/bin/sh", "-c", "echo \"$0|$1|$2|$#\"; exit 42", "zero", "one two", ""});
  EXPECT_EQ(r.status, 42) << r.err;
  EXPECT_EQ(r.out, "zero|one two||2\n");
  r = run({"probe", "exit", "0"});
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST_F(ConfigProcess, EnvIsExactlyTheConfigured) {
  config()["process"]["env"] = {"PATH=/bin", "A=1", "B=two words", "EMPTY="};
  auto r = run({"probe", "env"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "PATH=/bin\nA=1\nB=two words\nEMPTY=\n");
}

TEST_F(ConfigProcess, CwdIsSet) {
  std::filesystem::create_directories(bundle().rootfs() + "/srv/app");
  config()["process"]["cwd"] = "/srv/app";
  auto r = run({"probe", "cwd"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "/srv/app\n");
}

TEST_F(ConfigProcess, UserUidGidAndAdditionalGids) {
  config()["process"]["user"] = {{"uid", 1000}, {"gid", 1000}, {"additionalGids", {10, 20}}};
  auto r = run({"probe", "id"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "uid=1000 gid=1000 euid=1000 egid=1000 groups=10,20\n");
}

TEST_F(ConfigProcess, RootUserHasNoSupplementaryGroups) {
  config()["process"]["user"] = {{"uid", 0}, {"gid", 0}};
  auto r = run({"probe", "id"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "uid=0 gid=0 euid=0 egid=0 groups=\n");
}

TEST_F(ConfigProcess, Umask) {
  config()["process"]["user"]["umask"] = 077;
  auto r = run({"probe", "umask"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "0077\n");
  config()["process"]["user"]["umask"] = 02;
  r = run({"probe", "umask"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "0002\n");
}

TEST_F(ConfigProcess, Rlimits) {
  config()["process"]["rlimits"] = {
      {{"type", "RLIMIT_NOFILE"}, {"hard", 512}, {"soft", 512}},
      {{"type", "RLIMIT_CORE"}, {"hard", 4096}, {"soft", 1024}},
  };
  auto r = run({"probe", "rlimit", "RLIMIT_NOFILE"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "512 512\n");
  r = run({"probe", "rlimit", "RLIMIT_CORE"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "1024 4096\n");
}

TEST_F(ConfigProcess, NoNewPrivileges) {
  config()["process"]["noNewPrivileges"] = true;
  auto r = run({"probe", "status"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(status_field(r.out, "NoNewPrivs"), "1");
  config()["process"]["noNewPrivileges"] = false;
  r = run({"probe", "status"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(status_field(r.out, "NoNewPrivs"), "0");
}

TEST_F(ConfigProcess, OomScoreAdj) {
  config()["process"]["oomScoreAdj"] = 123;
  auto r = run({"probe", "cat", "/proc/self/oom_score_adj"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "123\n");
  // Going below the runtime's own value needs CAP_SYS_RESOURCE, which some hosts withhold.
  if (!have_cap(24 /* CAP_SYS_RESOURCE */)) return;
  config()["process"]["oomScoreAdj"] = -17;
  r = run({"probe", "cat", "/proc/self/oom_score_adj"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "-17\n");
}

// CAP_CHOWN = 0, CAP_KILL = 5, CAP_NET_BIND_SERVICE = 10, CAP_NET_RAW = 13.
TEST_F(ConfigProcess, CapabilitiesOfRoot) {
  nlohmann::json four = {"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"};
  config()["process"]["capabilities"] = {{"bounding", four},
                                         {"effective", four},
                                         {"permitted", four},
                                         {"inheritable", {"CAP_KILL"}},
                                         {"ambient", {"CAP_KILL"}}};
  auto r = run({"probe", "status"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(status_field(r.out, "CapBnd"), "0000000000002421");
  EXPECT_EQ(status_field(r.out, "CapEff"), "0000000000002421");
  EXPECT_EQ(status_field(r.out, "CapPrm"), "0000000000002421");
  EXPECT_EQ(status_field(r.out, "CapInh"), "0000000000000020");
  EXPECT_EQ(status_field(r.out, "CapAmb"), "0000000000000020");
}

// A non-root process keeps across execve only its ambient set (no file capabilities).
TEST_F(ConfigProcess, CapabilitiesOfNonRootComeFromAmbient) {
  config()["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  config()["process"]["capabilities"] = {
      {"bounding", {"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}},
      {"effective", {"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}},
      {"permitted", {"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}},
      {"inheritable", {"CAP_NET_BIND_SERVICE"}},
      {"ambient", {"CAP_NET_BIND_SERVICE"}}};
  auto r = run({"probe", "status"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(status_field(r.out, "CapBnd"), "0000000000000421");
  EXPECT_EQ(status_field(r.out, "CapEff"), "0000000000000400");
  EXPECT_EQ(status_field(r.out, "CapPrm"), "0000000000000400");
  EXPECT_EQ(status_field(r.out, "CapInh"), "0000000000000400");
  EXPECT_EQ(status_field(r.out, "CapAmb"), "0000000000000400");
}

TEST_F(ConfigProcess, EmptyCapabilities) {
  config()["process"]["capabilities"] = {{"bounding", nlohmann::json::array()},
                                         {"effective", nlohmann::json::array()},
                                         {"permitted", nlohmann::json::array()}};
  auto r = run({"probe", "status"});
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* f : {"CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"})
    EXPECT_EQ(status_field(r.out, f), "0000000000000000") << f;
}

TEST_F(ConfigProcess, HostnameAndDomainname) {
  config()["hostname"] = "ctr-host";
  config()["domainname"] = "example.org";
  auto r = run({"probe", "hostname"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "ctr-host\n");
  r = run({"probe", "domainname"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "example.org\n");
}

TEST_F(ConfigProcess, PersonalityLinux32) {
  config()["linux"]["personality"] = {{"domain", "LINUX32"}};
  auto r = run({"probe", "uname"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "i686\n");
  config()["linux"]["personality"] = {{"domain", "LINUX"}};
  r = run({"probe", "uname"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "x86_64\n");
}

TEST_F(ConfigProcess, AnnotationsAreInState) {
  auto& b = bundle();
  config()["annotations"] = {{"org.example.key", "value"}, {"com.example/other", "a b"}};
  b.args({"probe", "pause"});
  b.save();
  auto r = b.oci({"create", "--bundle", b.dir(), b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  auto st = state();
  EXPECT_EQ(st["annotations"],
            (nlohmann::json{{"org.example.key", "value"}, {"com.example/other", "a b"}}));
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
}

}  // namespace
}  // namespace forker::test
