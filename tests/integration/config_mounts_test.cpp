// config.json "mounts", root.readonly, linux.maskedPaths and linux.readonlyPaths.
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <sys/stat.h>

#include <algorithm>
#include <iterator>

#include "integration/config_fixture.hpp"

namespace forker::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class ConfigMounts : public ConfigBase {
 protected:
  // A host directory in the bundle holding FILE with TEXT.
  std::string host_dir(const std::string& name, const std::string& file, const std::string& text) {
    std::string d = bundle().dir() + "/" + name;
    std::filesystem::create_directories(d);
    write_text(d + "/" + file, text);
    return d;
  }
  // Mounts a tmpfs on the host at DIR (holding FILE with TEXT); unmounted in TearDown.
  void host_submount(const std::string& dir, const std::string& file, const std::string& text) {
    std::filesystem::create_directories(dir);
    ASSERT_EQ(mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64k"), 0) << strerror(errno);
    on_teardown([dir] { umount2(dir.c_str(), MNT_DETACH); });
    write_text(dir + "/" + file, text);
  }
  std::string mountinfo() {
    auto r = run({"probe", "mountinfo"});
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
  }
  static std::string erofs(const std::string& path) {
    return "ERR " + path + ": " + strerror(EROFS) + "\n";
  }
  // Fields of a mountinfo line: mount options (6th) and what follows the " - " separator.
  static std::vector<std::string> fields(const std::string& line) {
    std::istringstream in(line);
    return {std::istream_iterator<std::string>(in), {}};
  }
  static std::string optional_fields(const std::string& line) {
    auto f = fields(line);
    std::string out;
    for (size_t i = 6; i < f.size() && f[i] != "-"; ++i) out += (out.empty() ? "" : " ") + f[i];
    return out;
  }
  static std::string fstype(const std::string& line) {
    auto f = fields(line);
    for (size_t i = 6; i + 1 < f.size(); ++i)
      if (f[i] == "-") return f[i + 1];
    return "";
  }
  static std::string super_options(const std::string& line) {
    auto f = fields(line);
    for (size_t i = 6; i + 3 < f.size(); ++i)
      if (f[i] == "-") return f[i + 3];
    return "";
  }
  static std::string mount_options(const std::string& line) {
    auto f = fields(line);
    return f.size() > 5 ? f[5] : "";
  }
  static bool has_option(const std::string& opts, const std::string& o) {
    return ("," + opts + ",").find("," + o + ",") != std::string::npos;
  }
};

TEST_F(ConfigMounts, TmpfsWithOptions) {
  add_mount("/mnt/t", "tmpfs", "tmpfs", {"size=1m", "mode=700", "nosuid", "noexec"});
  std::string line = mountinfo_line(mountinfo(), "/mnt/t");
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(fstype(line), "tmpfs");
  EXPECT_TRUE(has_option(super_options(line), "size=1024k")) << line;
  EXPECT_TRUE(has_option(super_options(line), "mode=700")) << line;
  EXPECT_TRUE(has_option(mount_options(line), "nosuid")) << line;
  EXPECT_TRUE(has_option(mount_options(line), "noexec")) << line;
  EXPECT_TRUE(has_option(mount_options(line), "rw")) << line;
  auto r = run({"probe", "stat", "/mnt/t"});
  EXPECT_EQ(r.out, "dir 700 0 0 0:0\n") << r.err;
}

TEST_F(ConfigMounts, TargetWithMissingParentsIsCreated) {
  ASSERT_FALSE(std::filesystem::exists(bundle().rootfs() + "/a"));
  add_mount("/a/b/c/d", "tmpfs", "tmpfs", {"size=64k"});
  auto r = run({"probe", "stat", "/a/b/c/d"});
  EXPECT_EQ(r.out, "dir 1777 0 0 0:0\n") << r.err;
  EXPECT_EQ(fstype(mountinfo_line(mountinfo(), "/a/b/c/d")), "tmpfs");
}

TEST_F(ConfigMounts, BindMountOfHostDirectory) {
  std::string src = host_dir("hostdir", "hello.txt", "hello from the host\n");
  add_mount("/data", "bind", src, {"bind"});
  auto r = run({"probe", "cat", "/data/hello.txt"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "hello from the host\n");
  // Writable, and the write shows on the host.
  r = run({"probe", "write", "/data/new.txt", "from inside"});
  EXPECT_EQ(r.out, "ok\n") << r.err;
  EXPECT_EQ(read_text(src + "/new.txt"), "from inside");
}

TEST_F(ConfigMounts, BindMountWithTypeNoneAndRelativeSource) {
  host_dir("reldir", "f", "relative\n");
  add_mount("/rel", "none", "reldir", {"rbind"});
  auto r = run({"probe", "cat", "/rel/f"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "relative\n");
}

TEST_F(ConfigMounts, BindMountOfSingleFile) {
  std::string src = host_dir("files", "greeting", "hi\n") + "/greeting";
  add_mount("/etc/greeting", "bind", src, {"bind", "ro"});
  auto r = run({"probe", "cat", "/etc/greeting"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "hi\n");
  r = run({"probe", "stat", "/etc/greeting"});
  EXPECT_EQ(r.out, "file 644 0 0 0:0\n") << r.err;
}

TEST_F(ConfigMounts, ReadOnlyBind) {
  std::string src = host_dir("rodir", "f", "x");
  add_mount("/ro", "bind", src, {"bind", "ro"});
  auto r = run({"probe", "write", "/ro/new", "x"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, erofs("/ro/new"));
  EXPECT_FALSE(std::filesystem::exists(src + "/new"));
  std::string line = mountinfo_line(mountinfo(), "/ro");
  EXPECT_TRUE(has_option(mount_options(line), "ro")) << line;
}

TEST_F(ConfigMounts, RbindIncludesSubmountsAndBindDoesNot) {
  std::string src = host_dir("tree", "top", "top\n");
  host_submount(src + "/sub", "inner", "inner\n");
  add_mount("/r", "bind", src, {"rbind"});
  add_mount("/nr", "bind", src, {"bind"});
  auto r = run({"probe", "cat", "/r/sub/inner"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "inner\n");
  r = run({"probe", "ls", "/nr/sub"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  r = run({"probe", "cat", "/nr/top"});
  EXPECT_EQ(r.out, "top\n") << r.err;
}

TEST_F(ConfigMounts, RecursiveReadOnly) {
  std::string src = host_dir("rrotree", "top", "top\n");
  host_submount(src + "/sub", "inner", "inner\n");
  add_mount("/rro", "bind", src, {"rbind", "rro"});
  auto r = run({"probe", "write", "/rro/x", "x"});
  EXPECT_EQ(r.out, erofs("/rro/x")) << r.err;
  r = run({"probe", "write", "/rro/sub/x", "x"});
  EXPECT_EQ(r.out, erofs("/rro/sub/x")) << r.err;
  r = run({"probe", "cat", "/rro/sub/inner"});
  EXPECT_EQ(r.out, "inner\n") << r.err;
  // A plain "ro" leaves the submount writable.
  config()["mounts"].erase(config()["mounts"].size() - 1);
  add_mount("/ro", "bind", src, {"rbind", "ro"});
  r = run({"probe", "write", "/ro/x", "x"});
  EXPECT_EQ(r.out, erofs("/ro/x")) << r.err;
  r = run({"probe", "write", "/ro/sub/x", "x"});
  EXPECT_EQ(r.out, "ok\n") << r.err;
}

TEST_F(ConfigMounts, PropagationOptions) {
  std::string src = host_dir("prop", "f", "f");
  add_mount("/private", "bind", src, {"rbind", "rprivate"});
  add_mount("/shared", "bind", src, {"rbind", "rshared"});
  std::string mi = mountinfo();
  std::string priv = mountinfo_line(mi, "/private");
  std::string shared = mountinfo_line(mi, "/shared");
  ASSERT_FALSE(priv.empty()) << mi;
  ASSERT_FALSE(shared.empty()) << mi;
  EXPECT_EQ(optional_fields(priv), "") << priv;
  EXPECT_THAT(optional_fields(shared), StartsWith("shared:")) << shared;
}

TEST_F(ConfigMounts, DefaultDevShmAndMqueue) {
  std::string mi = mountinfo();
  std::string shm = mountinfo_line(mi, "/dev/shm");
  EXPECT_EQ(fstype(shm), "tmpfs") << mi;
  for (const char* o : {"rw", "nosuid", "nodev", "noexec"})
    EXPECT_TRUE(has_option(mount_options(shm), o)) << o << " in " << shm;
  EXPECT_TRUE(has_option(super_options(shm), "size=65536k")) << shm;
  std::string mq = mountinfo_line(mi, "/dev/mqueue");
  EXPECT_EQ(fstype(mq), "mqueue") << mi;
  for (const char* o : {"rw", "nosuid", "nodev", "noexec"})
    EXPECT_TRUE(has_option(mount_options(mq), o)) << o << " in " << mq;
  auto r = run({"probe", "stat", "/dev/shm"});
  EXPECT_EQ(r.out, "dir 1777 0 0 0:0\n") << r.err;
}

TEST_F(ConfigMounts, DefaultCgroupMountHasEveryHierarchy) {
  struct statfs sfs {};
  if (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) {
    // A cgroup v2 host: the mount is the container's own cgroup2 tree, read-only.
    std::string mi = mountinfo();
    std::string top = mountinfo_line(mi, "/sys/fs/cgroup");
    EXPECT_EQ(fstype(top), "cgroup2") << mi;
    EXPECT_TRUE(has_option(mount_options(top), "ro")) << top;
    auto r = run({"probe", "cat", "/sys/fs/cgroup/cgroup.procs"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "1\n") << "only the probe is in the container's cgroup";
    return;
  }
  std::vector<std::string> host;
  for (const auto& e : std::filesystem::directory_iterator("/sys/fs/cgroup"))
    if (e.is_directory()) host.push_back(e.path().filename().string());
  std::sort(host.begin(), host.end());
  auto r = run({"probe", "ls", "/sys/fs/cgroup"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream in(r.out);
  std::vector<std::string> inside{std::istream_iterator<std::string>(in), {}};
  std::sort(inside.begin(), inside.end());
  EXPECT_EQ(inside, host);
  std::string mi = mountinfo();
  std::string top = mountinfo_line(mi, "/sys/fs/cgroup");
  EXPECT_EQ(fstype(top), "tmpfs") << mi;
  EXPECT_TRUE(has_option(mount_options(top), "ro")) << top;
  std::string mem = mountinfo_line(mi, "/sys/fs/cgroup/memory");
  EXPECT_EQ(fstype(mem), "cgroup") << mi;
  EXPECT_TRUE(has_option(super_options(mem), "memory")) << mem;
  EXPECT_TRUE(has_option(mount_options(mem), "ro")) << mem;
  r = run({"probe", "write", "/sys/fs/cgroup/memory/x", "x"});
  EXPECT_EQ(r.out, erofs("/sys/fs/cgroup/memory/x")) << r.err;
}

TEST_F(ConfigMounts, ReadonlyRoot) {
  config()["root"]["readonly"] = true;
  auto r = run({"probe", "write", "/x", "x"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, erofs("/x"));
  EXPECT_FALSE(std::filesystem::exists(bundle().rootfs() + "/x"));
  // Mounts on top stay writable.
  r = run({"probe", "write", "/dev/shm/x", "x"});
  EXPECT_EQ(r.out, "ok\n") << r.err;
  std::string line = mountinfo_line(mountinfo(), "/");
  EXPECT_TRUE(has_option(mount_options(line), "ro")) << line;
  config()["root"]["readonly"] = false;
  r = run({"probe", "write", "/x", "x"});
  EXPECT_EQ(r.out, "ok\n") << r.err;
}

TEST_F(ConfigMounts, MaskedPaths) {
  auto& b = bundle();
  std::filesystem::create_directories(b.rootfs() + "/secretdir");
  write_text(b.rootfs() + "/secretdir/key", "k");
  write_text(b.rootfs() + "/etc/secret", "s3cret");
  config()["linux"]["maskedPaths"] = {"/etc/secret", "/secretdir", "/does/not/exist",
                                      "/proc/version"};
  auto r = run({"probe", "cat", "/etc/secret"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  r = run({"probe", "ls", "/secretdir"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  r = run({"probe", "cat", "/proc/version"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  r = run({"probe", "stat", "/proc/version"});
  EXPECT_EQ(r.out, "char 666 0 0 1:3\n") << r.err;
  r = run({"probe", "write", "/secretdir/new", "x"});
  EXPECT_EQ(r.out, erofs("/secretdir/new")) << r.err;
  EXPECT_EQ(read_text(b.rootfs() + "/etc/secret"), "s3cret");
}

TEST_F(ConfigMounts, ReadonlyPaths) {
  auto& b = bundle();
  std::filesystem::create_directories(b.rootfs() + "/rodir");
  config()["linux"]["readonlyPaths"] = {"/proc/sys", "/rodir", "/does/not/exist"};
  auto r = run({"probe", "write", "/proc/sys/kernel/hostname", "x"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, erofs("/proc/sys/kernel/hostname"));
  r = run({"probe", "write", "/rodir/x", "x"});
  EXPECT_EQ(r.out, erofs("/rodir/x")) << r.err;
  r = run({"probe", "cat", "/proc/sys/kernel/ostype"});
  EXPECT_EQ(r.out, "Linux\n") << r.err;
  // Without it, the uts-namespaced hostname file is writable.
  config()["linux"]["readonlyPaths"] = nlohmann::json::array();
  r = run({"probe", "write", "/proc/sys/kernel/hostname", "x"});
  EXPECT_EQ(r.out, "ok\n") << r.err;
}

}  // namespace
}  // namespace forker::test
