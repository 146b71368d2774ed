// open_in_root / mkdir_all_in_root on a temp dir standing in for a rootfs: symlinks in the
// image, even absolute or full of "..", must resolve inside it. Runs as any user.
#include "linux/safe_path.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace forker::linux {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class SafePathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/forker-safe-path-test-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    ASSERT_NE(p, nullptr);
    root_ = p;
    root_fd_ = UniqueFd(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_fd_.valid());
  }
  void TearDown() override {
    root_fd_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::string at(const std::string& rel) const { return root_ + "/" + rel; }
  void link(const std::string& target, const std::string& name) const {
    ASSERT_EQ(::symlink(target.c_str(), at(name).c_str()), 0) << name;
  }
  void mkdir(const std::string& rel) const { fs::create_directories(at(rel)); }
  void write(const std::string& rel, const std::string& text) const {
    std::ofstream(at(rel)) << text;
  }
  // The host path an fd names.
  static std::string where(const UniqueFd& fd) {
    char buf[PATH_MAX];
    ssize_t n = readlink(fd_path(fd.get()).c_str(), buf, sizeof buf - 1);
    return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
  }

  std::string root_;
  UniqueFd root_fd_;
};

TEST_F(SafePathTest, OpenRootItself) {
  for (const char* p : {"/", "", "//"}) {
    auto fd = open_in_root(root_fd_.get(), p, O_PATH);
    ASSERT_TRUE(fd) << p << ": " << fd.error().message();
    EXPECT_EQ(where(*fd), root_);
  }
}

TEST_F(SafePathTest, OpenFileAndReadIt) {
  mkdir("etc");
  write("etc/hostname", "box");
  auto fd = open_in_root(root_fd_.get(), "/etc/hostname", O_RDONLY);
  ASSERT_TRUE(fd) << fd.error().message();
  char buf[8] = {};
  EXPECT_EQ(read(fd->get(), buf, sizeof buf), 3);
  EXPECT_STREQ(buf, "box");
  // Relative paths are taken from the root too.
  EXPECT_TRUE(open_in_root(root_fd_.get(), "etc/hostname", O_RDONLY));
}

TEST_F(SafePathTest, FdIsCloseOnExec) {
  auto fd = open_in_root(root_fd_.get(), "/", O_PATH);
  ASSERT_TRUE(fd);
  EXPECT_TRUE(fcntl(fd->get(), F_GETFD) & FD_CLOEXEC);
}

TEST_F(SafePathTest, MissingGivesEnoent) {
  auto fd = open_in_root(root_fd_.get(), "/nope/x", O_PATH);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().err, ENOENT);
  EXPECT_EQ(fd.error().message(), "openat2 /nope/x: No such file or directory");
}

TEST_F(SafePathTest, DotDotStaysInRoot) {
  mkdir("a");
  auto fd = open_in_root(root_fd_.get(), "/../../../a", O_PATH);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_EQ(where(*fd), at("a"));
  auto up = open_in_root(root_fd_.get(), "/a/../../..", O_PATH);
  ASSERT_TRUE(up);
  EXPECT_EQ(where(*up), root_);
}

TEST_F(SafePathTest, EscapingSymlinkResolvesInsideRoot) {
  mkdir("etc");
  write("etc/passwd", "inside");
  link("/../../../etc", "evil");
  auto fd = open_in_root(root_fd_.get(), "/evil/passwd", O_RDONLY);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_EQ(where(*fd), at("etc/passwd"));
  link("../../../../../../etc/passwd", "rel");
  auto rel = open_in_root(root_fd_.get(), "/rel", O_RDONLY);
  ASSERT_TRUE(rel) << rel.error().message();
  EXPECT_EQ(where(*rel), at("etc/passwd"));
}

TEST_F(SafePathTest, ExtraResolveFlags) {
  mkdir("real");
  link("/real", "sym");
  auto fd = open_in_root(root_fd_.get(), "/sym", O_PATH, RESOLVE_NO_SYMLINKS);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().err, ELOOP);
  EXPECT_TRUE(open_in_root(root_fd_.get(), "/real", O_PATH, RESOLVE_NO_SYMLINKS));
}

TEST_F(SafePathTest, MagicLinksRefused) {
  // /proc/self/... inside an image must not reach the runtime's own files.
  mkdir("proc");
  link("/proc/self/root", "proc/escape");
  auto fd = open_in_root(root_fd_.get(), "/proc/escape", O_PATH);
  EXPECT_FALSE(fd);
}

TEST_F(SafePathTest, MkdirAllNested) {
  auto fd = mkdir_all_in_root(root_fd_.get(), "/a/b/c/d", false);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_TRUE(fs::is_directory(at("a/b/c/d")));
  EXPECT_EQ(where(*fd), at("a/b/c/d"));
  EXPECT_EQ(fcntl(fd->get(), F_GETFL) & O_PATH, O_PATH);
}

TEST_F(SafePathTest, MkdirAllMode) {
  mode_t old = umask(0);
  auto fd = mkdir_all_in_root(root_fd_.get(), "/m/n", false, 0701);
  umask(old);
  ASSERT_TRUE(fd) << fd.error().message();
  struct stat st {};
  ASSERT_EQ(stat(at("m/n").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0701u);
  ASSERT_EQ(stat(at("m").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0701u);
}

TEST_F(SafePathTest, MkdirAllExistingIsFine) {
  mkdir("a/b");
  auto fd = mkdir_all_in_root(root_fd_.get(), "/a/b", false);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_EQ(where(*fd), at("a/b"));
  auto again = mkdir_all_in_root(root_fd_.get(), "a//b/./", false);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(where(*again), at("a/b"));
}

TEST_F(SafePathTest, MkdirAllLastAsFile) {
  auto fd = mkdir_all_in_root(root_fd_.get(), "/dev/null", true);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_TRUE(fs::is_directory(at("dev")));
  EXPECT_TRUE(fs::is_regular_file(at("dev/null")));
  EXPECT_EQ(fs::file_size(at("dev/null")), 0u);
  // An existing file is kept as it is.
  write("dev/null", "keep");
  auto again = mkdir_all_in_root(root_fd_.get(), "/dev/null", true);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(fs::file_size(at("dev/null")), 4u);
}

TEST_F(SafePathTest, MkdirAllThroughAFileFails) {
  write("file", "x");
  auto fd = mkdir_all_in_root(root_fd_.get(), "/file/sub", false);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().err, ENOTDIR);
}

TEST_F(SafePathTest, MkdirAllEvilSymlinkStaysInside) {
  // The image says /evil -> /../../../etc. Creating /evil/forker-test must create ROOT/etc/...,
  // never /etc/forker-test on the host.
  link("/../../../etc", "evil");
  auto fd = mkdir_all_in_root(root_fd_.get(), "/evil/forker-test", false);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_TRUE(fs::is_directory(at("etc/forker-test")));
  EXPECT_EQ(where(*fd), at("etc/forker-test"));
  EXPECT_FALSE(fs::exists("/etc/forker-test"));
  EXPECT_TRUE(fs::is_symlink(at("evil")));  // the link itself is left alone
}

TEST_F(SafePathTest, MkdirAllEvilSymlinkAsLastComponent) {
  link("/../../../etc/forker-test-file", "evil");
  auto fd = mkdir_all_in_root(root_fd_.get(), "/evil", true);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_TRUE(fs::is_regular_file(at("etc/forker-test-file")));
  EXPECT_FALSE(fs::exists("/etc/forker-test-file"));
}

TEST_F(SafePathTest, MkdirAllRelativeSymlink) {
  mkdir("usr");
  link("../../../../var/lib", "usr/lib");
  auto fd = mkdir_all_in_root(root_fd_.get(), "/usr/lib/x", false);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_TRUE(fs::is_directory(at("var/lib/x")));
  EXPECT_EQ(where(*fd), at("var/lib/x"));
}

TEST_F(SafePathTest, MkdirAllAbsoluteSymlinkChain) {
  link("/b", "a");
  link("/c/d", "b");
  auto fd = mkdir_all_in_root(root_fd_.get(), "/a/e", false);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_TRUE(fs::is_directory(at("c/d/e")));
  EXPECT_EQ(where(*fd), at("c/d/e"));
  // Through the chain, the same directory is found again.
  auto again = open_in_root(root_fd_.get(), "/a/e", O_PATH);
  ASSERT_TRUE(again);
  EXPECT_EQ(where(*again), at("c/d/e"));
}

TEST_F(SafePathTest, SymlinkLoopGivesEloop) {
  link("/loop2", "loop1");
  link("/loop1", "loop2");
  auto fd = mkdir_all_in_root(root_fd_.get(), "/loop1/x", false);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().err, ELOOP);
  EXPECT_THAT(fd.error().message(), HasSubstr("Too many levels of symbolic links"));
  link("self", "self");
  auto self = mkdir_all_in_root(root_fd_.get(), "/self", false);
  ASSERT_FALSE(self);
  EXPECT_EQ(self.error().err, ELOOP);
  auto open = open_in_root(root_fd_.get(), "/loop1", O_PATH);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().err, ELOOP);
}

TEST(FdPath, Format) { EXPECT_EQ(fd_path(7), "/proc/self/fd/7"); }

TEST(HostPath, Joins) {
  EXPECT_EQ(host_path("/run/x/rootfs", "/proc"), "/run/x/rootfs/proc");
  EXPECT_EQ(host_path("/run/x/rootfs", "proc"), "/run/x/rootfs/proc");
  EXPECT_EQ(host_path("/r", ""), "/r/");
}

}  // namespace
}  // namespace forker::linux
