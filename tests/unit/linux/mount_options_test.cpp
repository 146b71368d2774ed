// Mount option strings -> flags, cleared flags, propagation, recursive attributes and data.
#include "linux/mount_options.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/mount.h>
#include <sys/mount.h>

#include <string>
#include <vector>

namespace forker::linux {
namespace {

MountOptions parse(const std::vector<std::string>& opts) {
  auto r = parse_mount_options(opts);
  EXPECT_TRUE(r) << r.error().message();
  return r ? *r : MountOptions{};
}

TEST(ParseMountOptions, Empty) {
  MountOptions o = parse({});
  EXPECT_EQ(o.flags, 0u);
  EXPECT_EQ(o.clear, 0u);
  EXPECT_EQ(o.propagation, 0u);
  EXPECT_EQ(o.recursive_set, 0u);
  EXPECT_EQ(o.recursive_clear, 0u);
  EXPECT_FALSE(o.idmap);
  EXPECT_FALSE(o.recursive_idmap);
  EXPECT_FALSE(o.tmpcopyup);
  EXPECT_EQ(o.data, "");
}

struct FlagCase {
  const char* set;
  const char* clear;  // nullptr: no clearing option
  unsigned long flag;
};

class FlagOptions : public ::testing::TestWithParam<FlagCase> {};

TEST_P(FlagOptions, SetsAndClears) {
  const FlagCase& c = GetParam();
  MountOptions set = parse({c.set});
  EXPECT_EQ(set.flags, c.flag) << c.set;
  EXPECT_EQ(set.clear, 0u);
  EXPECT_EQ(set.data, "");
  if (!c.clear) return;
  MountOptions cleared = parse({c.clear});
  EXPECT_EQ(cleared.flags, 0u) << c.clear;
  EXPECT_EQ(cleared.clear, c.flag) << c.clear;
  // The last one wins.
  MountOptions set_then_clear = parse({c.set, c.clear});
  EXPECT_EQ(set_then_clear.flags, 0u);
  EXPECT_EQ(set_then_clear.clear, c.flag);
  MountOptions clear_then_set = parse({c.clear, c.set});
  EXPECT_EQ(clear_then_set.flags, c.flag);
  EXPECT_EQ(clear_then_set.clear, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    All, FlagOptions,
    ::testing::Values(
        FlagCase{"ro", "rw", MS_RDONLY}, FlagCase{"nosuid", "suid", MS_NOSUID},
        FlagCase{"nodev", "dev", MS_NODEV}, FlagCase{"noexec", "exec", MS_NOEXEC},
        FlagCase{"sync", "async", MS_SYNCHRONOUS}, FlagCase{"dirsync", nullptr, MS_DIRSYNC},
        FlagCase{"remount", nullptr, MS_REMOUNT}, FlagCase{"mand", "nomand", MS_MANDLOCK},
        FlagCase{"noatime", "atime", MS_NOATIME}, FlagCase{"nodiratime", "diratime", MS_NODIRATIME},
        FlagCase{"relatime", "norelatime", MS_RELATIME},
        FlagCase{"strictatime", "nostrictatime", MS_STRICTATIME},
        FlagCase{"lazytime", "nolazytime", MS_LAZYTIME}, FlagCase{"silent", "loud", MS_SILENT},
        FlagCase{"bind", nullptr, MS_BIND}, FlagCase{"rbind", nullptr, MS_BIND | MS_REC}),
    [](const auto& info) { return std::string(info.param.set); });

TEST(ParseMountOptions, FlagsCombine) {
  MountOptions o = parse({"nosuid", "noexec", "nodev", "ro"});
  EXPECT_EQ(o.flags, MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY);
  EXPECT_EQ(o.clear, 0u);
  MountOptions b = parse({"rbind", "rw", "nosuid"});
  EXPECT_EQ(b.flags, MS_BIND | MS_REC | MS_NOSUID);
  EXPECT_EQ(b.clear, static_cast<unsigned long>(MS_RDONLY));
}

TEST(ParseMountOptions, Nosymfollow) {
  MountOptions o = parse({"nosymfollow"});
  EXPECT_EQ(o.flags, 256u);  // MS_NOSYMFOLLOW
  EXPECT_EQ(o.data, "");
}

struct PropagationCase {
  const char* name;
  unsigned long flags;
};

class Propagation : public ::testing::TestWithParam<PropagationCase> {};

TEST_P(Propagation, OptionAndRootfsPropagation) {
  const auto& c = GetParam();
  MountOptions o = parse({c.name});
  EXPECT_EQ(o.propagation, c.flags);
  EXPECT_EQ(o.flags, 0u);
  EXPECT_EQ(o.data, "");
  EXPECT_EQ(parse_propagation(c.name), c.flags);
}

INSTANTIATE_TEST_SUITE_P(All, Propagation,
                         ::testing::Values(PropagationCase{"private", MS_PRIVATE},
                                           PropagationCase{"rprivate", MS_PRIVATE | MS_REC},
                                           PropagationCase{"shared", MS_SHARED},
                                           PropagationCase{"rshared", MS_SHARED | MS_REC},
                                           PropagationCase{"slave", MS_SLAVE},
                                           PropagationCase{"rslave", MS_SLAVE | MS_REC},
                                           PropagationCase{"unbindable", MS_UNBINDABLE},
                                           PropagationCase{"runbindable", MS_UNBINDABLE | MS_REC}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ParseMountOptions, LastPropagationWins) {
  EXPECT_EQ(parse({"rshared", "private"}).propagation, static_cast<unsigned long>(MS_PRIVATE));
  // Propagation never leaks into the mount flags: rbind's MS_REC stays separate.
  MountOptions o = parse({"rbind", "rslave"});
  EXPECT_EQ(o.flags, MS_BIND | MS_REC);
  EXPECT_EQ(o.propagation, MS_SLAVE | MS_REC);
}

TEST(ParsePropagation, Unknown) {
  EXPECT_EQ(parse_propagation(""), 0u);
  EXPECT_EQ(parse_propagation("rbind"), 0u);
  EXPECT_EQ(parse_propagation("RSLAVE"), 0u);
}

struct RecursiveCase {
  const char* name;
  bool clear;
  unsigned long long attr;
};

class RecursiveOptions : public ::testing::TestWithParam<RecursiveCase> {};

TEST_P(RecursiveOptions, SetOrClear) {
  const auto& c = GetParam();
  MountOptions o = parse({c.name});
  EXPECT_EQ(o.recursive_set, c.clear ? 0u : c.attr) << c.name;
  EXPECT_EQ(o.recursive_clear, c.clear ? c.attr : 0u) << c.name;
  EXPECT_EQ(o.flags, 0u);
  EXPECT_EQ(o.data, "");
}

INSTANTIATE_TEST_SUITE_P(
    All, RecursiveOptions,
    ::testing::Values(RecursiveCase{"rro", false, MOUNT_ATTR_RDONLY},
                      RecursiveCase{"rrw", true, MOUNT_ATTR_RDONLY},
                      RecursiveCase{"rnosuid", false, MOUNT_ATTR_NOSUID},
                      RecursiveCase{"rsuid", true, MOUNT_ATTR_NOSUID},
                      RecursiveCase{"rnodev", false, MOUNT_ATTR_NODEV},
                      RecursiveCase{"rdev", true, MOUNT_ATTR_NODEV},
                      RecursiveCase{"rnoexec", false, MOUNT_ATTR_NOEXEC},
                      RecursiveCase{"rexec", true, MOUNT_ATTR_NOEXEC},
                      RecursiveCase{"rnodiratime", false, MOUNT_ATTR_NODIRATIME},
                      RecursiveCase{"rdiratime", true, MOUNT_ATTR_NODIRATIME},
                      RecursiveCase{"rnoatime", false, MOUNT_ATTR_NOATIME},
                      RecursiveCase{"ratime", true, MOUNT_ATTR_NOATIME},
                      RecursiveCase{"rrelatime", false, MOUNT_ATTR_RELATIME},
                      RecursiveCase{"rnorelatime", true, MOUNT_ATTR_RELATIME},
                      RecursiveCase{"rstrictatime", false, MOUNT_ATTR_STRICTATIME},
                      RecursiveCase{"rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW},
                      RecursiveCase{"rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ParseMountOptions, RecursiveCombine) {
  MountOptions o = parse({"rbind", "rro", "rnosuid", "rexec"});
  EXPECT_EQ(o.flags, MS_BIND | MS_REC);
  EXPECT_EQ(o.recursive_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
  EXPECT_EQ(o.recursive_clear, static_cast<unsigned long long>(MOUNT_ATTR_NOEXEC));
}

TEST(ParseMountOptions, DataPassthrough) {
  MountOptions o = parse({"nosuid", "mode=755", "size=65536k", "noexec", "uid=5"});
  EXPECT_EQ(o.flags, MS_NOSUID | MS_NOEXEC);
  EXPECT_EQ(o.data, "mode=755,size=65536k,uid=5");
}

TEST(ParseMountOptions, DataKeepsOrderAndUnknownWords) {
  MountOptions o = parse({"newinstance", "ptmxmode=0666", "mode=0620", "gid=5", "lowerdir=/a:/b"});
  EXPECT_EQ(o.flags, 0u);
  EXPECT_EQ(o.data, "newinstance,ptmxmode=0666,mode=0620,gid=5,lowerdir=/a:/b");
}

TEST(ParseMountOptions, EmptyOptionIgnored) {
  MountOptions o = parse({"", "mode=1777", ""});
  EXPECT_EQ(o.data, "mode=1777");
}

TEST(ParseMountOptions, Idmap) {
  MountOptions o = parse({"bind", "idmap"});
  EXPECT_TRUE(o.idmap);
  EXPECT_FALSE(o.recursive_idmap);
  EXPECT_EQ(o.data, "");
  MountOptions r = parse({"rbind", "ridmap"});
  EXPECT_TRUE(r.idmap);
  EXPECT_TRUE(r.recursive_idmap);
  EXPECT_EQ(r.data, "");
}

TEST(ParseMountOptions, Tmpcopyup) {
  EXPECT_FALSE(parse({"mode=755"}).tmpcopyup);
  MountOptions o = parse({"mode=755", "tmpcopyup", "nosuid"});
  EXPECT_TRUE(o.tmpcopyup);
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_NOSUID));
  EXPECT_EQ(o.data, "mode=755");  // never handed to the filesystem
}

TEST(ParseMountOptions, DefaultSpecOptions) {
  MountOptions dev = parse({"nosuid", "strictatime", "mode=755", "size=65536k"});
  EXPECT_EQ(dev.flags, MS_NOSUID | MS_STRICTATIME);
  EXPECT_EQ(dev.data, "mode=755,size=65536k");
  MountOptions cg = parse({"nosuid", "noexec", "nodev", "relatime", "ro"});
  EXPECT_EQ(cg.flags, MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME | MS_RDONLY);
}

// ---- flag names ----

TEST(MountFlagsToString, Names) {
  EXPECT_EQ(mount_flags_to_string(0), "0");
  EXPECT_EQ(mount_flags_to_string(MS_RDONLY), "MS_RDONLY");
  EXPECT_EQ(mount_flags_to_string(MS_BIND | MS_REC), "MS_BIND|MS_REC");
  EXPECT_EQ(mount_flags_to_string(MS_BIND | MS_REMOUNT | MS_RDONLY),
            "MS_RDONLY|MS_REMOUNT|MS_BIND");
  EXPECT_EQ(mount_flags_to_string(MS_SLAVE | MS_REC), "MS_REC|MS_SLAVE");
  EXPECT_EQ(mount_flags_to_string(MS_MOVE), "MS_MOVE");
  EXPECT_EQ(mount_flags_to_string(MS_PRIVATE), "MS_PRIVATE");
  EXPECT_EQ(mount_flags_to_string(MS_SHARED | MS_UNBINDABLE), "MS_UNBINDABLE|MS_SHARED");
  EXPECT_EQ(mount_flags_to_string(MS_NOSUID | MS_NODEV | MS_NOEXEC),
            "MS_NOSUID|MS_NODEV|MS_NOEXEC");
  EXPECT_EQ(mount_flags_to_string(MS_STRICTATIME | MS_LAZYTIME | MS_RELATIME),
            "MS_RELATIME|MS_STRICTATIME|MS_LAZYTIME");
}

TEST(MountFlagsToString, UnknownBitsInHex) {
  EXPECT_EQ(mount_flags_to_string(256), "0x100");  // MS_NOSYMFOLLOW has no name here
  EXPECT_EQ(mount_flags_to_string(MS_RDONLY | 256), "MS_RDONLY|0x100");
}

}  // namespace
}  // namespace forker::linux
