// config.json "hooks": each phase runs with the state on stdin, in the right namespaces, with
// its env and timeout; a failing hook fails create, and a failing poststart one does not.
#include "integration/config_fixture.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;

class ConfigHooks : public ConfigBase {
 protected:
  // A hook running /bin/sh -c SCRIPT (on the host, or in the rootfs for startContainer).
  static nlohmann::json sh_hook(const std::string& script, std::vector<std::string> env = {}) {
    if (env.empty()) env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    return {{"path", "/bin/sh"}, {"args", {"sh", "-c", script}}, {"env", env}};
  }
  void add_hook(const std::string& phase, const nlohmann::json& hook) {
    config()["hooks"][phase].push_back(hook);
  }
  nlohmann::json read_json(const std::string& path) {
    return nlohmann::json::parse(read_text(path), nullptr, false);
  }
  void wait_stopped(const std::string& suffix = "") {
    for (int i = 0; i < 250 && state(suffix).value("status", "") != "stopped"; ++i) usleep(20000);
  }
};

TEST_F(ConfigHooks, EachPhaseGetsTheStateOnStdin) {
  auto& b = bundle();
  for (const char* phase : {"prestart", "createRuntime", "createContainer", "poststart", "poststop"})
    add_hook(phase, sh_hook("cat > " + b.dir() + "/" + phase + ".json"));
  b.args({"probe", "pause"});
  b.save();
  auto r = b.oci({"create", "--bundle", b.dir(), b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  int pid = state().value("pid", -1);
  ASSERT_GT(pid, 0);
  for (const char* phase : {"prestart", "createRuntime", "createContainer"}) {
    auto j = read_json(b.dir() + "/" + phase + ".json");
    EXPECT_EQ(j.value("id", ""), b.id()) << phase;
    EXPECT_EQ(j.value("pid", -1), pid) << phase;
    // runc and the validation suite give hooks "created" from prestart on.
    EXPECT_EQ(j.value("status", ""), "created") << phase;
    EXPECT_EQ(j.value("bundle", ""), b.dir()) << phase;
    EXPECT_EQ(j.value("ociVersion", ""), "1.1.0") << phase;
  }
  EXPECT_FALSE(std::filesystem::exists(b.dir() + "/poststart.json"));
  r = b.oci({"start", b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = read_json(b.dir() + "/poststart.json");
  EXPECT_EQ(j.value("id", ""), b.id());
  EXPECT_EQ(j.value("pid", -1), pid);
  EXPECT_EQ(j.value("status", ""), "running");
  EXPECT_FALSE(std::filesystem::exists(b.dir() + "/poststop.json"));
  ASSERT_EQ(b.oci({"kill", b.id(), "TERM"}).status, 0);
  wait_stopped();
  r = b.oci({"delete", b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  j = read_json(b.dir() + "/poststop.json");
  EXPECT_EQ(j.value("id", ""), b.id());
  EXPECT_EQ(j.value("status", ""), "stopped");
  EXPECT_EQ(j.value("bundle", ""), b.dir());
}

TEST_F(ConfigHooks, HooksOfAPhaseRunInOrder) {
  auto& b = bundle();
  std::string log = b.dir() + "/order";
  add_hook("prestart", sh_hook("echo one >> " + log));
  add_hook("prestart", sh_hook("echo two >> " + log));
  add_hook("createRuntime", sh_hook("echo three >> " + log));
  add_hook("poststart", sh_hook("echo four >> " + log));
  add_hook("poststop", sh_hook("echo five >> " + log));
  auto r = run({"probe", "exit", "0"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_text(log), "one\ntwo\nthree\nfour\nfive\n");
}

// createContainer: after the mounts are made, before pivot_root, in the container's namespaces;
// its path is resolved (and it writes) in the runtime's filesystem.
TEST_F(ConfigHooks, CreateContainerHookRunsInContainerMountNamespace) {
  auto& b = bundle();
  std::string out = b.dir() + "/cc";
  add_hook("createContainer",
           sh_hook("readlink /proc/self/ns/mnt > " + out + ".mnt; readlink /proc/self/ns/net > " +
                   out + ".net; ls " + b.rootfs() + "/dev > " + out + ".dev"));
  b.args({"probe", "pause"});
  b.save();
  auto r = b.oci({"create", "--bundle", b.dir(), b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string proc = "/proc/" + std::to_string(state().value("pid", -1)) + "/ns/";
  EXPECT_EQ(read_text(out + ".mnt"), host_readlink(proc + "mnt") + "\n");
  EXPECT_EQ(read_text(out + ".net"), host_readlink(proc + "net") + "\n");
  EXPECT_NE(read_text(out + ".mnt"), host_readlink("/proc/self/ns/mnt") + "\n");
  // The container's /dev (a tmpfs of its mount namespace) was already there, under the rootfs.
  EXPECT_THAT(read_text(out + ".dev"), HasSubstr("null\n"));
  EXPECT_FALSE(std::filesystem::exists(b.rootfs() + "/dev/null"));
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
}

// prestart and createRuntime run in the runtime's namespaces.
TEST_F(ConfigHooks, CreateRuntimeHookRunsInRuntimeNamespaces) {
  auto& b = bundle();
  std::string out = b.dir() + "/cr.mnt";
  add_hook("createRuntime", sh_hook("readlink /proc/self/ns/mnt > " + out));
  auto r = run({"probe", "exit", "0"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_text(out), host_readlink("/proc/self/ns/mnt") + "\n");
}

// startContainer: inside the container, path resolved in its root, before the process starts.
TEST_F(ConfigHooks, StartContainerHookRunsInsideContainer) {
  if (!have_busybox()) GTEST_SKIP() << "needs busybox in the rootfs";
  auto& b = bundle();
  add_hook("startContainer",
           sh_hook("cat > /hook-state; readlink /proc/self/ns/mnt > /hook-ns; echo \"$FOO\" > /hook-env",
                   {"PATH=/bin", "FOO=from the hook env"}));
  b.args({"probe", "readlink", "/proc/self/ns/mnt"});
  auto r = b.run();
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_text(b.rootfs() + "/hook-ns"), r.out);
  EXPECT_EQ(read_text(b.rootfs() + "/hook-env"), "from the hook env\n");
  auto j = nlohmann::json::parse(read_text(b.rootfs() + "/hook-state"), nullptr, false);
  EXPECT_EQ(j.value("id", ""), b.id());
  EXPECT_EQ(j.value("bundle", ""), b.dir());
  // The probe runs after the hook is done: it sees its file.
  r = run({"probe", "cat", "/hook-env"});
  EXPECT_EQ(r.out, "from the hook env\n") << r.err;
}

TEST_F(ConfigHooks, HookGetsOnlyItsEnv) {
  auto& b = bundle();
  std::string out = b.dir() + "/env";
  add_hook("prestart", sh_hook("echo \"$FOO|${HOME-unset}|$PATH\" > " + out,
                               {"FOO=bar baz", "PATH=/usr/bin:/bin"}));
  auto r = run({"probe", "exit", "0"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_text(out), "bar baz|unset|/usr/bin:/bin\n");
}

TEST_F(ConfigHooks, FailingPrestartHookFailsCreateAndLeavesNothing) {
  auto& b = bundle();
  add_hook("prestart", sh_hook("echo boom >&2; exit 3"));
  add_hook("poststart", sh_hook("touch " + b.dir() + "/poststart-ran"));
  b.args({"probe", "pause"});
  b.save();
  auto r = b.oci({"create", "--bundle", b.dir(), b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("prestart hook /bin/sh"));
  EXPECT_THAT(r.err, HasSubstr("exit status 3"));
  EXPECT_THAT(r.err, HasSubstr("boom"));
  r = b.oci({"state", b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
  EXPECT_FALSE(std::filesystem::exists(b.dir() + "/poststart-ran"));
  // run fails the same way.
  auto rr = run({"probe", "pause"});
  EXPECT_NE(rr.status, 0);
  EXPECT_THAT(rr.err, HasSubstr("prestart hook /bin/sh"));
  EXPECT_EQ(rr.out, "");
}

TEST_F(ConfigHooks, FailingCreateContainerHookFailsCreate) {
  auto& b = bundle();
  add_hook("createContainer", sh_hook("exit 5"));
  auto r = run({"probe", "pause"});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("createContainer hook /bin/sh"));
  EXPECT_THAT(r.err, HasSubstr("exit status 5"));
  EXPECT_NE(b.oci({"state", b.id()}).status, 0);
}

TEST_F(ConfigHooks, MissingHookBinaryFailsCreate) {
  add_hook("prestart", {{"path", "/does/not/exist"}});
  auto r = run({"probe", "pause"});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("prestart hook /does/not/exist"));
  EXPECT_THAT(r.err, HasSubstr(strerror(ENOENT)));
}

TEST_F(ConfigHooks, HookTimeoutKillsItAndFailsCreate) {
  auto& b = bundle();
  auto hook = sh_hook("sleep 30");
  hook["timeout"] = 1;
  add_hook("prestart", hook);
  b.args({"probe", "pause"});
  b.save();
  auto r = b.oci({"create", "--bundle", b.dir(), b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("prestart hook /bin/sh timed out after 1 s"));
  EXPECT_NE(b.oci({"state", b.id()}).status, 0);
}

TEST_F(ConfigHooks, FailingPoststartHookDoesNotStopTheContainer) {
  add_hook("poststart", sh_hook("exit 4"));
  auto r = run({"probe", "exit", "6"});
  EXPECT_EQ(r.status, 6) << r.err;
  EXPECT_THAT(r.err, HasSubstr("poststart hook /bin/sh"));
}

}  // namespace
}  // namespace forker::test
