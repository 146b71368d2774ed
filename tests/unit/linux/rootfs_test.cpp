// plan_rootfs on Specs built in code, and the mount/pivot_root sequences of prepare_rootfs,
// enter_rootfs and finish_rootfs through RecordingKernel (nothing is mounted; runs as any user).
#include "linux/rootfs.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/mount.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/file.hpp"
#include "core/unique_fd.hpp"
#include "support/recording_kernel.hpp"

namespace forker::linux {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using K = KernelCall;

// A bundle in a temp dir: BUNDLE/rootfs exists.
class Bundle {
 public:
  Bundle() {
    char tmpl[] = "/tmp/forker-rootfs-test-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    EXPECT_NE(p, nullptr);
    // The plan holds realpath()s: compare against the canonical form.
    path_ = fs::canonical(p ? p : "/nonexistent").string();
    fs::create_directory(rootfs());
  }
  ~Bundle() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  Bundle(const Bundle&) = delete;
  Bundle& operator=(const Bundle&) = delete;
  const std::string& path() const { return path_; }
  std::string rootfs() const { return path_ + "/rootfs"; }

 private:
  std::string path_;
};

oci::Spec base_spec() {
  oci::Spec s;
  s.oci_version = "1.1.0";
  s.root.path = "rootfs";
  return s;
}

oci::Mount mount(std::string dest, std::string type, std::string source,
                 std::vector<std::string> options = {}) {
  return {std::move(dest), std::move(type), std::move(source), std::move(options), {}, {}};
}

class PlanRootfsTest : public ::testing::Test {
 protected:
  RootfsPlan plan(const oci::Spec& s, bool no_pivot = false) {
    auto r = plan_rootfs(s, bundle_.path(), no_pivot);
    EXPECT_TRUE(r) << r.error().message();
    return r ? std::move(r).value() : RootfsPlan{};
  }
  std::string plan_error(const oci::Spec& s) {
    auto r = plan_rootfs(s, bundle_.path(), false);
    EXPECT_FALSE(r);
    return r ? std::string() : r.error().message();
  }
  Bundle bundle_;
};

TEST_F(PlanRootfsTest, RootfsRelativeToBundle) {
  RootfsPlan p = plan(base_spec());
  EXPECT_EQ(p.rootfs, bundle_.rootfs());
  EXPECT_FALSE(p.readonly);
  EXPECT_FALSE(p.no_pivot);
  EXPECT_TRUE(p.setup_dev);
  EXPECT_FALSE(p.in_userns);
  EXPECT_FALSE(p.new_cgroupns);
  EXPECT_THAT(p.mounts, IsEmpty());
}

TEST_F(PlanRootfsTest, RootfsAbsoluteAndResolved) {
  oci::Spec s = base_spec();
  s.root.path = bundle_.path() + "/./rootfs/../rootfs";
  EXPECT_EQ(plan(s).rootfs, bundle_.rootfs());
  // A symlinked rootfs is resolved to the real directory.
  ASSERT_EQ(symlink("rootfs", (bundle_.path() + "/link").c_str()), 0);
  s.root.path = "link";
  EXPECT_EQ(plan(s).rootfs, bundle_.rootfs());
}

TEST_F(PlanRootfsTest, MissingRootfs) {
  oci::Spec s = base_spec();
  s.root.path = "nope";
  EXPECT_EQ(plan_error(s), "rootfs " + bundle_.path() + "/nope: No such file or directory");
}

TEST_F(PlanRootfsTest, RootfsNotADirectory) {
  std::ofstream(bundle_.path() + "/file") << "x";
  oci::Spec s = base_spec();
  s.root.path = "file";
  EXPECT_EQ(plan_error(s), "rootfs " + bundle_.path() + "/file: not a directory");
}

TEST_F(PlanRootfsTest, ReadonlyAndNoPivot) {
  oci::Spec s = base_spec();
  s.root.readonly = true;
  RootfsPlan p = plan(s, /*no_pivot=*/true);
  EXPECT_TRUE(p.readonly);
  EXPECT_TRUE(p.no_pivot);
}

TEST_F(PlanRootfsTest, DefaultPropagationIsRslave) {
  EXPECT_EQ(plan(base_spec()).root_propagation, static_cast<unsigned long>(MS_SLAVE | MS_REC));
}

TEST_F(PlanRootfsTest, PropagationFromConfig) {
  oci::Spec s = base_spec();
  s.linux.rootfs_propagation = "private";
  EXPECT_EQ(plan(s).root_propagation, static_cast<unsigned long>(MS_PRIVATE));
  s.linux.rootfs_propagation = "rshared";
  EXPECT_EQ(plan(s).root_propagation, static_cast<unsigned long>(MS_SHARED | MS_REC));
  s.linux.rootfs_propagation = "runbindable";
  EXPECT_EQ(plan(s).root_propagation, static_cast<unsigned long>(MS_UNBINDABLE | MS_REC));
}

TEST_F(PlanRootfsTest, PropagationGivenIsRemembered) {
  oci::Spec s = base_spec();
  EXPECT_FALSE(plan(s).root_propagation_given);
  s.linux.rootfs_propagation = "rslave";
  EXPECT_TRUE(plan(s).root_propagation_given);
}

TEST_F(PlanRootfsTest, NamespacesAndPaths) {
  oci::Spec s = base_spec();
  s.linux.namespaces = {{"user", ""}, {"cgroup", ""}};
  s.linux.masked_paths = {"/proc/kcore"};
  s.linux.readonly_paths = {"/proc/sys", "/proc/bus"};
  s.linux.mount_label = "label";
  RootfsPlan p = plan(s);
  EXPECT_TRUE(p.in_userns);
  EXPECT_TRUE(p.new_cgroupns);
  EXPECT_THAT(p.masked_paths, ElementsAre("/proc/kcore"));
  EXPECT_THAT(p.readonly_paths, ElementsAre("/proc/sys", "/proc/bus"));
  EXPECT_EQ(p.mount_label, "label");
  // Joining an existing cgroup namespace is not a new one.
  s.linux.namespaces = {{"cgroup", "/proc/1/ns/cgroup"}};
  EXPECT_FALSE(plan(s).new_cgroupns);
  EXPECT_FALSE(plan(s).in_userns);
}

TEST_F(PlanRootfsTest, MountKinds) {
  oci::Spec s = base_spec();
  s.mounts = {mount("/proc", "proc", "proc"),
              mount("/sys", "sysfs", "sysfs", {"nosuid", "ro"}),
              mount("/sys/fs/cgroup", "cgroup", "cgroup"),
              mount("/sys/fs/cgroup2", "cgroup2", "cgroup2"),
              mount("/data", "bind", "/srv/data"),
              mount("/data2", "none", "/srv/data2", {"rbind", "ro"}),
              mount("/data3", "", "/srv/data3", {"bind"}),
              mount("/tmp", "tmpfs", "tmpfs", {"mode=1777", "nosuid"}),
              mount("/dev/mqueue", "mqueue", "mqueue")};
  RootfsPlan p = plan(s);
  ASSERT_EQ(p.mounts.size(), 9u);
  EXPECT_EQ(p.mounts[0].kind, MountKind::Proc);
  EXPECT_EQ(p.mounts[1].kind, MountKind::Sysfs);
  EXPECT_EQ(p.mounts[1].options.flags, static_cast<unsigned long>(MS_NOSUID | MS_RDONLY));
  EXPECT_EQ(p.mounts[2].kind, MountKind::Cgroup);
  EXPECT_EQ(p.mounts[3].kind, MountKind::Cgroup);
  EXPECT_EQ(p.mounts[4].kind, MountKind::Bind);
  EXPECT_EQ(p.mounts[5].kind, MountKind::Bind);
  EXPECT_EQ(p.mounts[5].options.flags, static_cast<unsigned long>(MS_BIND | MS_REC | MS_RDONLY));
  EXPECT_EQ(p.mounts[6].kind, MountKind::Bind);
  EXPECT_EQ(p.mounts[7].kind, MountKind::Other);
  EXPECT_EQ(p.mounts[7].options.data, "mode=1777");
  EXPECT_EQ(p.mounts[7].type, "tmpfs");
  EXPECT_EQ(p.mounts[8].kind, MountKind::Other);
  EXPECT_EQ(p.mounts[8].destination, "/dev/mqueue");
  EXPECT_EQ(p.mounts[8].userns_fd, -1);
}

TEST_F(PlanRootfsTest, BindSourceRelativeToBundle) {
  oci::Spec s = base_spec();
  s.mounts = {mount("/a", "bind", "data"), mount("/b", "bind", "./sub/x"),
              mount("/c", "bind", "/abs/path"), mount("/d", "tmpfs", "tmpfs"),
              mount("/e", "proc", "relative-name")};
  RootfsPlan p = plan(s);
  EXPECT_EQ(p.mounts[0].source, bundle_.path() + "/data");
  EXPECT_EQ(p.mounts[1].source, bundle_.path() + "/./sub/x");
  EXPECT_EQ(p.mounts[2].source, "/abs/path");
  EXPECT_EQ(p.mounts[3].source, "tmpfs");  // not a path: left alone
  EXPECT_EQ(p.mounts[4].source, "relative-name");
}

TEST_F(PlanRootfsTest, DestinationMadeAbsolute) {
  oci::Spec s = base_spec();
  s.mounts = {mount("tmp", "tmpfs", "tmpfs"), mount("/run", "tmpfs", "tmpfs")};
  RootfsPlan p = plan(s);
  EXPECT_EQ(p.mounts[0].destination, "/tmp");
  EXPECT_EQ(p.mounts[1].destination, "/run");
}

TEST_F(PlanRootfsTest, DevBindDisablesSetupDev) {
  oci::Spec s = base_spec();
  s.mounts = {mount("/dev", "tmpfs", "tmpfs")};
  EXPECT_TRUE(plan(s).setup_dev);
  s.mounts = {mount("/dev", "bind", "/dev", {"rbind"})};
  EXPECT_FALSE(plan(s).setup_dev);
  s.mounts = {mount("dev", "none", "/dev", {"rbind"})};
  EXPECT_FALSE(plan(s).setup_dev);
  s.mounts = {mount("/dev/shm", "bind", "/dev/shm")};
  EXPECT_TRUE(plan(s).setup_dev);
}

TEST_F(PlanRootfsTest, DefaultDevices) {
  RootfsPlan p = plan(base_spec());
  std::vector<std::string> paths;
  for (const auto& d : p.devices) paths.push_back(d.path);
  EXPECT_THAT(paths, ElementsAre("/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                 "/dev/urandom", "/dev/tty"));
  for (const auto& d : p.devices) {
    EXPECT_EQ(d.type, "c") << d.path;
    EXPECT_EQ(d.file_mode, 0666u) << d.path;
    EXPECT_EQ(d.uid, 0u);
    EXPECT_EQ(d.gid, 0u);
  }
  EXPECT_EQ(p.devices[0].major, 1);
  EXPECT_EQ(p.devices[0].minor, 3);
  EXPECT_EQ(p.devices[5].major, 5);
  EXPECT_EQ(p.devices[5].minor, 0);
}

TEST_F(PlanRootfsTest, ConfigDevicesAddAndReplace) {
  oci::Spec s = base_spec();
  oci::Device fuse{"c", "/dev/fuse", 10, 229, 0660, {}, {}};
  oci::Device null{"c", "/dev/null", 1, 3, 0600, 1000, 1000};
  s.linux.devices = {fuse, null};
  RootfsPlan p = plan(s);
  std::vector<std::string> paths;
  for (const auto& d : p.devices) paths.push_back(d.path);
  EXPECT_THAT(paths, ElementsAre("/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                                 "/dev/tty", "/dev/fuse", "/dev/null"));
  EXPECT_EQ(p.devices.back().file_mode, 0600u);
  EXPECT_EQ(p.devices.back().uid, 1000u);
}

TEST_F(PlanRootfsTest, IdmapTakesContainerMappings) {
  oci::Spec s = base_spec();
  s.linux.uid_mappings = {{0, 100000, 65536}};
  s.linux.gid_mappings = {{0, 200000, 65536}};
  s.mounts = {mount("/data", "bind", "/srv", {"rbind", "idmap"})};
  RootfsPlan p = plan(s);
  ASSERT_EQ(p.mounts.size(), 1u);
  const MountStep& m = p.mounts[0];
  EXPECT_TRUE(m.options.idmap);
  ASSERT_EQ(m.uid_mappings.size(), 1u);
  EXPECT_EQ(m.uid_mappings[0].host_id, 100000u);
  EXPECT_EQ(m.uid_mappings[0].size, 65536u);
  ASSERT_EQ(m.gid_mappings.size(), 1u);
  EXPECT_EQ(m.gid_mappings[0].host_id, 200000u);
  EXPECT_EQ(m.userns_fd, -1);  // made later by the parent
}

TEST_F(PlanRootfsTest, IdmapOwnMappingsWin) {
  oci::Spec s = base_spec();
  s.linux.uid_mappings = {{0, 100000, 65536}};
  s.linux.gid_mappings = {{0, 200000, 65536}};
  oci::Mount m = mount("/data", "bind", "/srv", {"rbind"});
  m.uid_mappings = {{0, 5000, 10}};  // mappings without the option still mean idmap
  s.mounts = {m};
  RootfsPlan p = plan(s);
  EXPECT_TRUE(p.mounts[0].options.idmap);
  ASSERT_EQ(p.mounts[0].uid_mappings.size(), 1u);
  EXPECT_EQ(p.mounts[0].uid_mappings[0].host_id, 5000u);
  ASSERT_EQ(p.mounts[0].gid_mappings.size(), 1u);
  EXPECT_EQ(p.mounts[0].gid_mappings[0].host_id, 200000u);
}

TEST_F(PlanRootfsTest, IdmapErrors) {
  oci::Spec s = base_spec();
  s.mounts = {mount("/data", "tmpfs", "tmpfs", {"idmap"})};
  EXPECT_EQ(plan_error(s), "mounts[0] /data: idmap needs a bind mount");
  s.mounts = {mount("/proc", "proc", "proc"), mount("/data", "bind", "/srv", {"ridmap"})};
  EXPECT_EQ(plan_error(s), "mounts[1] /data: idmap needs uidMappings and gidMappings");
}

TEST_F(PlanRootfsTest, MountOptionsCarried) {
  oci::Spec s = base_spec();
  s.mounts = {mount("/tmp", "tmpfs", "tmpfs", {"tmpcopyup", "rprivate", "rro", "size=1m"})};
  RootfsPlan p = plan(s);
  ASSERT_EQ(p.mounts.size(), 1u);
  EXPECT_TRUE(p.mounts[0].options.tmpcopyup);
  EXPECT_EQ(p.mounts[0].options.propagation, static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_EQ(p.mounts[0].options.recursive_set, static_cast<unsigned long long>(MOUNT_ATTR_RDONLY));
  EXPECT_EQ(p.mounts[0].options.data, "size=1m");
}

// ---- kernel sequences ----

class RootfsSequenceTest : public ::testing::Test {
 protected:
  RootfsPlan simple_plan() {
    RootfsPlan p;
    p.rootfs = bundle_.rootfs();
    p.root_propagation = MS_SLAVE | MS_REC;
    p.setup_dev = false;
    return p;
  }
  MountStep tmpfs(const std::string& dest, std::vector<std::string> options) {
    MountStep m;
    m.kind = MountKind::Other;
    m.source = "tmpfs";
    m.type = "tmpfs";
    m.destination = dest;
    auto o = parse_mount_options(options);
    EXPECT_TRUE(o);
    m.options = *o;
    return m;
  }
  Bundle bundle_;
  RecordingKernel k_;
};

TEST_F(RootfsSequenceTest, EnterWithPivotRoot) {
  RootfsPlan p = simple_plan();
  auto s = enter_rootfs(k_, p);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_THAT(k_.calls(), ElementsAre(K::fchdir(p.rootfs), K::pivot_root(".", "."), K::fchdir("/"),
                                      K::mount("", ".", "", MS_SLAVE | MS_REC),
                                      K::umount2(".", MNT_DETACH), K::chdir("/")));
}

TEST_F(RootfsSequenceTest, EnterWithoutPivot) {
  RootfsPlan p = simple_plan();
  p.no_pivot = true;
  auto s = enter_rootfs(k_, p);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_THAT(k_.calls(), ElementsAre(K::chdir(p.rootfs), K::mount(p.rootfs, "/", "", MS_MOVE),
                                      K::chroot("."), K::chdir("/")));
}

TEST_F(RootfsSequenceTest, PivotRootFailure) {
  RootfsPlan p = simple_plan();
  k_.fail_first("pivot_root", EINVAL);
  auto s = enter_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().err, EINVAL);
  EXPECT_EQ(s.error().message(), "pivot_root " + p.rootfs + ": Invalid argument");
  // Nothing after the failed step.
  EXPECT_THAT(k_.calls(), ElementsAre(K::fchdir(p.rootfs), K::pivot_root(".", ".")));
  EXPECT_THAT(k_.failed(), ElementsAre(1u));
}

TEST_F(RootfsSequenceTest, EachEnterStepNamesItself) {
  RootfsPlan p = simple_plan();
  const std::string busy = std::strerror(EBUSY);
  const std::vector<std::string> expected = {
      "fchdir " + p.rootfs + ": " + busy,
      "pivot_root " + p.rootfs + ": " + busy,
      "fchdir old root: " + busy,
      "mount propagation on old root (flags MS_REC|MS_SLAVE): " + busy,
      "umount2 old root: " + busy,
      "chdir /: " + busy,
  };
  for (size_t n = 1; n <= expected.size(); ++n) {
    RecordingKernel k;
    k.fail_nth(n, EBUSY);
    auto s = enter_rootfs(k, p);
    ASSERT_FALSE(s) << "step " << n;
    EXPECT_EQ(s.error().message(), expected[n - 1]);
    EXPECT_EQ(k.calls().size(), n);
  }
}

TEST_F(RootfsSequenceTest, EachNoPivotStepNamesItself) {
  RootfsPlan p = simple_plan();
  p.no_pivot = true;
  const std::string perm = std::strerror(EPERM);
  const std::vector<std::string> expected = {
      "chdir " + p.rootfs + ": " + perm,
      "mount move (source " + p.rootfs + ") on / (flags MS_MOVE): " + perm,
      "chroot " + p.rootfs + ": " + perm,
      "chdir /: " + perm,
  };
  for (size_t n = 1; n <= expected.size(); ++n) {
    RecordingKernel k;
    k.fail_nth(n, EPERM);
    auto s = enter_rootfs(k, p);
    ASSERT_FALSE(s) << "step " << n;
    EXPECT_EQ(s.error().message(), expected[n - 1]);
  }
}

TEST_F(RootfsSequenceTest, PrepareSimpleTmpfs) {
  RootfsPlan p = simple_plan();
  p.mounts = {tmpfs("/tmp", {"nosuid", "nodev", "size=1m"})};
  auto s = prepare_rootfs(k_, p);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_TRUE(fs::is_directory(p.rootfs + "/tmp"));  // the target was made inside the rootfs
  EXPECT_THAT(k_.calls(), ElementsAre(K::mount("", "/", "", MS_SLAVE | MS_REC),
                                      K::mount(p.rootfs, p.rootfs, "", MS_BIND | MS_REC),
                                      K::mount("tmpfs", p.rootfs + "/tmp", "tmpfs",
                                               MS_NOSUID | MS_NODEV, "size=1m")));
}

TEST_F(RootfsSequenceTest, PrepareRemountFlagNeverReachesANewMount) {
  RootfsPlan p = simple_plan();
  p.mounts = {tmpfs("/run", {"remount", "ro"})};
  ASSERT_TRUE(prepare_rootfs(k_, p));
  ASSERT_EQ(k_.calls().size(), 3u);
  EXPECT_EQ(k_.calls()[2], K::mount("tmpfs", p.rootfs + "/run", "tmpfs", MS_RDONLY));
}

TEST_F(RootfsSequenceTest, PreparePropagationAndRecursiveAttrs) {
  RootfsPlan p = simple_plan();
  p.mounts = {tmpfs("/a/b", {"rprivate", "rro", "rexec"})};
  auto s = prepare_rootfs(k_, p);
  ASSERT_TRUE(s) << s.error().message();
  ASSERT_EQ(k_.calls().size(), 5u);
  EXPECT_EQ(k_.calls()[2], K::mount("tmpfs", p.rootfs + "/a/b", "tmpfs", 0));
  EXPECT_EQ(k_.calls()[3], K::mount("", p.rootfs + "/a/b", "", MS_PRIVATE | MS_REC));
  EXPECT_EQ(k_.calls()[4], K::mount_setattr(p.rootfs + "/a/b", "", AT_EMPTY_PATH | AT_RECURSIVE,
                                            MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOEXEC));
}

TEST_F(RootfsSequenceTest, PrepareFirstMountFails) {
  RootfsPlan p = simple_plan();
  p.mounts = {tmpfs("/tmp", {})};
  k_.fail_nth(1, EACCES);
  auto s = prepare_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().err, EACCES);
  EXPECT_EQ(s.error().message(),
            "mount propagation on / (flags MS_REC|MS_SLAVE): Permission denied");
  EXPECT_EQ(k_.calls().size(), 1u);
}

TEST_F(RootfsSequenceTest, PrepareRootBindFails) {
  RootfsPlan p = simple_plan();
  k_.fail_nth(2, ENOENT);
  auto s = prepare_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "mount bind (source " + p.rootfs + ") on " + p.rootfs +
                                     " (flags MS_BIND|MS_REC): No such file or directory");
}

// A detached root mount (fsmount/open_tree in the parent): attached on the rootfs with
// move_mount in place of the self-bind; everything around it is unchanged. The recording kernel
// names the fd by the path it was opened on, a stand-in for the detached mount.
TEST_F(RootfsSequenceTest, PrepareAttachesDetachedRootInsteadOfBind) {
  RootfsPlan p = simple_plan();
  std::string image = bundle_.path() + "/image";
  fs::create_directory(image);
  UniqueFd root_mount(::open(image.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(root_mount);
  p.root_mount_fd = root_mount.get();
  p.mounts = {tmpfs("/tmp", {"nosuid"})};
  auto s = prepare_rootfs(k_, p);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_THAT(k_.calls(),
              ElementsAre(K::mount("", "/", "", MS_SLAVE | MS_REC),
                          K::move_mount(image, "", "AT_FDCWD", p.rootfs, MOVE_MOUNT_F_EMPTY_PATH),
                          K::mount("tmpfs", p.rootfs + "/tmp", "tmpfs", MS_NOSUID)));
  EXPECT_THAT(k_.calls_named("mount"), ::testing::Each(::testing::Field(
                                           &KernelCall::flags, ::testing::Ne(MS_BIND | MS_REC))));
}

TEST_F(RootfsSequenceTest, PrepareSharedRootAttachesAfterMakingParentPrivate) {
  RootfsPlan p = simple_plan();
  p.root_propagation = MS_SHARED | MS_REC;
  UniqueFd root_mount(::open(bundle_.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  p.root_mount_fd = root_mount.get();
  ASSERT_TRUE(prepare_rootfs(k_, p));
  ASSERT_EQ(k_.calls().size(), 3u);
  EXPECT_EQ(k_.calls()[1].flags, static_cast<unsigned long long>(MS_PRIVATE));
  EXPECT_EQ(k_.calls()[2],
            K::move_mount(bundle_.path(), "", "AT_FDCWD", p.rootfs, MOVE_MOUNT_F_EMPTY_PATH));
}

TEST_F(RootfsSequenceTest, PrepareDetachedRootAttachFails) {
  RootfsPlan p = simple_plan();
  UniqueFd root_mount(::open(bundle_.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  p.root_mount_fd = root_mount.get();
  p.mounts = {tmpfs("/tmp", {})};
  k_.fail_first("move_mount", EINVAL);
  auto s = prepare_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().err, EINVAL);
  EXPECT_EQ(s.error().message(), "move_mount root mount on " + p.rootfs + ": Invalid argument");
  EXPECT_EQ(k_.calls().size(), 2u);  // nothing mounted after it
}

TEST_F(RootfsSequenceTest, PrepareDetachedRootNeedsAMountNamespace) {
  RootfsPlan p = simple_plan();
  p.host_mount_ns = true;
  UniqueFd root_mount(::open(bundle_.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  p.root_mount_fd = root_mount.get();
  p.mounts = {tmpfs("/tmp", {})};
  auto s = prepare_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(), HasSubstr("a detached root mount needs a mount namespace"));
  EXPECT_THAT(k_.calls(), IsEmpty());
}

TEST_F(RootfsSequenceTest, PrepareRootOverlayNeedsAMountNamespace) {
  RootfsPlan p = simple_plan();
  p.host_mount_ns = true;
  p.root_overlay = OverlaySpec{{bundle_.path() + "/layer"}, "", "", true};
  auto s = prepare_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(), HasSubstr("a detached root mount needs a mount namespace"));
  EXPECT_THAT(k_.calls(), IsEmpty());
}

// The init makes the overlay before attaching it: a layer it cannot open stops it there.
TEST_F(RootfsSequenceTest, PrepareRootOverlayFailureStopsBeforeAttach) {
  RootfsPlan p = simple_plan();
  const std::string missing = bundle_.path() + "/no-such-layer";
  p.root_overlay = OverlaySpec{{missing}, "", "", true};
  p.mounts = {tmpfs("/tmp", {})};
  auto s = prepare_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().err, ENOENT);
  EXPECT_THAT(s.error().message(), HasSubstr("root overlay"));
  EXPECT_THAT(s.error().message(), HasSubstr(missing));
  EXPECT_THAT(k_.calls(), ElementsAre(K::mount("", "/", "", MS_SLAVE | MS_REC)));
}

TEST_F(RootfsSequenceTest, PrepareMountFailureNamesTypeTargetAndFlags) {
  RootfsPlan p = simple_plan();
  p.mounts = {tmpfs("/tmp", {"nosuid", "ro"})};
  k_.fail_when([](const KernelCall& c) { return c.name == "mount" && c.args[2] == "tmpfs"; },
               ENODEV);
  auto s = prepare_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(),
            "mount tmpfs on " + p.rootfs + "/tmp (flags MS_RDONLY|MS_NOSUID): No such device");
}

TEST_F(RootfsSequenceTest, PrepareBindMount) {
  RootfsPlan p = simple_plan();
  std::string src = bundle_.path() + "/data";
  fs::create_directory(src);
  std::ofstream(bundle_.path() + "/file") << "x";
  MountStep dir;
  dir.kind = MountKind::Bind;
  dir.source = src;
  dir.destination = "/mnt/data";
  dir.options = *parse_mount_options({"rbind", "ro", "nosuid"});
  MountStep file;
  file.kind = MountKind::Bind;
  file.source = bundle_.path() + "/file";
  file.destination = "/etc/file";
  file.options = *parse_mount_options({"bind"});
  p.mounts = {dir, file};
  auto s = prepare_rootfs(k_, p);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_TRUE(fs::is_directory(p.rootfs + "/mnt/data"));
  EXPECT_TRUE(fs::is_regular_file(p.rootfs + "/etc/file"));  // a file target for a file source
  ASSERT_EQ(k_.calls().size(), 5u);
  EXPECT_EQ(k_.calls()[2], K::mount(src, p.rootfs + "/mnt/data", "", MS_BIND | MS_REC));
  // Per-mount flags need a remount of the bind.
  EXPECT_EQ(k_.calls()[3],
            K::mount("", p.rootfs + "/mnt/data", "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID));
  EXPECT_EQ(k_.calls()[4], K::mount(file.source, p.rootfs + "/etc/file", "", MS_BIND));
}

TEST_F(RootfsSequenceTest, PrepareBindMissingSource) {
  RootfsPlan p = simple_plan();
  MountStep m;
  m.kind = MountKind::Bind;
  m.source = bundle_.path() + "/missing";
  m.destination = "/x";
  p.mounts = {m};
  auto s = prepare_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "stat bind source " + m.source + ": No such file or directory");
}

TEST_F(RootfsSequenceTest, PrepareProcOnSymlinkRefused) {
  // CVE-2019-19921: /proc in the image is a symlink to somewhere else.
  RootfsPlan p = simple_plan();
  fs::create_directory(p.rootfs + "/elsewhere");
  ASSERT_EQ(symlink("/elsewhere", (p.rootfs + "/proc").c_str()), 0);
  MountStep m;
  m.kind = MountKind::Proc;
  m.type = "proc";
  m.source = "proc";
  m.destination = "/proc";
  p.mounts = {m};
  auto s = prepare_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(),
              HasSubstr("mount proc on " + p.rootfs + "/proc: target is a symlink"));
  EXPECT_THAT(k_.calls_named("mount"),
              ElementsAre(K::mount("", "/", "", MS_SLAVE | MS_REC),
                          K::mount(p.rootfs, p.rootfs, "", MS_BIND | MS_REC)));
}

TEST_F(RootfsSequenceTest, PrepareSharedRootMakesParentPrivate) {
  RootfsPlan p = simple_plan();
  p.root_propagation = MS_SHARED | MS_REC;
  auto s = prepare_rootfs(k_, p);
  ASSERT_TRUE(s) << s.error().message();
  ASSERT_EQ(k_.calls().size(), 3u);
  EXPECT_EQ(k_.calls()[0], K::mount("", "/", "", MS_SHARED | MS_REC));
  const KernelCall& priv = k_.calls()[1];
  EXPECT_EQ(priv.name, "mount");
  EXPECT_EQ(priv.flags, static_cast<unsigned long long>(MS_PRIVATE));
  // The mount point holding the rootfs: "/" or a prefix directory of it.
  const std::string& mp = priv.args[1];
  EXPECT_TRUE(mp == "/" || p.rootfs == mp || p.rootfs.starts_with(mp + "/")) << mp;
  EXPECT_EQ(k_.calls()[2], K::mount(p.rootfs, p.rootfs, "", MS_BIND | MS_REC));
}

TEST_F(RootfsSequenceTest, SetupDevLinks) {
  RootfsPlan p = simple_plan();
  p.setup_dev = true;
  auto s = prepare_rootfs(k_, p);
  ASSERT_TRUE(s) << s.error().message();
  std::string dev = p.rootfs + "/dev";
  EXPECT_TRUE(fs::is_directory(dev));
  std::vector<KernelCall> links = k_.calls_named("symlinkat");
  ASSERT_GE(links.size(), 5u);
  EXPECT_EQ(links[0], K::symlinkat("/proc/self/fd", dev, "fd"));
  EXPECT_EQ(links[1], K::symlinkat("/proc/self/fd/0", dev, "stdin"));
  EXPECT_EQ(links[2], K::symlinkat("/proc/self/fd/1", dev, "stdout"));
  EXPECT_EQ(links[3], K::symlinkat("/proc/self/fd/2", dev, "stderr"));
  EXPECT_EQ(links[4], K::symlinkat("pts/ptmx", dev, "ptmx"));
  if (access("/proc/kcore", F_OK) == 0) {
    ASSERT_EQ(links.size(), 6u);
    EXPECT_EQ(links[5], K::symlinkat("/proc/kcore", dev, "core"));
  } else {
    EXPECT_EQ(links.size(), 5u);
  }
}

TEST_F(RootfsSequenceTest, SetupDevSymlinkFailure) {
  RootfsPlan p = simple_plan();
  p.setup_dev = true;
  k_.fail_first("symlinkat", EROFS);
  auto s = prepare_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "symlink " + p.rootfs + "/dev/fd: Read-only file system");
}

TEST_F(RootfsSequenceTest, SetupDevMknod) {
  RootfsPlan p = simple_plan();
  p.setup_dev = true;
  p.devices = {oci::Device{"c", "/dev/fuse", 10, 229, 0620, {}, {}},
               oci::Device{"p", "/dev/fifo", 0, 0, {}, {}, {}}};
  // Stand in for the node the kernel would make, so the chmod that follows has a file.
  k_.on("mknodat", [](const KernelCall& c) { std::ofstream(c.args[0] + "/" + c.args[1]) << ""; });
  auto s = prepare_rootfs(k_, p);
  ASSERT_TRUE(s) << s.error().message();
  std::string dev = p.rootfs + "/dev";
  EXPECT_THAT(k_.calls_named("mknodat"),
              ElementsAre(K::mknodat(dev, "fuse", S_IFCHR | 0620, makedev(10, 229)),
                          K::mknodat(dev, "fifo", S_IFIFO | 0666, makedev(0, 0))));
  struct stat st {};
  ASSERT_EQ(stat((dev + "/fuse").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0620u);  // set explicitly, whatever the umask
  EXPECT_THAT(k_.calls_named("mount"), ::testing::SizeIs(2));
}

TEST_F(RootfsSequenceTest, SetupDevMknodFailure) {
  RootfsPlan p = simple_plan();
  p.setup_dev = true;
  p.devices = {oci::Device{"b", "/dev/sda", 8, 0, 0600, {}, {}}};
  k_.fail_first("mknodat", EPERM);
  auto s = prepare_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "mknod " + p.rootfs + "/dev/sda: Operation not permitted");
}

TEST_F(RootfsSequenceTest, SetupDevInUserNamespaceBindsNodes) {
  RootfsPlan p = simple_plan();
  p.setup_dev = true;
  p.in_userns = true;
  p.devices = default_devices();
  auto s = prepare_rootfs(k_, p);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_THAT(k_.calls_named("mknodat"), IsEmpty());
  std::vector<KernelCall> mounts = k_.calls_named("mount");
  ASSERT_EQ(mounts.size(), 2u + 6u);
  EXPECT_EQ(mounts[2], K::mount("/dev/null", p.rootfs + "/dev/null", "", MS_BIND));
  EXPECT_EQ(mounts[7], K::mount("/dev/tty", p.rootfs + "/dev/tty", "", MS_BIND));
  EXPECT_TRUE(fs::is_regular_file(p.rootfs + "/dev/null"));
}

TEST_F(RootfsSequenceTest, FinishMasksAndReadonly) {
  // finish_rootfs runs after pivot_root, so it works on "/": here the host's own tree, which the
  // recording kernel leaves untouched.
  RootfsPlan p = simple_plan();
  p.readonly_paths = {"/proc/sys", "/nonexistent-forker-path"};
  p.masked_paths = {"/proc/version", "/proc/sys", "/nonexistent-forker-path"};
  p.readonly = true;
  auto s = finish_rootfs(k_, p);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_THAT(k_.calls(), ElementsAre(K::mount("/proc/sys", "/proc/sys", "", MS_BIND | MS_REC),
                                      K::mount("", "/proc/sys", "",
                                               MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID |
                                                   MS_NODEV | MS_NOEXEC),
                                      K::mount("/dev/null", "/proc/version", "", MS_BIND),
                                      K::mount("tmpfs", "/proc/sys", "tmpfs", MS_RDONLY, "size=0k"),
                                      K::mount("", "/", "", MS_BIND | MS_REMOUNT | MS_RDONLY)));
}

TEST_F(RootfsSequenceTest, FinishAppliesGivenPropagationToNewRoot) {
  RootfsPlan p = simple_plan();
  p.root_propagation = MS_SHARED | MS_REC;
  p.root_propagation_given = true;
  ASSERT_TRUE(finish_rootfs(k_, p));
  EXPECT_THAT(k_.calls(), ElementsAre(K::mount("", "/", "", MS_SHARED | MS_REC)));

  // The default (rslave, not given) and a given private need no second step.
  using Case = std::pair<unsigned long, bool>;
  for (auto [prop, given] :
       {Case{MS_SLAVE | MS_REC, false}, Case{MS_PRIVATE | MS_REC, true}, Case{MS_PRIVATE, true}}) {
    RecordingKernel k;
    p.root_propagation = prop;
    p.root_propagation_given = given;
    ASSERT_TRUE(finish_rootfs(k, p));
    EXPECT_THAT(k.calls(), IsEmpty()) << mount_flags_to_string(prop);
  }
}

TEST_F(RootfsSequenceTest, FinishPropagationFailure) {
  RootfsPlan p = simple_plan();
  p.root_propagation = MS_UNBINDABLE | MS_REC;
  p.root_propagation_given = true;
  k_.fail_nth(1, EINVAL);
  auto s = finish_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(),
            "mount propagation on / (flags MS_REC|MS_UNBINDABLE): Invalid argument");
}

TEST_F(RootfsSequenceTest, PrepareUnbindableRootMakesParentPrivate) {
  RootfsPlan p = simple_plan();
  p.root_propagation = MS_UNBINDABLE | MS_REC;
  ASSERT_TRUE(prepare_rootfs(k_, p));
  ASSERT_EQ(k_.calls().size(), 3u);
  EXPECT_EQ(k_.calls()[1].flags, static_cast<unsigned long long>(MS_PRIVATE));
}

TEST_F(RootfsSequenceTest, FinishReadonlyRootFailure) {
  RootfsPlan p = simple_plan();
  p.readonly = true;
  k_.fail_when([](const KernelCall&) { return true; }, EPERM);
  k_.fail_when([](const KernelCall&) { return true; }, EPERM);
  auto s = finish_rootfs(k_, p);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(), HasSubstr("mount remount on / (flags MS_RDONLY"));
  EXPECT_THAT(s.error().message(), HasSubstr("MS_REMOUNT"));
  EXPECT_THAT(s.error().message(), HasSubstr("MS_BIND"));
  EXPECT_EQ(k_.calls().size(), 2u);  // retried once with the locked flags
}

// ---- the fake itself ----

TEST(RecordingKernel, FailNthCountsFromNow) {
  RecordingKernel k;
  EXPECT_EQ(k.chdir("/a"), 0);
  k.fail_nth(2, ENOENT);
  EXPECT_EQ(k.chdir("/b"), 0);
  errno = 0;
  EXPECT_EQ(k.chdir("/c"), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(k.chdir("/d"), 0);
  EXPECT_THAT(k.failed(), ElementsAre(2u));
  EXPECT_THAT(k.calls(),
              ElementsAre(K::chdir("/a"), K::chdir("/b"), K::chdir("/c"), K::chdir("/d")));
}

TEST(RecordingKernel, FailFirstByName) {
  RecordingKernel k;
  k.fail_first("unshare", EINVAL);
  EXPECT_EQ(k.sethostname("box", 3), 0);
  EXPECT_EQ(k.unshare(CLONE_NEWNS), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(k.unshare(CLONE_NEWNS), 0);
  EXPECT_THAT(k.calls(),
              ElementsAre(K::sethostname("box"), K::unshare(CLONE_NEWNS), K::unshare(CLONE_NEWNS)));
}

TEST(RecordingKernel, RecordsFdsAsPaths) {
  RecordingKernel k;
  int fd = ::open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::string real = fs::canonical("/tmp").string();
  EXPECT_EQ(k.fchdir(fd), 0);
  EXPECT_EQ(k.setns(fd, CLONE_NEWNET), 0);
  std::string magic = "/proc/self/fd/" + std::to_string(fd);
  EXPECT_EQ(k.mount(nullptr, magic.c_str(), nullptr, MS_PRIVATE, nullptr), 0);
  close(fd);
  EXPECT_THAT(k.calls(), ElementsAre(K::fchdir(real), K::setns(real, CLONE_NEWNET),
                                     K::mount("", real, "", MS_PRIVATE)));
}

TEST(RecordingKernel, PrintsReadably) {
  std::ostringstream os;
  os << K::mount("tmpfs", "/t", "tmpfs", MS_NOSUID | MS_NODEV, "size=1k");
  EXPECT_EQ(os.str(), "mount(\"tmpfs\", \"/t\", \"tmpfs\", \"size=1k\", MS_NOSUID|MS_NODEV)");
}

}  // namespace
}  // namespace forker::linux
