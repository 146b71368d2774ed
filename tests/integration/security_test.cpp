// Container escapes of the past, each tried from inside a real container: they must fail.
#include <gmock/gmock.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "integration/support/harness.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
namespace fs = std::filesystem;

class Security : public ::testing::Test {
 protected:
  void SetUp() override { REQUIRE_ROOT(); }
  void TearDown() override {
    for (const auto& p : host_paths_) {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
    if (!bundle_) return;
    std::string id = bundle_->id();
    std::string root = bundle_->root();
    std::string dir = bundle_->dir();
    bundle_.reset();
    EXPECT_THAT(leftovers(dir, id, root), IsEmpty());
  }
  Bundle& bundle() {
    if (!bundle_)
      bundle_ = std::make_unique<Bundle>(::testing::UnitTest::GetInstance()->current_test_info()->name());
    return *bundle_;
  }
  // A host path the test may create (or a broken runtime may); removed in TearDown.
  std::string host_path(const std::string& name) {
    std::string p = "/tmp/" + name + "-" + std::to_string(getpid());
    std::error_code ec;
    fs::remove_all(p, ec);
    host_paths_.push_back(p);
    return p;
  }

  // forker-oci ARGS run by /bin/sh with fd 7 open on FD7_SOURCE (no O_CLOEXEC) and stdout
  // redirected to OUT, so a container that outlives the command can still print.
  RunResult oci_via_shell(const std::vector<std::string>& args, const std::string& out,
                          const std::string& fd7_source = "/etc/hostname") {
    std::vector<std::string> argv = {"/bin/sh", "-c",
                                     "exec 7<\"$FD7\"; exec \"$0\" \"$@\" >\"$OUT\"",
                                     FORKER_OCI_BIN, "--root", bundle().root()};
    argv.insert(argv.end(), args.begin(), args.end());
    setenv("FD7", fd7_source.c_str(), 1);
    setenv("OUT", out.c_str(), 1);
    auto r = run_cmd(argv);
    unsetenv("FD7");
    unsetenv("OUT");
    return r;
  }

  bool wait_status(const std::string& status) {
    auto& b = bundle();
    for (int i = 0; i < 250; ++i) {
      auto r = b.oci({"state", b.id()});
      if (r.status == 0 && nlohmann::json::parse(r.out)["status"] == status) return true;
      usleep(20000);
    }
    return false;
  }

  std::vector<std::string> host_paths_;
  std::unique_ptr<Bundle> bundle_;
};

std::set<int> fd_numbers(const std::string& probe_fds_output) {
  std::set<int> out;
  std::istringstream in(probe_fds_output);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.insert(std::stoi(line));
  return out;
}

// Size, mtime and a content hash of a file.
std::string fingerprint(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) < 0) return "missing";
  std::string text = read_text(path);
  return std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + " " + std::to_string(std::hash<std::string>{}(text));
}

bool host_mounted_on(const std::string& path) {
  std::ifstream mi("/proc/self/mountinfo");
  for (std::string line; std::getline(mi, line);)
    if (line.find(path) != std::string::npos) return true;
  return false;
}

// --- CVE-2019-5736: the container must never reach the runtime's binary through /proc/PID/exe.

TEST_F(Security, RuntimeBinaryNotReachableThroughProcExe) {
  auto& b = bundle();
  std::string before = fingerprint(FORKER_OCI_BIN);
  // The init is the user's program itself, not a runtime process waiting around.
  b.args({"probe", "exes"});
  auto r = b.run();
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 /probe\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("forker")));
  b.args({"probe", "open-write", "/proc/self/exe"});
  r = b.run();
  EXPECT_THAT(r.out, HasSubstr("ERR")) << "the running binary must not be writable";

  // exec: the exec'd process is the program too, and cannot write the init's binary.
  b.args({"probe", "sleep", "600"});
  b.save();
  r = b.oci({"run", "-d", "--bundle", b.dir(), b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  r = b.oci({"exec", b.id(), "/probe", "exes"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 /probe\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("forker")));
  r = b.oci({"exec", b.id(), "/probe", "readlink", "/proc/self/exe"});
  EXPECT_EQ(r.out, "/probe\n");
  r = b.oci({"exec", b.id(), "/probe", "open-write", "/proc/1/exe"});
  EXPECT_THAT(r.out, ::testing::AnyOf(HasSubstr("Text file busy"), HasSubstr("Permission denied")))
      << r.out;
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
  EXPECT_EQ(fingerprint(FORKER_OCI_BIN), before) << "the runtime binary changed";
}

// Between create and start the init waits inside the runtime's code. An exec'd process (root in
// the container) tries CVE-2019-5736's move: hold /proc/1/exe open (O_PATH) while the init runs
// the runtime, and reopen it for writing once the container started and no runtime process runs
// any more. Returns what the probe reported ("ERR ...", "held\nnever\n" or "held\nWRITABLE\n").

// Until start the init is a clone of the runtime; a process exec'd next to it could hold
// /proc/1/exe and reopen it for writing later. So exec into a created container is refused, with
// or without CAP_SYS_PTRACE, and the init is non-dumpable meanwhile.
TEST_F(Security, ExecIntoCreatedContainerIsRefused) {
  auto& b = bundle();
  std::string before = fingerprint(FORKER_OCI_BIN);
  b.args({"probe", "sleep", "600"});
  b.save();
  auto r = b.oci({"create", "--bundle", b.dir(), b.id()});
  ASSERT_EQ(r.status, 0) << r.err;
  for (std::vector<std::string> flags : {std::vector<std::string>{},
                                         std::vector<std::string>{"--cap", "CAP_SYS_PTRACE"}}) {
    std::vector<std::string> args = {"exec"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), {b.id(), "/probe", "hold-exe", "/proc/1/exe"});
    r = b.oci(args);
    EXPECT_NE(r.status, 0);
    EXPECT_THAT(r.err, HasSubstr("cannot exec in a container that is created")) << r.err;
  }
  EXPECT_EQ(b.oci({"start", b.id()}).status, 0);
  r = b.oci({"exec", b.id(), "/probe", "open-write", "/proc/1/exe"});
  EXPECT_THAT(r.out, HasSubstr("ERR")) << r.out;
  r = b.oci({"exec", b.id(), "/probe", "exes"});
  EXPECT_THAT(r.out, Not(HasSubstr("forker"))) << r.out;
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
  EXPECT_EQ(fingerprint(FORKER_OCI_BIN), before) << "the runtime binary changed";
}

// --- CVE-2024-21626: no host fd may reach the container.

TEST_F(Security, NoFdLeakIntoRun) {
  auto& b = bundle();
  b.args({"probe", "fds"});
  b.save();
  std::string out = b.dir() + "/out";
  auto r = oci_via_shell({"run", "--bundle", b.dir(), b.id()}, out);
  ASSERT_EQ(r.status, 0) << r.err;
  std::string text = read_text(out);
  EXPECT_EQ(fd_numbers(text), (std::set<int>{0, 1, 2})) << text;
}

TEST_F(Security, NoFdLeakIntoCreateStart) {
  auto& b = bundle();
  b.args({"probe", "fds"});
  b.save();
  std::string out = b.dir() + "/out";
  auto r = oci_via_shell({"create", "--bundle", b.dir(), b.id()}, out);
  ASSERT_EQ(r.status, 0) << r.err;
  r = oci_via_shell({"start", b.id()}, b.dir() + "/start.out");
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_TRUE(wait_status("stopped"));
  std::string text = read_text(out);
  EXPECT_EQ(fd_numbers(text), (std::set<int>{0, 1, 2})) << text;
  EXPECT_EQ(b.oci({"delete", b.id()}).status, 0);
}

TEST_F(Security, NoFdLeakIntoExec) {
  auto& b = bundle();
  b.args({"probe", "sleep", "600"});
  b.save();
  ASSERT_EQ(b.oci({"run", "-d", "--bundle", b.dir(), b.id()}).status, 0);
  std::string out = b.dir() + "/out";
  auto r = oci_via_shell({"exec", b.id(), "/probe", "fds"}, out);
  ASSERT_EQ(r.status, 0) << r.err;
  std::string text = read_text(out);
  EXPECT_EQ(fd_numbers(text), (std::set<int>{0, 1, 2})) << text;
  // The same through --process.
  nlohmann::json p = b.config()["process"];
  p["args"] = {"/probe", "fds"};
  write_text(b.dir() + "/process.json", p.dump());
  r = oci_via_shell({"exec", "--process", b.dir() + "/process.json", b.id()}, out);
  ASSERT_EQ(r.status, 0) << r.err;
  text = read_text(out);
  EXPECT_EQ(fd_numbers(text), (std::set<int>{0, 1, 2})) << text;
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
}

// A cwd through a leaked directory fd would start the process outside the rootfs (getcwd then
// reads "(unreachable)/..."): refused, or resolved inside the container.
TEST_F(Security, CwdThroughLeakedFdStaysInside) {
  auto& b = bundle();
  b.config()["process"]["cwd"] = "/proc/self/fd/7";
  b.args({"probe", "cwd"});
  b.save();
  std::string out = b.dir() + "/out";
  auto r = oci_via_shell({"run", "--bundle", b.dir(), b.id()}, out, "/");
  std::string text = read_text(out);
  if (r.status == 0) {
    EXPECT_EQ(text.substr(0, 1), "/") << text;
    EXPECT_THAT(text, Not(HasSubstr("unreachable")));
  } else {
    EXPECT_THAT(r.err, HasSubstr("/proc/self/fd/7"));
    EXPECT_EQ(text, "");
  }
  // The same through exec --cwd.
  b.args({"probe", "sleep", "600"});
  b.config()["process"]["cwd"] = "/";
  b.save();
  ASSERT_EQ(b.oci({"run", "-d", "--bundle", b.dir(), b.id()}).status, 0);
  for (int fd = 3; fd < 10; ++fd) {
    std::string cwd = "/proc/self/fd/" + std::to_string(fd);
    r = oci_via_shell({"exec", "--cwd", cwd, b.id(), "/probe", "cwd"}, out, "/");
    text = read_text(out);
    SCOPED_TRACE(cwd);
    if (r.status == 0) {
      EXPECT_EQ(text.substr(0, 1), "/") << text;
      EXPECT_THAT(text, Not(HasSubstr("unreachable")));
    } else {
      EXPECT_EQ(text, "");
    }
  }
  EXPECT_EQ(b.oci({"delete", "-f", b.id()}).status, 0);
}

TEST_F(Security, CwdMissingOrSymlinkStaysInside) {
  auto& b = bundle();
  std::string outside = host_path("forker-cwd");
  // A cwd missing from the rootfs: refused, or made inside the rootfs; never on the host.
  b.config()["process"]["cwd"] = outside;
  b.args({"probe", "cwd"});
  auto r = b.run();
  if (r.status == 0) {
    EXPECT_EQ(r.out, outside + "\n");
    EXPECT_TRUE(fs::exists(b.rootfs() + outside));
  } else {
    EXPECT_THAT(r.err, HasSubstr(outside));
  }
  EXPECT_FALSE(fs::exists(outside)) << "cwd created on the host";
  // A symlink in the rootfs pointing far up resolves within the rootfs.
  fs::create_directories(b.rootfs() + "/tmp");
  write_text(b.rootfs() + "/tmp/inside-marker", "x");
  fs::create_symlink("../../../../../../../../../../tmp", b.rootfs() + "/evilcwd");
  b.config()["process"]["cwd"] = "/evilcwd";
  b.args({"probe", "ls", "."});
  r = b.run();
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "inside-marker\n");
}

// --- CVE-2019-19921: /proc in the image is a symlink; mounting through it would put a procfs
// wherever the image wants (on the host, when it points to a host path).
TEST_F(Security, ProcSymlinkInRootfsIsRefused) {
  auto& b = bundle();
  std::string target = host_path("forker-procsym");
  fs::create_directories(target);
  fs::create_symlink(target, b.rootfs() + "/proc");
  b.args({"probe", "pid"});
  auto r = b.run();
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_THAT(r.err, HasSubstr("symlink"));
  EXPECT_THAT(r.err, HasSubstr("/proc"));
  EXPECT_FALSE(host_mounted_on(target)) << "procfs mounted on the host path";
  EXPECT_TRUE(fs::is_empty(target));
  // The same symlink to a directory that exists inside the image.
  fs::create_directories(b.rootfs() + target);
  r = b.run();
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_THAT(r.err, HasSubstr("symlink"));
  EXPECT_FALSE(host_mounted_on(target));
  EXPECT_TRUE(fs::is_empty(b.rootfs() + target));
  EXPECT_EQ(b.oci({"list", "-q"}).out, "");
}

TEST_F(Security, SysSymlinkInRootfsIsRefused) {
  auto& b = bundle();
  std::string target = host_path("forker-syssym");
  fs::create_directories(target);
  fs::create_directories(b.rootfs() + target);
  fs::create_symlink(target, b.rootfs() + "/sys");
  auto r = b.run();
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_THAT(r.err, HasSubstr("symlink"));
  EXPECT_FALSE(host_mounted_on(target));
}

// A mount destination that is a symlink pointing far out of the rootfs: the mount lands inside
// the rootfs (where the link leads when resolved with the rootfs as /), never on the host.
TEST_F(Security, MountThroughSymlinkLandsInsideRootfs) {
  auto& b = bundle();
  std::string escape = host_path("forker-escape");
  std::string link = "/../../../../../../../.." + escape;
  fs::create_symlink(link, b.rootfs() + "/evil");
  fs::create_directories(b.dir() + "/src");
  write_text(b.dir() + "/src/from-bind", "x");
  b.config()["mounts"].push_back(
      {{"destination", "/evil"}, {"type", "bind"}, {"source", b.dir() + "/src"},
       {"options", {"bind"}}});
  b.args({"probe", "ls", escape});
  auto r = b.run();
  // As runc: the missing target of the dangling link is made inside the rootfs, mounted on.
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "from-bind\n");
  EXPECT_TRUE(fs::is_directory(b.rootfs() + escape)) << "made inside the rootfs";
  EXPECT_FALSE(fs::exists(escape)) << "created on the host";
  EXPECT_FALSE(host_mounted_on(escape));
}

TEST_F(Security, TmpfsThroughSymlinkToExistingHostDirLandsInside) {
  auto& b = bundle();
  std::string escape = host_path("forker-escape-tmpfs");
  fs::create_directories(escape);
  write_text(escape + "/host-marker", "x");
  fs::create_directories(b.rootfs() + escape);
  fs::create_symlink("/../../../../../../../.." + escape, b.rootfs() + "/evil");
  b.config()["mounts"].push_back(
      {{"destination", "/evil"}, {"type", "tmpfs"}, {"source", "tmpfs"}, {"options", {"size=1m"}}});
  b.args({"probe", "write", "/evil/from-container", "y"});
  auto r = b.run();
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "ok\n");
  EXPECT_FALSE(host_mounted_on(escape));
  EXPECT_FALSE(fs::exists(escape + "/from-container")) << "the container wrote on the host";
  EXPECT_TRUE(fs::exists(escape + "/host-marker"));
  // It went into the tmpfs inside the container, which is gone now.
  EXPECT_FALSE(fs::exists(b.rootfs() + escape + "/from-container"));
}

}  // namespace
}  // namespace forker::test
