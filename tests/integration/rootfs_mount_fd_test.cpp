// A container's root as a detached mount (image/overlay.hpp: overlay_mount_fd, bind_mount_fd),
// handed to runtime::run_container in CreateOptions.rootfs_mount_fd and attached by the init
// inside its own mount namespace (root.path is an empty directory). From inside, the container
// sees its layers and writes into the upper dir; from the host (this process) the mount table
// is the same before, while the container runs, and after, and never names the rootfs.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "image/overlay.hpp"
#include "integration/support/harness.hpp"
#include "oci/default_spec.hpp"
#include "runtime/container.hpp"

namespace forker {
namespace {

namespace fs = std::filesystem;
using test::read_text;
using test::write_text;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> mountinfo() {
  std::vector<std::string> lines;
  std::string text = read_text("/proc/self/mountinfo");
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// Lines of A missing from B, for failure messages (the table may also change under other
// programs on the host; this shows who).
std::string missing_from(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::string out;
  for (const auto& l : a)
    if (std::find(b.begin(), b.end(), l) == b.end()) out += "  " + l + "\n";
  return out;
}

std::string naming(const std::vector<std::string>& lines, const std::string& part) {
  std::string out;
  for (const auto& l : lines)
    if (l.find(part) != std::string::npos) out += "  " + l + "\n";
  return out;
}

struct Observed {
  int exit_code = -1;  // run_container's result; -1 when it failed or timed out
  std::string output;  // the container's stdout and stderr (and run_container's error)
  std::vector<std::string> mounts_during;
};

class RootfsMountFdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT();
    if (!test::have_busybox()) GTEST_SKIP() << "needs a static /bin/busybox for the layers";
    char tmpl[] = "/tmp/forker-mntfd-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    state_ = dir_ + "/state";
    bundle_ = dir_ + "/bundle";
    rootfs_ = bundle_ + "/rootfs";
    fs::create_directories(rootfs_);  // empty: the detached mount is attached on it
    lower1_ = dir_ + "/layers/lower1";
    lower2_ = dir_ + "/layers/lower2";
    upper_ = dir_ + "/upper";
    work_ = dir_ + "/work";
    for (const auto& d : {upper_, work_}) fs::create_directories(d);
    make_base_layer(lower1_);
    fs::create_directories(lower2_);
    write_text(lower2_ + "/top", "from lower2\n");
    write_text(lower2_ + "/shadowed", "lower2 wins\n");
    before_ = mountinfo();
  }

  void TearDown() override {
    if (dir_.empty()) return;
    runtime::GlobalOptions g;
    g.root = state_;
    std::error_code ec;
    std::vector<std::string> ids;
    for (const auto& e : fs::directory_iterator(state_, ec)) ids.push_back(e.path().filename());
    for (const auto& id : ids) auto _ = runtime::delete_container(g, id, true);
    if (!shared_.empty()) ::umount2(shared_.c_str(), MNT_DETACH);
    auto after = mountinfo();
    EXPECT_EQ(naming(after, dir_), "") << "mounts left under " << dir_;
    // Whatever a failed test left mounted goes, deepest first, before the files.
    for (auto it = after.rbegin(); it != after.rend(); ++it) {
      std::istringstream f(*it);
      std::string id, parent, devno, root, point;
      f >> id >> parent >> devno >> root >> point;
      if (point.starts_with(dir_)) ::umount2(point.c_str(), MNT_DETACH);
    }
    fs::remove_all(dir_, ec);
  }

  // The base layer: busybox and the probe (both static), the directories the default mounts
  // need (a read-only root cannot have them made), a passwd, a file lower2 shadows.
  void make_base_layer(const std::string& dir) {
    for (const char* d : {"bin", "etc", "proc", "sys", "dev", "tmp"})
      fs::create_directories(dir + "/" + d);
    fs::copy_file("/bin/busybox", dir + "/bin/busybox");
    for (const char* a : {"sh", "cat", "echo", "sleep", "grep", "rm", "touch"})
      fs::create_symlink("busybox", dir + "/bin/" + a);
    fs::copy_file(FORKER_PROBE_BIN, dir + "/probe");
    write_text(dir + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    write_text(dir + "/etc/greeting", "from lower1\n");
    write_text(dir + "/shadowed", "lower1\n");
  }

  // config.json: runc's default spec running SCRIPT under sh, root.path the empty rootfs.
  void write_bundle(const std::string& script) {
    auto config = nlohmann::json::parse(oci::default_spec_json(false, 0, 0));
    config["process"]["terminal"] = false;
    config["process"]["args"] = {"/bin/sh", "-c", script};
    config["root"] = {{"path", "rootfs"}, {"readonly", false}};
    write_text(bundle_ + "/config.json", config.dump(2));
  }

  // Runs the container in the foreground (runtime::run_container, as `forker run` does) in a
  // child of this test, its stdio going to a file. The script ends by printing "ready" and
  // sleeping: then the host's mount table is read and the container killed.
  Observed run_observed(int root_mount_fd, const std::string& id) {
    Observed o;
    std::string out = dir_ + "/" + id + ".out";
    pid_t runner = ::fork();
    if (runner == 0) {
      int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) ::_exit(251);
      runtime::GlobalOptions g;
      g.root = state_;
      runtime::CreateOptions c;
      c.id = id;
      c.bundle = bundle_;
      c.rootfs_mount_fd = root_mount_fd;
      auto code = runtime::run_container(g, c, false);
      if (!code) {
        std::string m = "run_container: " + code.error().message() + "\n";
        ssize_t ignored = ::write(2, m.data(), m.size());
        (void)ignored;
        ::_exit(250);
      }
      ::_exit(*code);
    }
    EXPECT_GT(runner, 0);
    if (runner <= 0) return o;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    int status = 0;
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      if (read_text(out).find("ready\n") != std::string::npos) break;
      if (::waitpid(runner, &status, WNOHANG) == runner) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!exited) {
      o.mounts_during = mountinfo();
      runtime::GlobalOptions g;
      g.root = state_;
      auto killed = runtime::kill_container(g, id, SIGKILL, false);
      EXPECT_TRUE(killed) << killed.error().message();
      if (!killed) ::kill(runner, SIGKILL);
      while (::waitpid(runner, &status, 0) < 0 && errno == EINTR) {
      }
    }
    o.output = read_text(out);
    if (WIFEXITED(status) && WEXITSTATUS(status) != 250) o.exit_code = WEXITSTATUS(status);
    return o;
  }

  // The host's table while the container ran and after it: as many lines as before, none new
  // (a mount on the rootfs, or one propagated to a layer's own mount), none naming the rootfs.
  void expect_host_mounts_unchanged(const Observed& o) {
    for (const auto& [when, now] : {std::pair{"during", o.mounts_during}, {"after", mountinfo()}}) {
      EXPECT_EQ(now.size(), before_.size()) << when;
      EXPECT_EQ(missing_from(now, before_), "") << "appeared " << when;
      EXPECT_EQ(missing_from(before_, now), "") << "went " << when;
      EXPECT_EQ(naming(now, rootfs_), "") << when;
    }
  }

  std::string dir_, state_, bundle_, rootfs_, lower1_, lower2_, upper_, work_;
  std::string shared_;  // a shared mount the test made (unmounted by TearDown)
  std::vector<std::string> before_;
};

// What the container prints: the layers' files, whether a write reaches its root, the root's
// line from its own mountinfo (mount point "/" is the 5th field), and the fds a process of its
// gets (the root mount's fd is O_CLOEXEC: gone at the init's execve).
const char* kLookAround =
    "cat /etc/greeting /top /shadowed 2>&1; "
    "/probe write /written from-inside; "
    "grep -E '^[^ ]+ [^ ]+ [^ ]+ [^ ]+ / ' /proc/self/mountinfo; "
    "echo fds:; /probe fds; echo :fds; "
    "echo ready; exec sleep 600";

// The fd numbers between "fds:" and ":fds" in OUTPUT.
std::vector<std::string> fds_seen(const std::string& output) {
  std::vector<std::string> out;
  size_t from = output.find("fds:\n"), to = output.find(":fds\n");
  if (from == std::string::npos || to == std::string::npos) return {"(no fds listed)"};
  std::istringstream in(output.substr(from + 5, to - from - 5));
  for (std::string line; std::getline(in, line);) out.push_back(line.substr(0, line.find(' ')));
  return out;
}

TEST_F(RootfsMountFdTest, OverlayOfTwoLayersIsInvisibleFromTheHost) {
  write_bundle(kLookAround);
  auto root = image::overlay_mount_fd(image::OverlaySpec{{lower2_, lower1_}, upper_, work_, false});
  ASSERT_TRUE(root) << root.error().message();
  EXPECT_EQ(fcntl(root->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  Observed o = run_observed(root->get(), "mntfd-overlay");
  root->reset();
  EXPECT_EQ(o.exit_code, 128 + SIGKILL) << o.output;
  EXPECT_THAT(o.output, HasSubstr("from lower1\nfrom lower2\nlower2 wins\n"));
  EXPECT_THAT(o.output, HasSubstr("ok\n"));  // the probe's write
  EXPECT_THAT(o.output, HasSubstr(" / / rw,relatime - overlay "));
  EXPECT_THAT(o.output, Not(HasSubstr(rootfs_)));
  EXPECT_THAT(fds_seen(o.output), ::testing::ElementsAre("0", "1", "2")) << o.output;
  expect_host_mounts_unchanged(o);
  // The write went to the upper dir; the layers and the rootfs directory are untouched.
  EXPECT_EQ(read_text(upper_ + "/written"), "from-inside");
  EXPECT_FALSE(fs::exists(lower1_ + "/written"));
  EXPECT_FALSE(fs::exists(lower2_ + "/written"));
  EXPECT_TRUE(fs::is_empty(rootfs_));
}

// The layer sits on a shared mount (as "/" is under systemd): open_tree's clone would join its
// peer group, and the container's /proc, /dev, ... mounted on the clone would propagate back
// to the layer on the host. The clone is made private before anyone sees it.
// With a user namespace the init's mount namespace belongs to it; the overlay, made by the
// runtime in the initial one, is attached there all the same.
TEST_F(RootfsMountFdTest, OverlayInAUserNamespace) {
  write_bundle(kLookAround);
  auto config = nlohmann::json::parse(read_text(bundle_ + "/config.json"));
  config["linux"]["namespaces"].push_back({{"type", "user"}});
  config["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 0}, {"size", 65536}}};
  config["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 0}, {"size", 65536}}};
  write_text(bundle_ + "/config.json", config.dump(2));
  auto root = image::overlay_mount_fd(image::OverlaySpec{{lower2_, lower1_}, upper_, work_, false});
  ASSERT_TRUE(root) << root.error().message();
  Observed o = run_observed(root->get(), "mntfd-userns");
  root->reset();
  EXPECT_EQ(o.exit_code, 128 + SIGKILL) << o.output;
  EXPECT_THAT(o.output, HasSubstr("from lower1\nfrom lower2\nlower2 wins\nok\n"));
  expect_host_mounts_unchanged(o);
  EXPECT_EQ(read_text(upper_ + "/written"), "from-inside");
}

TEST_F(RootfsMountFdTest, ReadOnlyBindOfADirectoryOnASharedMount) {
  shared_ = dir_ + "/layers";
  ASSERT_EQ(::mount(shared_.c_str(), shared_.c_str(), nullptr, MS_BIND, nullptr), 0);
  ASSERT_EQ(::mount(nullptr, shared_.c_str(), nullptr, MS_SHARED, nullptr), 0);
  before_ = mountinfo();
  write_bundle(kLookAround);
  auto root = image::bind_mount_fd(lower1_, true);
  ASSERT_TRUE(root) << root.error().message();
  EXPECT_EQ(fcntl(root->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  Observed o = run_observed(root->get(), "mntfd-bind");
  root->reset();
  EXPECT_EQ(o.exit_code, 128 + SIGKILL) << o.output;
  EXPECT_THAT(o.output, HasSubstr("from lower1\n"));
  EXPECT_THAT(o.output, HasSubstr("ERR /written: Read-only file system"));
  EXPECT_THAT(o.output, HasSubstr(" / ro,"));  // the root line of its mountinfo
  expect_host_mounts_unchanged(o);
  EXPECT_FALSE(fs::exists(lower1_ + "/written"));
  EXPECT_TRUE(fs::is_empty(rootfs_));
  EXPECT_TRUE(fs::is_empty(lower1_ + "/proc"));
}

// Kernels without lowerdir+ (before 6.8) get every lower in one fsconfig "lowerdir" value of at
// most 255 bytes; longer paths are named by /proc/self/fd links. Driven here directly; an upper
// path with ':' checks that upperdir is escaped.
TEST_F(RootfsMountFdTest, JoinedLowerdirWithLayersNamedByFd) {
  std::vector<std::string> lowers = {lower2_};
  for (int i = 0; i < 3; ++i) {
    std::string layer = dir_ + "/layers/" + std::string(90, static_cast<char>('a' + i));
    fs::create_directories(layer);
    write_text(layer + "/layer" + std::to_string(i), std::to_string(i) + "\n");
    lowers.push_back(layer);
  }
  lowers.push_back(lower1_);
  std::string upper = dir_ + "/up:per", work = dir_ + "/wo:rk";
  fs::create_directories(upper);
  fs::create_directories(work);
  write_bundle(
      "cat /layer0 /layer1 /layer2 /top /etc/greeting; /probe write /written x; "
      "grep -o 'lowerdir=[^,]*' /proc/self/mountinfo; echo ready; exec sleep 600");
  auto root = image::overlay_fsmount_joined(image::OverlaySpec{lowers, upper, work, false});
  ASSERT_TRUE(root) << root.error().message();
  Observed o = run_observed(root->get(), "mntfd-joined");
  root->reset();
  EXPECT_THAT(o.output, HasSubstr("0\n1\n2\nfrom lower2\nfrom lower1\nok\n"));
  EXPECT_THAT(o.output, HasSubstr("lowerdir=/proc/self/fd/"));  // 5 paths: more than 255 bytes
  expect_host_mounts_unchanged(o);
  EXPECT_EQ(read_text(upper + "/written"), "x");
}

TEST_F(RootfsMountFdTest, DetachedRootWithoutAMountNamespaceIsRefused) {
  auto config = nlohmann::json::parse(oci::default_spec_json(false, 0, 0));
  config["process"]["terminal"] = false;
  config["process"]["args"] = {"/bin/true"};
  config["root"] = {{"path", "rootfs"}, {"readonly", false}};
  config["mounts"] = nlohmann::json::array();
  auto& ns = config["linux"]["namespaces"];
  for (auto it = ns.begin(); it != ns.end();) it = (*it)["type"] == "mount" ? ns.erase(it) : it + 1;
  write_text(bundle_ + "/config.json", config.dump(2));
  auto root = image::bind_mount_fd(lower1_, true);
  ASSERT_TRUE(root) << root.error().message();
  runtime::GlobalOptions g;
  g.root = state_;
  runtime::CreateOptions c;
  c.id = "mntfd-nons";
  c.bundle = bundle_;
  c.rootfs_mount_fd = root->get();
  auto code = runtime::run_container(g, c, false);
  ASSERT_FALSE(code);
  EXPECT_THAT(code.error().message(), HasSubstr("a detached root mount needs a mount namespace"));
  EXPECT_FALSE(fs::exists(state_ + "/mntfd-nons"));
  EXPECT_EQ(naming(mountinfo(), dir_), "");
}

TEST_F(RootfsMountFdTest, DetachedOverlayRefusesHalfSpecs) {
  EXPECT_FALSE(image::overlay_mount_fd(image::OverlaySpec{}));
  auto half = image::overlay_mount_fd(image::OverlaySpec{{lower2_, lower1_}, upper_, "", false});
  ASSERT_FALSE(half);
  EXPECT_THAT(half.error().message(), HasSubstr("upperdir and workdir go together"));
  auto missing =
      image::overlay_mount_fd(image::OverlaySpec{{dir_ + "/nope", lower1_}, "", "", false});
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message(), HasSubstr(dir_ + "/nope"));
}

}  // namespace
}  // namespace forker
