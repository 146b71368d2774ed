// exec: a new process in a running container, with the flags runc's exec takes.
#include <gmock/gmock.h>

#include <filesystem>
#include <sstream>

#include "integration/support/harness.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
namespace fs = std::filesystem;

class Exec : public ContainerTest {
 protected:
  // A running container whose init sleeps (and prints nothing: nobody reads its stdout).
  void start_sleeper() {
    auto& b = bundle();
    b.args({"probe", "sleep", "600"});
    b.save();
    auto r = b.oci({"run", "-d", "--bundle", b.dir(), b.id()});
    ASSERT_EQ(r.status, 0) << r.err;
  }
  RunResult exec(const std::vector<std::string>& args) {
    std::vector<std::string> a = {"exec"};
    a.insert(a.end(), args.begin(), args.end());
    return bundle().oci(a);
  }
  void remove_container() {
    auto r = bundle().oci({"delete", "-f", bundle().id()});
    EXPECT_EQ(r.status, 0) << r.err;
  }
  std::string init_pid() {
    auto st = nlohmann::json::parse(bundle().oci({"state", bundle().id()}).out);
    return std::to_string(st["pid"].get<int>());
  }

};

// The value of FIELD ("CapEff", "NoNewPrivs", "NSpid", ...) in /proc/PID/status text.
std::string status_field(const std::string& status, const std::string& field) {
  std::istringstream in(status);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) {
      std::string v = line.substr(field.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return "";
}

TEST_F(Exec, RunsInTheRunningContainer) {
  start_sleeper();
  auto& b = bundle();
  auto r = exec({b.id(), "/probe", "hostname"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, b.config()["hostname"].get<std::string>() + "\n");
  // Not the init, but in the container's pid namespace.
  r = exec({b.id(), "/probe", "pid"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out, "1\n");
  EXPECT_NE(std::stoi(r.out), 0);
  EXPECT_LT(std::stoi(r.out), 100) << "a host pid: not in the container's pid namespace";
  remove_container();
}

TEST_F(Exec, ExitStatusPropagates) {
  start_sleeper();
  auto& b = bundle();
  EXPECT_EQ(exec({b.id(), "/probe", "exit", "0"}).status, 0);
  EXPECT_EQ(exec({b.id(), "/probe", "exit", "42"}).status, 42);
  // A process killed by a signal: 128+N, as run.
  EXPECT_EQ(exec({b.id(), "/probe", "selfkill", "9"}).status, 137);
  remove_container();
}

TEST_F(Exec, EnvAndCwdFlags) {
  start_sleeper();
  auto& b = bundle();
  auto r = exec({"--env", "FOO=bar", "-e", "PATH=/bin", b.id(), "/probe", "env"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("FOO=bar\n"));
  EXPECT_THAT(r.out, HasSubstr("PATH=/bin\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("PATH=/usr"))) << "PATH replaced, not doubled";
  EXPECT_THAT(r.out, HasSubstr("TERM=")) << "the config's env is kept";
  r = exec({"--cwd", "/bin", b.id(), "/probe", "cwd"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "/bin\n");
  r = exec({b.id(), "/probe", "cwd"});
  EXPECT_EQ(r.out, "/\n");
  remove_container();
}

TEST_F(Exec, UserAndAdditionalGids) {
  start_sleeper();
  auto& b = bundle();
  auto r = exec({"--user", "1000:1000", b.id(), "/probe", "id"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "uid=1000 gid=1000 euid=1000 egid=1000 groups=\n");
  r = exec({"--user", "1000:1000", "--additional-gids", "10", "--additional-gids", "20", b.id(),
            "/probe", "id"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "uid=1000 gid=1000 euid=1000 egid=1000 groups=10,20\n");
  r = exec({"--user", "1001", b.id(), "/probe", "id"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("uid=1001 gid=0"));
  // Not root any more: root's files are not writable.
  r = exec({"--user", "1000:1000", b.id(), "/probe", "write", "/probe", "x"});
  EXPECT_THAT(r.out, HasSubstr("ERR"));
  r = exec({"--user", "bogus", b.id(), "/probe", "id"});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("--user bogus"));
  remove_container();
}

TEST_F(Exec, CapFlagAddsCapability) {
  start_sleeper();
  auto& b = bundle();
  constexpr unsigned long long kNetAdmin = 1ull << 12;
  auto r = exec({b.id(), "/probe", "status"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(std::stoull(status_field(r.out, "CapEff"), nullptr, 16) & kNetAdmin, 0u);
  r = exec({"--cap", "CAP_NET_ADMIN", b.id(), "/probe", "status"});
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* set : {"CapEff", "CapPrm", "CapBnd"})
    EXPECT_NE(std::stoull(status_field(r.out, set), nullptr, 16) & kNetAdmin, 0u) << set;
  // The container's own capabilities are still there.
  constexpr unsigned long long kKill = 1ull << 5;
  EXPECT_NE(std::stoull(status_field(r.out, "CapEff"), nullptr, 16) & kKill, 0u);
  remove_container();
}

TEST_F(Exec, NoNewPrivsFlag) {
  auto& b = bundle();
  b.config()["process"]["noNewPrivileges"] = false;
  start_sleeper();
  auto r = exec({b.id(), "/probe", "status"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(status_field(r.out, "NoNewPrivs"), "0");
  r = exec({"--no-new-privs", b.id(), "/probe", "status"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(status_field(r.out, "NoNewPrivs"), "1");
  remove_container();
}

TEST_F(Exec, ProcessJson) {
  start_sleeper();
  auto& b = bundle();
  nlohmann::json p = {{"terminal", false},
                      {"user", {{"uid", 1000}, {"gid", 1000}, {"additionalGids", {5}}}},
                      {"args", {"/probe", "id"}},
                      {"env", {"PATH=/bin", "FROM_PROCESS_JSON=1"}},
                      {"cwd", "/bin"}};
  write_text(b.dir() + "/process.json", p.dump());
  auto r = exec({"--process", b.dir() + "/process.json", b.id()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "uid=1000 gid=1000 euid=1000 egid=1000 groups=5\n");
  p["args"] = {"/probe", "env"};
  write_text(b.dir() + "/process.json", p.dump());
  r = exec({"-p", b.dir() + "/process.json", b.id()});
  EXPECT_EQ(r.out, "PATH=/bin\nFROM_PROCESS_JSON=1\n");
  p["args"] = {"/probe", "cwd"};
  write_text(b.dir() + "/process.json", p.dump());
  r = exec({"-p", b.dir() + "/process.json", b.id()});
  EXPECT_EQ(r.out, "/bin\n");
  // A process.json that is not valid is refused with one line.
  write_text(b.dir() + "/process.json", "{\"args\": [");
  r = exec({"-p", b.dir() + "/process.json", b.id()});
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  remove_container();
}

// exec -d returns at once; the pid file names the process, which runs in the container's pid
// namespace and cgroup.
TEST_F(Exec, DetachWithPidFile) {
  start_sleeper();
  auto& b = bundle();
  std::string pidfile = b.dir() + "/exec.pid";
  auto r = exec({"-d", "--pid-file", pidfile, b.id(), "/probe", "sleep", "600"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string pid = read_text(pidfile);
  ASSERT_FALSE(pid.empty());
  std::string status = read_text("/proc/" + pid + "/status");
  ASSERT_FALSE(status.empty()) << "the exec'd process does not run";
  // NSpid: host pid, then the pid in the container.
  std::istringstream nspid(status_field(status, "NSpid"));
  std::string host_pid, container_pid;
  nspid >> host_pid >> container_pid;
  EXPECT_EQ(host_pid, pid);
  ASSERT_FALSE(container_pid.empty()) << "not in a child pid namespace";
  EXPECT_NE(container_pid, "1");
  r = exec({b.id(), "/probe", "ls", "/proc"});
  EXPECT_THAT(r.out, HasSubstr("\n" + container_pid + "\n")) << "the container cannot see it";
  r = exec({b.id(), "/probe", "cat", "/proc/" + container_pid + "/cmdline"});
  EXPECT_THAT(r.out, HasSubstr("sleep"));
  EXPECT_EQ(read_text("/proc/" + pid + "/cgroup"), read_text("/proc/" + init_pid() + "/cgroup"))
      << "not in the container's cgroup";
  for (const char* ns : {"pid", "mnt", "uts", "ipc", "net", "cgroup"})
    EXPECT_EQ(fs::read_symlink("/proc/" + pid + "/ns/" + ns),
              fs::read_symlink("/proc/" + init_pid() + "/ns/" + ns))
        << ns;
  remove_container();
  EXPECT_FALSE(fs::exists("/proc/" + pid + "/status")) << "delete -f left the exec'd process";
}

TEST_F(Exec, IntoStoppedContainerFails) {
  auto& b = bundle();
  b.args({"probe", "exit", "0"});
  b.save();
  ASSERT_EQ(b.oci({"run", "-d", "--bundle", b.dir(), b.id()}).status, 0);
  for (int i = 0; i < 250; ++i) {
    if (nlohmann::json::parse(b.oci({"state", b.id()}).out)["status"] == "stopped") break;
    usleep(20000);
  }
  ASSERT_EQ(nlohmann::json::parse(b.oci({"state", b.id()}).out)["status"], "stopped");
  auto r = exec({b.id(), "/probe", "pid"});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("stopped"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.out, "");
  r = exec({"no-such-container", "/probe", "pid"});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
  EXPECT_EQ(b.oci({"delete", b.id()}).status, 0);
}

TEST_F(Exec, MissingExecutableIsReported) {
  start_sleeper();
  auto& b = bundle();
  auto r = exec({b.id(), "nonexistent"});
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.err, HasSubstr("exec: \"nonexistent\": executable file not found in $PATH"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // The container is unharmed.
  EXPECT_EQ(nlohmann::json::parse(b.oci({"state", b.id()}).out)["status"], "running");
  remove_container();
}

}  // namespace
}  // namespace forker::test
