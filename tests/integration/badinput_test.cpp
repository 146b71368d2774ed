// Bad input: every refused create/run exits non-zero, says what was wrong in exactly one line
// on stderr, and leaves nothing behind (state directory, cgroup, mount, listed container).
#include <gmock/gmock.h>
#include <sys/stat.h>

#include <filesystem>

#include "integration/support/harness.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace fs = std::filesystem;

class BadInput : public ContainerTest {
 protected:

  // The refusal: non-zero, one line on stderr naming WHAT, nothing left behind.
  void expect_refused(const RunResult& r, const std::string& what) {
    auto& b = bundle();
    EXPECT_NE(r.status, 0) << "stdout: " << r.out;
    EXPECT_NE(r.status, -1) << "timed out";
    EXPECT_THAT(r.err, HasSubstr(what));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr: " << r.err;
    EXPECT_TRUE(!r.err.empty() && r.err.back() == '\n') << "stderr: " << r.err;
    EXPECT_THAT(leftovers(b.dir(), b.id(), b.root()), IsEmpty());
    auto l = b.oci({"list", "-q"});
    EXPECT_EQ(l.status, 0) << l.err;
    EXPECT_EQ(l.out, "");
  }
  // create with the config as it is now; the refusal must name WHAT.
  void expect_create_refused(const std::string& what) {
    auto& b = bundle();
    b.save();
    SCOPED_TRACE("create");
    expect_refused(b.oci({"create", "--bundle", b.dir(), b.id()}), what);
  }
  // run, likewise (run goes through the same create, then starts).
  void expect_run_refused(const std::string& what) {
    SCOPED_TRACE("run");
    expect_refused(bundle().run(), what);
  }

};

TEST_F(BadInput, TruncatedConfigJson) {
  auto& b = bundle();
  std::string text = b.config().dump(2);
  write_text(b.dir() + "/config.json", text.substr(0, text.size() / 2));
  expect_refused(b.oci({"create", "--bundle", b.dir(), b.id()}), "parse config.json");
  expect_refused(b.oci({"run", "--bundle", b.dir(), b.id()}), "config");
}

TEST_F(BadInput, WrongTypeForUid) {
  auto& b = bundle();
  b.config()["process"]["user"]["uid"] = "0";
  expect_create_refused("process.user.uid");
  expect_run_refused("process.user.uid");
}

TEST_F(BadInput, UnsupportedOciVersion) {
  auto& b = bundle();
  b.config()["ociVersion"] = "2.0.0";
  expect_create_refused("ociVersion 2.0.0");
  expect_run_refused("ociVersion 2.0.0");
}

TEST_F(BadInput, MissingConfigJson) {
  auto& b = bundle();
  fs::remove(b.dir() + "/config.json");
  expect_refused(b.oci({"create", "--bundle", b.dir(), b.id()}), "config.json");
}

TEST_F(BadInput, MissingRootfs) {
  auto& b = bundle();
  b.config()["root"]["path"] = "no-such-rootfs";
  expect_create_refused("no-such-rootfs");
  expect_run_refused("no-such-rootfs");
}

TEST_F(BadInput, UnknownNamespaceType) {
  auto& b = bundle();
  b.config()["linux"]["namespaces"].push_back({{"type", "foo"}});
  expect_create_refused("foo");
  expect_create_refused("unknown namespace type");
}

TEST_F(BadInput, DuplicateNamespace) {
  auto& b = bundle();
  b.config()["linux"]["namespaces"].push_back({{"type", "uts"}});
  expect_create_refused("linux.namespaces type uts");
}

TEST_F(BadInput, UnknownCapability) {
  auto& b = bundle();
  b.config()["process"]["capabilities"]["bounding"].push_back("CAP_FOO");
  expect_create_refused("CAP_FOO");
  expect_run_refused("CAP_FOO");
}

TEST_F(BadInput, MountDestinationWithDotDot) {
  auto& b = bundle();
  b.config()["mounts"].push_back(
      {{"destination", "/tmp/../../etc"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
  expect_create_refused("must not contain ..");
}

TEST_F(BadInput, DuplicateIdLeavesTheFirstWorking) {
  auto& b = bundle();
  b.args({"probe", "pause"});
  b.save();
  auto r = b.oci({"create", "--bundle", b.dir(), b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  r = b.oci({"create", "--bundle", b.dir(), b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("already exists"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = b.oci({"run", "--bundle", b.dir(), b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("already exists"));
  // The first container is untouched: still created, startable, deletable.
  auto st = nlohmann::json::parse(b.oci({"state", b.id()}).out);
  EXPECT_EQ(st["status"], "created");
  r = b.oci({"start", b.id()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(b.oci({"state", b.id()}).out)["status"], "running");
  r = b.oci({"delete", "-f", b.id()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(b.oci({"list", "-q"}).out, "");
}

TEST_F(BadInput, InvalidContainerIds) {
  auto& b = bundle();
  b.save();
  for (std::string id : {"a/b", "..", "../escape", ".", "a b"}) {
    SCOPED_TRACE("id '" + id + "'");
    auto r = b.oci({"create", "--bundle", b.dir(), id});
    expect_refused(r, "container id");
  }
  // The runtime must not have made anything next to --root either.
  EXPECT_FALSE(fs::exists(b.dir() + "/escape"));
  auto r = b.oci({"create", "--bundle", b.dir(), ""});
  expect_refused(r, "");
  EXPECT_THAT(r.err, ::testing::AnyOf(HasSubstr("id"), HasSubstr("required")));
}

// A runtime killed half-way through create (SIGKILL, power loss) leaves ROOT/ID without a
// state.json and without anyone holding its lock. Such a directory is no container: create
// must remove it and succeed, not report "already exists" forever.
TEST_F(BadInput, StaleStateDirectoryIsReplaced) {
  auto& b = bundle();
  fs::create_directories(b.root() + "/" + b.id());
  write_text(b.root() + "/" + b.id() + "/junk", "left by a killed runtime");
  EXPECT_EQ(b.oci({"list", "-q"}).out, "") << "a directory without state.json is not listed";
  b.args({"probe", "pause"});
  b.save();
  auto r = b.oci({"create", "--bundle", b.dir(), b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(fs::exists(b.root() + "/" + b.id() + "/junk"));
  EXPECT_EQ(nlohmann::json::parse(b.oci({"state", b.id()}).out)["status"], "created");
  r = b.oci({"delete", "-f", b.id()});
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST_F(BadInput, EmptyArgs) {
  auto& b = bundle();
  b.config()["process"]["args"] = nlohmann::json::array();
  expect_create_refused("process.args");
}

TEST_F(BadInput, RelativeCwd) {
  auto& b = bundle();
  b.config()["process"]["cwd"] = "tmp";
  expect_create_refused("process.cwd");
}

TEST_F(BadInput, NonexistentExecutable) {
  auto& b = bundle();
  b.args({"nonexistent"});
  expect_create_refused("exec: \"nonexistent\": executable file not found in $PATH");
  expect_run_refused("exec: \"nonexistent\": executable file not found in $PATH");
}

TEST_F(BadInput, SysctlNotNamespaced) {
  auto& b = bundle();
  b.config()["linux"]["sysctl"] = {{"vm.swappiness", "10"}};
  expect_create_refused("linux.sysctl vm.swappiness");
}

TEST_F(BadInput, UnknownSeccompAction) {
  auto& b = bundle();
  b.config()["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls", {{{"names", {"getcwd"}}, {"action", "SCMP_ACT_EXPLODE"}}}}};
  expect_create_refused("SCMP_ACT_EXPLODE");
}

// Options the runtime does not know are passed to the filesystem as data: a bogus tmpfs option
// makes the kernel refuse the mount, and the error names the mount's target.
TEST_F(BadInput, BogusMountOptionFailsNamingTheTarget) {
  auto& b = bundle();
  b.config()["mounts"].push_back({{"destination", "/bogusmnt"},
                                  {"type", "tmpfs"},
                                  {"source", "tmpfs"},
                                  {"options", {"nosuid", "bogus=1"}}});
  expect_create_refused("/bogusmnt");
  expect_run_refused("/bogusmnt");
}

TEST_F(BadInput, UidMappingsWithoutUserNamespace) {
  auto& b = bundle();
  b.config()["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 1000}}};
  b.config()["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 1000}}};
  expect_create_refused("uidMappings");
}

TEST_F(BadInput, JsonLogGetsOneErrorLine) {
  auto& b = bundle();
  b.config()["ociVersion"] = "2.0.0";
  b.save();
  std::string log = b.dir() + "/log.json";
  auto r = run_oci({"--root", b.root(), "--log", log, "--log-format", "json", "create", "--bundle",
                    b.dir(), b.id()},
                   "");
  expect_refused(r, "ociVersion 2.0.0");
  std::string text = read_text(log);
  ASSERT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["level"], "error");
  ASSERT_TRUE(j["msg"].is_string());
  EXPECT_THAT(j["msg"].get<std::string>(), HasSubstr("ociVersion 2.0.0"));
  EXPECT_THAT(j["msg"].get<std::string>(), HasSubstr(b.id()));
  ASSERT_TRUE(j["time"].is_string());
  EXPECT_FALSE(j["time"].get<std::string>().empty());
}

TEST_F(BadInput, UnknownCliFlag) {
  auto& b = bundle();
  b.save();
  expect_refused(b.oci({"create", "--bogus-flag", "--bundle", b.dir(), b.id()}), "--bogus-flag");
  expect_refused(b.oci({"--bogus-global", "list"}), "--bogus-global");
  // An unknown command is no subcommand at all: CLI11 says one is required.
  expect_refused(b.oci({"no-such-command"}), "subcommand");
}

TEST_F(BadInput, KillWithInvalidSignal) {
  auto& b = bundle();
  b.args({"probe", "pause"});
  b.save();
  ASSERT_EQ(b.oci({"create", "--bundle", b.dir(), b.id()}).status, 0);
  for (std::string sig : {"SIGFOO", "0", "65", "KILLX"}) {
    SCOPED_TRACE("signal " + sig);
    auto r = b.oci({"kill", b.id(), sig});
    EXPECT_NE(r.status, 0);
    EXPECT_THAT(r.err, HasSubstr("invalid signal"));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  // The container is untouched.
  EXPECT_EQ(nlohmann::json::parse(b.oci({"state", b.id()}).out)["status"], "created");
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
}

}  // namespace
}  // namespace forker::test
