#include "linux/kernel.hpp"

#include <fcntl.h>
#include <linux/mount.h>
#include <linux/sched.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

#include "core/trace.hpp"
#include "linux/mount_options.hpp"

namespace forker::linux {
namespace {

std::string hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string names_of(uint64_t flags,
                     std::initializer_list<std::pair<uint64_t, const char*>> names) {
  std::string out;
  for (auto [flag, name] : names) {
    if (!(flags & flag)) continue;
    if (!out.empty()) out += '|';
    out += name;
    flags &= ~flag;
  }
  if (flags) out += (out.empty() ? "" : "|") + hex(flags);
  return out.empty() ? "0" : out;
}

std::string mount_attrs(uint64_t attrs) {
  return names_of(attrs, {{MOUNT_ATTR_RDONLY, "MOUNT_ATTR_RDONLY"},
                          {MOUNT_ATTR_NOSUID, "MOUNT_ATTR_NOSUID"},
                          {MOUNT_ATTR_NODEV, "MOUNT_ATTR_NODEV"},
                          {MOUNT_ATTR_NOEXEC, "MOUNT_ATTR_NOEXEC"},
                          {MOUNT_ATTR_NOATIME, "MOUNT_ATTR_NOATIME"},
                          {MOUNT_ATTR_STRICTATIME, "MOUNT_ATTR_STRICTATIME"},
                          {MOUNT_ATTR_NODIRATIME, "MOUNT_ATTR_NODIRATIME"},
                          {MOUNT_ATTR_IDMAP, "MOUNT_ATTR_IDMAP"},
                          {MOUNT_ATTR_NOSYMFOLLOW, "MOUNT_ATTR_NOSYMFOLLOW"}});
}

// "mount proc proc on /proc MS_NOSUID|MS_NODEV|MS_NOEXEC", "mount bind SRC on DST MS_BIND",
// "mount remount on DST ...", "mount propagation on DST MS_SLAVE|MS_REC": the target is always
// the word after " on ", shown as the path it names (see trace::shown_path).
std::string mount_text(const char* source, const char* target, const char* fstype,
                       unsigned long flags, const void* data) {
  std::string kind;
  constexpr unsigned long kPropagation = MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE;
  if (flags & MS_REMOUNT)
    kind = "remount";
  else if (flags & MS_MOVE)
    kind = "move";
  else if (flags & MS_BIND)
    kind = "bind";
  else if ((flags & kPropagation) && !fstype)
    kind = "propagation";
  else
    kind = fstype ? fstype : "?";
  std::string out = "mount " + kind;
  if (source && *source && kind != "remount" && kind != "propagation")
    out += " " + trace::shown_path(AT_FDCWD, source, false);
  out += " on " + trace::shown_path(target) + " " + mount_flags_to_string(flags);
  if (data && *static_cast<const char*>(data))
    out += " \"" + std::string(static_cast<const char*>(data)) + "\"";
  return out;
}

class LinuxKernel final : public Kernel {
 public:
  int mount(const char* source, const char* target, const char* fstype, unsigned long flags,
            const void* data) override {
    trace::Scope step([&] { return mount_text(source, target, fstype, flags, data); });
    return step.result(::mount(source, target, fstype, flags, data));
  }
  int umount2(const char* target, int flags) override {
    trace::Scope step([&] {
      return "umount2 " + trace::shown_path(target) + " " +
             names_of(static_cast<unsigned>(flags), {{MNT_FORCE, "MNT_FORCE"},
                                                     {MNT_DETACH, "MNT_DETACH"},
                                                     {MNT_EXPIRE, "MNT_EXPIRE"},
                                                     {UMOUNT_NOFOLLOW, "UMOUNT_NOFOLLOW"}});
    });
    return step.result(::umount2(target, flags));
  }
  int mount_setattr(int dirfd, const char* path, unsigned int flags, unsigned long long set,
                    unsigned long long clear) override {
    trace::Scope step([&] {
      return "mount_setattr " + trace::shown_path(dirfd, path) +
             ((flags & AT_RECURSIVE) ? " AT_RECURSIVE" : "") + " set " + mount_attrs(set) +
             " clear " + mount_attrs(clear);
    });
    struct mount_attr attr {};
    attr.attr_set = set;
    attr.attr_clr = clear;
    return step.result(
        static_cast<int>(::syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof attr)));
  }
  int move_mount(int from_dirfd, const char* from_path, int to_dirfd, const char* to_path,
                 unsigned flags) override {
    trace::Scope step([&] {
      std::string from = (flags & MOVE_MOUNT_F_EMPTY_PATH)
                             ? "detached mount (fd " + std::to_string(from_dirfd) + ")"
                             : trace::shown_path(from_dirfd, from_path, false);
      return "move_mount " + from + " on " + trace::shown_path(to_dirfd, to_path) + " " +
             names_of(flags, {{MOVE_MOUNT_F_EMPTY_PATH, "MOVE_MOUNT_F_EMPTY_PATH"},
                              {MOVE_MOUNT_T_EMPTY_PATH, "MOVE_MOUNT_T_EMPTY_PATH"},
                              {MOVE_MOUNT_F_SYMLINKS, "MOVE_MOUNT_F_SYMLINKS"},
                              {MOVE_MOUNT_F_AUTOMOUNTS, "MOVE_MOUNT_F_AUTOMOUNTS"}});
    });
    return step.result(static_cast<int>(
        ::syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags)));
  }
  int pivot_root(const char* new_root, const char* put_old) override {
    trace::Scope step([&] { return "pivot_root " + std::string(new_root) + " " + put_old; });
    int rc = step.result(static_cast<int>(::syscall(SYS_pivot_root, new_root, put_old)));
    if (rc == 0) trace::set_path_root("");  // from here on, paths are the container's own
    return rc;
  }
  int chroot(const char* path) override {
    trace::Scope step([&] { return "chroot " + trace::shown_path(path); });
    int rc = step.result(::chroot(path));
    if (rc == 0) trace::set_path_root("");
    return rc;
  }
  int chdir(const char* path) override {
    trace::Scope step([&] { return "chdir " + trace::shown_path(path); });
    return step.result(::chdir(path));
  }
  int fchdir(int fd) override {
    trace::Scope step([&] { return "fchdir " + trace::shown_path(fd, "", false); });
    return step.result(::fchdir(fd));
  }
  int mknodat(int dirfd, const char* path, mode_t mode, dev_t dev) override {
    trace::Scope step([&] {
      const char* type = S_ISBLK(mode) ? "b" : S_ISFIFO(mode) ? "p" : "c";
      char perm[8];
      snprintf(perm, sizeof perm, "%04o", mode & 07777);
      return "mknod " + trace::shown_path(dirfd, path) + " " + type + " " +
             std::to_string(major(dev)) + ":" + std::to_string(minor(dev)) + " " + perm;
    });
    return step.result(::mknodat(dirfd, path, mode, dev));
  }
  int symlinkat(const char* target, int dirfd, const char* path) override {
    trace::Scope step(
        [&] { return "symlink " + trace::shown_path(dirfd, path) + " -> " + target; });
    return step.result(::symlinkat(target, dirfd, path));
  }
  int sethostname(const char* name, size_t len) override {
    trace::Scope step([&] { return "sethostname " + std::string(name, len); });
    return step.result(::sethostname(name, len));
  }
  int setdomainname(const char* name, size_t len) override {
    trace::Scope step([&] { return "setdomainname " + std::string(name, len); });
    return step.result(::setdomainname(name, len));
  }
  int setns(int fd, int nstype) override {
    trace::Scope step([&] {
      return "setns " + trace::shown_path(fd, "", false) + " " +
             clone_flags_to_string(static_cast<unsigned>(nstype));
    });
    return step.result(::setns(fd, nstype));
  }
  int unshare(int flags) override {
    trace::Scope step(
        [&] { return "unshare " + clone_flags_to_string(static_cast<unsigned>(flags)); });
    return step.result(::unshare(flags));
  }
};

}  // namespace

Kernel& real_kernel() {
  static LinuxKernel kernel;
  return kernel;
}

std::string clone_flags_to_string(uint64_t flags) {
  return names_of(flags, {{CLONE_NEWUSER, "CLONE_NEWUSER"},
                          {CLONE_NEWNS, "CLONE_NEWNS"},
                          {CLONE_NEWPID, "CLONE_NEWPID"},
                          {CLONE_NEWNET, "CLONE_NEWNET"},
                          {CLONE_NEWIPC, "CLONE_NEWIPC"},
                          {CLONE_NEWUTS, "CLONE_NEWUTS"},
                          {CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
                          {CLONE_NEWTIME, "CLONE_NEWTIME"},
                          {CLONE_PIDFD, "CLONE_PIDFD"},
                          {CLONE_INTO_CGROUP, "CLONE_INTO_CGROUP"},
                          {CLONE_VM, "CLONE_VM"},
                          {CLONE_FS, "CLONE_FS"},
                          {CLONE_FILES, "CLONE_FILES"},
                          {CLONE_SIGHAND, "CLONE_SIGHAND"},
                          {CLONE_VFORK, "CLONE_VFORK"},
                          {CLONE_PARENT, "CLONE_PARENT"},
                          {CLONE_THREAD, "CLONE_THREAD"}});
}

}  // namespace forker::linux
