#include "linux/mount_options.hpp"

#include <linux/mount.h>
#include <sys/mount.h>

#include <string_view>

namespace forker::linux {
namespace {

struct FlagOption {
  std::string_view name;
  bool clear;  // the option turns the flag off
  unsigned long flag;
};

constexpr FlagOption kFlagOptions[] = {
    {"ro", false, MS_RDONLY},          {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},      {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},        {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},      {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},   {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},      {"nomand", true, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},    {"atime", true, MS_NOATIME},
    {"nodiratime", false, MS_NODIRATIME}, {"diratime", true, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},  {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME}, {"nostrictatime", true, MS_STRICTATIME},
    {"lazytime", false, MS_LAZYTIME},  {"nolazytime", true, MS_LAZYTIME},
    {"silent", false, MS_SILENT},      {"loud", true, MS_SILENT},
    {"bind", false, MS_BIND},          {"rbind", false, MS_BIND | MS_REC},
};

constexpr FlagOption kPropagationOptions[] = {
    {"private", false, MS_PRIVATE},      {"rprivate", false, MS_PRIVATE | MS_REC},
    {"shared", false, MS_SHARED},        {"rshared", false, MS_SHARED | MS_REC},
    {"slave", false, MS_SLAVE},          {"rslave", false, MS_SLAVE | MS_REC},
    {"unbindable", false, MS_UNBINDABLE}, {"runbindable", false, MS_UNBINDABLE | MS_REC},
};

struct AttrOption {
  std::string_view name;
  bool clear;
  unsigned long long attr;
};

// Recursive variants applied with mount_setattr(AT_RECURSIVE), as runc 1.1 does.
constexpr AttrOption kRecursiveOptions[] = {
    {"rro", false, MOUNT_ATTR_RDONLY},       {"rrw", true, MOUNT_ATTR_RDONLY},
    {"rnosuid", false, MOUNT_ATTR_NOSUID},   {"rsuid", true, MOUNT_ATTR_NOSUID},
    {"rnodev", false, MOUNT_ATTR_NODEV},     {"rdev", true, MOUNT_ATTR_NODEV},
    {"rnoexec", false, MOUNT_ATTR_NOEXEC},   {"rexec", true, MOUNT_ATTR_NOEXEC},
    {"rnodiratime", false, MOUNT_ATTR_NODIRATIME}, {"rdiratime", true, MOUNT_ATTR_NODIRATIME},
    {"rnoatime", false, MOUNT_ATTR_NOATIME}, {"ratime", true, MOUNT_ATTR_NOATIME},
    {"rrelatime", false, MOUNT_ATTR_RELATIME}, {"rnorelatime", true, MOUNT_ATTR_RELATIME},
    {"rstrictatime", false, MOUNT_ATTR_STRICTATIME}, {"rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW},
    {"rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW},
};

}  // namespace

Result<MountOptions> parse_mount_options(const std::vector<std::string>& options) {
  MountOptions out;
  for (const auto& opt : options) {
    bool matched = false;
    for (const auto& f : kFlagOptions) {
      if (opt != f.name) continue;
      if (f.clear) {
        out.flags &= ~f.flag;
        out.clear |= f.flag;
      } else {
        out.flags |= f.flag;
        out.clear &= ~f.flag;
      }
      matched = true;
      break;
    }
    if (matched) continue;
    for (const auto& p : kPropagationOptions) {
      if (opt != p.name) continue;
      out.propagation = p.flag;
      matched = true;
      break;
    }
    if (matched) continue;
    for (const auto& a : kRecursiveOptions) {
      if (opt != a.name) continue;
      if (a.clear) out.recursive_clear |= a.attr;
      else out.recursive_set |= a.attr;
      matched = true;
      break;
    }
    if (matched) continue;
    if (opt == "idmap" || opt == "ridmap") {
      out.idmap = true;
      out.recursive_idmap = opt == "ridmap";
      continue;
    }
    if (opt == "tmpcopyup") {
      out.tmpcopyup = true;
      continue;
    }
    if (opt == "nosymfollow") {
      out.recursive_set |= 0;  // plain nosymfollow is a per-mount flag (MS_NOSYMFOLLOW)
      out.flags |= 256;        // MS_NOSYMFOLLOW, absent from older glibc headers
      continue;
    }
    if (opt.empty()) continue;
    if (!out.data.empty()) out.data += ',';
    out.data += opt;
  }
  return out;
}

std::string mount_flags_to_string(unsigned long flags) {
  static constexpr std::pair<unsigned long, std::string_view> kNames[] = {
      {MS_RDONLY, "MS_RDONLY"},   {MS_NOSUID, "MS_NOSUID"},     {MS_NODEV, "MS_NODEV"},
      {MS_NOEXEC, "MS_NOEXEC"},   {MS_SYNCHRONOUS, "MS_SYNCHRONOUS"}, {MS_REMOUNT, "MS_REMOUNT"},
      {MS_MANDLOCK, "MS_MANDLOCK"}, {MS_DIRSYNC, "MS_DIRSYNC"}, {MS_NOATIME, "MS_NOATIME"},
      {MS_NODIRATIME, "MS_NODIRATIME"}, {MS_BIND, "MS_BIND"}, {MS_MOVE, "MS_MOVE"},
      {MS_REC, "MS_REC"},         {MS_SILENT, "MS_SILENT"},     {MS_UNBINDABLE, "MS_UNBINDABLE"},
      {MS_PRIVATE, "MS_PRIVATE"}, {MS_SLAVE, "MS_SLAVE"},       {MS_SHARED, "MS_SHARED"},
      {MS_RELATIME, "MS_RELATIME"}, {MS_STRICTATIME, "MS_STRICTATIME"}, {MS_LAZYTIME, "MS_LAZYTIME"},
  };
  std::string out;
  for (auto [flag, name] : kNames) {
    if (!(flags & flag)) continue;
    if (!out.empty()) out += '|';
    out += name;
    flags &= ~flag;
  }
  if (flags) {
    if (!out.empty()) out += '|';
    out += "0x" + [&] {
      char buf[32];
      snprintf(buf, sizeof buf, "%lx", flags);
      return std::string(buf);
    }();
  }
  return out.empty() ? "0" : out;
}

unsigned long parse_propagation(const std::string& name) {
  for (const auto& p : kPropagationOptions)
    if (name == p.name) return p.flag;
  return 0;
}

}  // namespace forker::linux
