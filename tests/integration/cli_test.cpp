// The command line as runc's users see it: spec, features, --version, kill, state, list, and
// run's exit status and pid file.
#include <gmock/gmock.h>

#include <filesystem>
#include <regex>

#include "integration/support/harness.hpp"

namespace forker::test {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace fs = std::filesystem;
using json = nlohmann::json;

class Cli : public ContainerTest {
 protected:
  // forker-oci ARGS with its stdout (and so the container's) going to the file OUT.
  RunResult oci_to_file(const std::vector<std::string>& args, const std::string& out) {
    std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" >\"$OUT\"",
                                     FORKER_OCI_BIN, "--root", bundle().root()};
    argv.insert(argv.end(), args.begin(), args.end());
    setenv("OUT", out.c_str(), 1);
    auto r = run_cmd(argv);
    unsetenv("OUT");
    return r;
  }
  // Polls until FILE holds TEXT (bounded); returns what it holds.
  static std::string wait_for_text(const std::string& file, const std::string& text) {
    std::string t;
    for (int i = 0; i < 500; ++i) {
      t = read_text(file);
      if (t.find(text) != std::string::npos) break;
      usleep(10000);
    }
    return t;
  }
  std::string status() {
    auto r = bundle().oci({"state", bundle().id()});
    return r.status == 0 ? json::parse(r.out)["status"].get<std::string>() : "gone";
  }
  bool wait_status(const std::string& want) {
    for (int i = 0; i < 250; ++i) {
      if (status() == want) return true;
      usleep(20000);
    }
    return false;
  }
  // run -d of a probe that records the signals it receives in rootfs/trap.
  void start_trap() {
    auto& b = bundle();
    b.args({"probe", "trap", "/trap"});
    b.save();
    std::string out = b.dir() + "/init.out";
    auto r = oci_to_file({"run", "-d", "--bundle", b.dir(), b.id()}, out);
    ASSERT_EQ(r.status, 0) << r.err;
    ASSERT_EQ(wait_for_text(out, "ready"), "ready\n");
  }
  void drop_pid_namespace() {
    auto& ns = bundle().config()["linux"]["namespaces"];
    json kept = json::array();
    for (auto& n : ns)
      if (n["type"] != "pid") kept.push_back(n);
    ns = kept;
  }

};

TEST_F(Cli, SpecWritesAConfigThatRunAccepts) {
  auto& b = bundle();
  fs::remove(b.dir() + "/config.json");
  auto r = run_oci({"spec", "--bundle", b.dir()}, "");
  ASSERT_EQ(r.status, 0) << r.err;
  auto spec = json::parse(read_text(b.dir() + "/config.json"));
  EXPECT_EQ(spec["ociVersion"], "1.1.0");
  EXPECT_EQ(spec["root"]["path"], "rootfs");
  EXPECT_EQ(spec["process"]["terminal"], true);
  spec["process"]["terminal"] = false;
  spec["process"]["args"] = {"/probe", "hostname"};
  write_text(b.dir() + "/config.json", spec.dump());
  r = b.oci({"run", "--bundle", b.dir(), b.id()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, spec["hostname"].get<std::string>() + "\n");
  // The spec's root is read-only.
  spec["process"]["args"] = {"/probe", "write", "/x", "y"};
  write_text(b.dir() + "/config.json", spec.dump());
  r = b.oci({"run", "--bundle", b.dir(), b.id()});
  EXPECT_THAT(r.out, HasSubstr("Read-only file system"));
}

TEST_F(Cli, SpecRefusesToOverwrite) {
  auto& b = bundle();
  write_text(b.dir() + "/config.json", "mine");
  auto r = run_oci({"spec", "-b", b.dir()}, "");
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("exists"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(read_text(b.dir() + "/config.json"), "mine");
  // Without --bundle it writes to the current directory: run it from the bundle dir.
  r = run_cmd({"/bin/sh", "-c", "cd \"$0\" && exec \"$1\" spec", b.dir(), FORKER_OCI_BIN});
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(read_text(b.dir() + "/config.json"), "mine");
  fs::remove(b.dir() + "/config.json");
  r = run_cmd({"/bin/sh", "-c", "cd \"$0\" && exec \"$1\" spec", b.dir(), FORKER_OCI_BIN});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NO_THROW(json::parse(read_text(b.dir() + "/config.json")));
}

TEST_F(Cli, SpecRootless) {
  auto& b = bundle();
  fs::remove(b.dir() + "/config.json");
  auto r = run_oci({"spec", "--rootless", "--bundle", b.dir()}, "");
  ASSERT_EQ(r.status, 0) << r.err;
  auto spec = json::parse(read_text(b.dir() + "/config.json"));
  std::vector<std::string> types;
  for (auto& n : spec["linux"]["namespaces"]) types.push_back(n["type"]);
  EXPECT_THAT(types, Contains("user"));
  EXPECT_THAT(types, ::testing::Not(Contains("network")));
  ASSERT_EQ(spec["linux"]["uidMappings"].size(), 1u);
  EXPECT_EQ(spec["linux"]["uidMappings"][0]["containerID"], 0);
  EXPECT_EQ(spec["linux"]["uidMappings"][0]["hostID"], getuid());
  EXPECT_EQ(spec["linux"]["uidMappings"][0]["size"], 1);
  ASSERT_EQ(spec["linux"]["gidMappings"].size(), 1u);
  EXPECT_EQ(spec["linux"]["gidMappings"][0]["hostID"], getgid());
}

TEST_F(Cli, FeaturesIsValidJson) {
  auto r = run_oci({"features"}, "");
  ASSERT_EQ(r.status, 0) << r.err;
  json f;
  ASSERT_NO_THROW(f = json::parse(r.out)) << r.out;
  EXPECT_EQ(f["ociVersionMin"], "1.0.0");
  EXPECT_TRUE(f["ociVersionMax"].is_string());
  EXPECT_EQ(f["ociVersionMax"].get<std::string>().substr(0, 2), "1.");
  ASSERT_TRUE(f["linux"]["namespaces"].is_array());
  std::vector<std::string> ns = f["linux"]["namespaces"];
  for (const char* t : {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"})
    EXPECT_THAT(ns, Contains(t));
  EXPECT_TRUE(f["hooks"].is_array());
  EXPECT_TRUE(f["mountOptions"].is_array());
  EXPECT_THAT(f["linux"]["capabilities"].get<std::vector<std::string>>(), Contains("CAP_SYS_ADMIN"));
}

TEST_F(Cli, Version) {
  for (const char* flag : {"--version", "-v"}) {
    auto r = run_oci({flag}, "");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("forker-oci version "));
    EXPECT_THAT(r.out, HasSubstr("spec: 1."));
  }
}

TEST_F(Cli, KillWithNumberAndName) {
  start_trap();
  auto& b = bundle();
  auto r = b.oci({"kill", b.id(), "SIGUSR1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(wait_for_text(b.rootfs() + "/trap", "10\n"), "10\n");
  r = b.oci({"kill", b.id(), "USR2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(wait_for_text(b.rootfs() + "/trap", "12\n"), "10\n12\n");
  r = b.oci({"kill", b.id(), "1"});  // SIGHUP by number
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(wait_for_text(b.rootfs() + "/trap", "1\n"), "10\n12\n1\n");
  EXPECT_EQ(status(), "running");
  r = b.oci({"kill", b.id(), "9"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(wait_status("stopped"));
  r = b.oci({"kill", b.id(), "9"});
  EXPECT_NE(r.status, 0) << "a stopped container cannot be signalled";
  EXPECT_THAT(r.err, HasSubstr("not running"));
  EXPECT_EQ(b.oci({"delete", b.id()}).status, 0);
}

TEST_F(Cli, KillDefaultsToSigterm) {
  start_trap();
  auto& b = bundle();
  auto r = b.oci({"kill", b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(wait_for_text(b.rootfs() + "/trap", "15\n"), "15\n");
  EXPECT_TRUE(wait_status("stopped"));
  EXPECT_EQ(b.oci({"delete", b.id()}).status, 0);
}

TEST_F(Cli, KillAllSignalsEveryProcess) {
  start_trap();
  auto& b = bundle();
  std::string out = b.dir() + "/exec.out";
  auto r = oci_to_file({"exec", "-d", b.id(), "/probe", "trap", "/trap2"}, out);
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_EQ(wait_for_text(out, "ready"), "ready\n");
  r = b.oci({"kill", "--all", b.id(), "SIGUSR1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(wait_for_text(b.rootfs() + "/trap", "10\n"), "10\n");
  EXPECT_EQ(wait_for_text(b.rootfs() + "/trap2", "10\n"), "10\n");
  // Without --all only the init gets it.
  r = b.oci({"kill", b.id(), "SIGUSR2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(wait_for_text(b.rootfs() + "/trap", "12\n"), "10\n12\n");
  r = b.oci({"kill", "-a", b.id(), "KILL"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(wait_status("stopped"));
  EXPECT_EQ(read_text(b.rootfs() + "/trap2"), "10\n");
  EXPECT_EQ(b.oci({"delete", b.id()}).status, 0);
}

TEST_F(Cli, StateFields) {
  auto& b = bundle();
  b.config()["annotations"] = {{"org.example.key", "value"}};
  b.args({"probe", "sleep", "600"});
  b.save();
  auto r = b.oci({"create", "--bundle", b.dir(), b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  r = b.oci({"state", b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  json st = json::parse(r.out);
  EXPECT_EQ(st["ociVersion"].get<std::string>().substr(0, 2), "1.");
  EXPECT_EQ(st["id"], b.id());
  EXPECT_EQ(st["status"], "created");
  ASSERT_TRUE(st["pid"].is_number_integer());
  int pid = st["pid"];
  EXPECT_GT(pid, 0);
  EXPECT_TRUE(fs::exists("/proc/" + std::to_string(pid)));
  EXPECT_EQ(st["bundle"], b.dir());
  EXPECT_EQ(st["rootfs"], b.rootfs());
  ASSERT_TRUE(st["created"].is_string());
  EXPECT_TRUE(std::regex_match(st["created"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d))")))
      << st["created"];
  ASSERT_TRUE(st.contains("owner"));
  EXPECT_TRUE(st["owner"].is_string());
  EXPECT_EQ(st["annotations"]["org.example.key"], "value");
  ASSERT_EQ(b.oci({"start", b.id()}).status, 0);
  st = json::parse(b.oci({"state", b.id()}).out);
  EXPECT_EQ(st["status"], "running");
  EXPECT_EQ(st["pid"], pid);
  ASSERT_EQ(b.oci({"kill", b.id(), "KILL"}).status, 0);
  ASSERT_TRUE(wait_status("stopped"));
  st = json::parse(b.oci({"state", b.id()}).out);
  EXPECT_EQ(st["id"], b.id());
  EXPECT_EQ(b.oci({"delete", b.id()}).status, 0);
  r = b.oci({"state", b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
}

TEST_F(Cli, ListJson) {
  auto& b = bundle();
  auto r = b.oci({"list", "-f", "json"});
  ASSERT_EQ(r.status, 0) << r.err;
  json l = json::parse(r.out.empty() ? "[]" : r.out);
  EXPECT_TRUE(l.is_array() && l.empty()) << r.out;
  b.config()["annotations"] = {{"a", "b"}};
  b.args({"probe", "sleep", "600"});
  b.save();
  ASSERT_EQ(b.oci({"run", "-d", "--bundle", b.dir(), b.id()}).status, 0);
  l = json::parse(b.oci({"list", "--format", "json"}).out);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0]["id"], b.id());
  EXPECT_EQ(l[0]["status"], "running");
  EXPECT_GT(l[0]["pid"].get<int>(), 0);
  EXPECT_EQ(l[0]["bundle"], b.dir());
  EXPECT_EQ(l[0]["rootfs"], b.rootfs());
  EXPECT_TRUE(l[0]["created"].is_string());
  EXPECT_EQ(l[0]["annotations"]["a"], "b");
  // The table names it too.
  EXPECT_THAT(b.oci({"list"}).out, HasSubstr(b.id()));
  r = b.oci({"list", "-f", "yaml"});
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
}

// A container killed by signal N makes run exit 128+N, as a shell reports it. A pid namespace's
// init cannot kill itself, so the probe runs without one.
TEST_F(Cli, RunExitCodeForSignal) {
  auto& b = bundle();
  drop_pid_namespace();
  b.args({"probe", "selfkill", "9"});
  auto r = b.run();
  EXPECT_EQ(r.status, 137) << r.err;
  b.args({"probe", "selfkill", "15"});
  r = b.run();
  EXPECT_EQ(r.status, 143) << r.err;
  b.args({"probe", "exit", "0"});
  EXPECT_EQ(b.run().status, 0);
}

TEST_F(Cli, RunPidFile) {
  auto& b = bundle();
  drop_pid_namespace();  // so the probe sees its host pid
  b.args({"probe", "pid"});
  std::string pidfile = b.dir() + "/run.pid";
  auto r = b.run({"--pid-file", pidfile});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_text(pidfile) + "\n", r.out);
  // Detached, the pid file names the running init.
  b.args({"probe", "sleep", "600"});
  b.save();
  fs::remove(pidfile);
  r = b.oci({"run", "-d", "--pid-file", pidfile, "--bundle", b.dir(), b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_text(pidfile),
            std::to_string(json::parse(b.oci({"state", b.id()}).out)["pid"].get<int>()));
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
}

}  // namespace
}  // namespace forker::test
