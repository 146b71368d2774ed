#include "linux/rootfs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/file.hpp"
#include "core/strings.hpp"
#include "core/trace.hpp"
#include "core/unique_fd.hpp"
#include "linux/idmap.hpp"
#include "linux/rootless.hpp"
#include "linux/safe_path.hpp"

namespace forker::linux {
namespace {

Error mount_error(const std::string& what, const std::string& source, const std::string& target,
                  unsigned long flags) {
  std::string op = "mount " + what;
  if (!source.empty() && source != what) op += " (source " + source + ")";
  op += " on";
  std::string obj = target;
  if (flags) obj += " (flags " + mount_flags_to_string(flags) + ")";
  return sys_error(op, obj);
}

std::string absolute_in(const std::string& base, const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  return base + "/" + path;
}

MountKind kind_of(const oci::Mount& m, const MountOptions& o) {
  if (o.flags & MS_BIND || m.type == "bind") return MountKind::Bind;
  if (m.type == "proc") return MountKind::Proc;
  if (m.type == "sysfs") return MountKind::Sysfs;
  if (m.type == "cgroup" || m.type == "cgroup2") return MountKind::Cgroup;
  return MountKind::Other;
}

constexpr unsigned long kPerMountFlags =
    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME |
    MS_STRICTATIME | 256 /* MS_NOSYMFOLLOW */;

// Flags a bind remount must keep when the kernel has locked them (user namespaces).
unsigned long locked_flags_of(const char* path) {
  struct statvfs s {};
  if (statvfs(path, &s) < 0) return 0;
  unsigned long out = 0;
  if (s.f_flag & ST_NOSUID) out |= MS_NOSUID;
  if (s.f_flag & ST_NODEV) out |= MS_NODEV;
  if (s.f_flag & ST_NOEXEC) out |= MS_NOEXEC;
  if (s.f_flag & ST_RDONLY) out |= MS_RDONLY;
  if (s.f_flag & ST_NOATIME) out |= MS_NOATIME;
  if (s.f_flag & ST_NODIRATIME) out |= MS_NODIRATIME;
  if (s.f_flag & ST_RELATIME) out |= MS_RELATIME;
  return out;
}

Status remount_bind(Kernel& k, const std::string& target_fd_path, const std::string& shown,
                    unsigned long flags) {
  unsigned long f = MS_BIND | MS_REMOUNT | (flags & kPerMountFlags);
  if (k.mount(nullptr, target_fd_path.c_str(), nullptr, f, nullptr) == 0) return ok();
  if (errno == EPERM) {
    // Locked flags (inherited in a user namespace) must be repeated in the remount.
    unsigned long keep = locked_flags_of(target_fd_path.c_str());
    if (k.mount(nullptr, target_fd_path.c_str(), nullptr, f | keep, nullptr) == 0) return ok();
  }
  return mount_error("remount", "", shown, f);
}

Status mount_cgroup(Kernel& k, const RootfsPlan& plan, const MountStep& m, int root_fd) {
  std::string shown = host_path(plan.rootfs, m.destination);
  UniqueFd target = FORKER_TRY(mkdir_all_in_root(root_fd, m.destination, false));
  std::string tpath = fd_path(target.get());
  unsigned long flags = m.options.flags & kPerMountFlags & ~MS_RDONLY;
  // A single unified hierarchy: mount it directly.
  if (plan.cgroup_entries.size() == 1 && plan.cgroup_entries[0].fstype == "cgroup2") {
    const auto& e = plan.cgroup_entries[0];
    if (plan.new_cgroupns) {
      if (k.mount("cgroup2", tpath.c_str(), "cgroup2", m.options.flags & kPerMountFlags, nullptr) < 0)
        return mount_error("cgroup2", "", shown, m.options.flags);
    } else {
      if (k.mount(e.host_path.c_str(), tpath.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
        return mount_error("bind", e.host_path, shown, MS_BIND | MS_REC);
      if (m.options.flags & kPerMountFlags) {
        UniqueFd mounted = FORKER_TRY(open_in_root(root_fd, m.destination, O_PATH));
        FORKER_TRY(remount_bind(k, fd_path(mounted.get()), shown, m.options.flags));
      }
    }
    return ok();
  }
  // v1 and hybrid: a tmpfs holding one mount per hierarchy, as runc lays it out.
  if (k.mount("tmpfs", tpath.c_str(), "tmpfs", flags, "mode=755") < 0)
    return mount_error("tmpfs", "", shown, flags);
  for (const auto& e : plan.cgroup_entries) {
    std::string dest = m.destination + "/" + e.name;
    UniqueFd sub = FORKER_TRY(mkdir_all_in_root(root_fd, dest, false));
    std::string spath = fd_path(sub.get());
    std::string sshown = host_path(plan.rootfs, dest);
    unsigned long sflags = m.options.flags & kPerMountFlags;
    if (plan.new_cgroupns) {
      const char* data = e.options.empty() ? nullptr : e.options.c_str();
      if (k.mount(e.fstype.c_str(), spath.c_str(), e.fstype.c_str(), sflags, data) < 0)
        return mount_error(e.fstype, "", sshown, sflags);
    } else {
      if (k.mount(e.host_path.c_str(), spath.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
        return mount_error("bind", e.host_path, sshown, MS_BIND | MS_REC);
      if (sflags) {
        UniqueFd mounted = FORKER_TRY(open_in_root(root_fd, dest, O_PATH));
        FORKER_TRY(remount_bind(k, fd_path(mounted.get()), sshown, sflags));
      }
    }
  }
  if (m.options.flags & MS_RDONLY) {
    UniqueFd mounted = FORKER_TRY(open_in_root(root_fd, m.destination, O_PATH));
    FORKER_TRY(remount_bind(k, fd_path(mounted.get()), shown, m.options.flags));
  }
  return ok();
}

// tmpcopyup: copies the tree in directory SRC (the one a tmpfs now covers) into DST (the new
// tmpfs): directories, files, symlinks and device nodes with their owners and modes, as runc.
Status copy_tree(int src, int dst, const std::string& shown) {
  UniqueFd dup_fd(fcntl(src, F_DUPFD_CLOEXEC, 0));
  if (!dup_fd) return sys_error("tmpcopyup: dup", shown);
  DIR* dir = fdopendir(dup_fd.get());
  if (!dir) return sys_error("tmpcopyup: opendir", shown);
  dup_fd.release();
  struct DirCloser {
    DIR* d;
    ~DirCloser() { closedir(d); }
  } closer{dir};
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = shown + "/" + name;
    struct stat st {};
    if (fstatat(src, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
      return sys_error("tmpcopyup: stat", path);
    mode_t perm = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode)) {
      if (mkdirat(dst, name.c_str(), 0700) < 0) return sys_error("tmpcopyup: mkdir", path);
      UniqueFd s(openat(src, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      UniqueFd d(openat(dst, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!s || !d) return sys_error("tmpcopyup: open", path);
      FORKER_TRY(copy_tree(s.get(), d.get(), path));
      if (fchown(d.get(), st.st_uid, st.st_gid) < 0 || fchmod(d.get(), perm) < 0)
        return sys_error("tmpcopyup: chown/chmod", path);
    } else if (S_ISREG(st.st_mode)) {
      UniqueFd s(openat(src, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      UniqueFd d(openat(dst, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        0600));
      if (!s || !d) return sys_error("tmpcopyup: open", path);
      char buf[65536];
      for (;;) {
        ssize_t n = read(s.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error("tmpcopyup: read", path);
        if (n == 0) break;
        for (ssize_t off = 0; off < n;) {
          ssize_t w = write(d.get(), buf + off, static_cast<size_t>(n - off));
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) return sys_error("tmpcopyup: write", path);
          off += w;
        }
      }
      if (fchown(d.get(), st.st_uid, st.st_gid) < 0 || fchmod(d.get(), perm) < 0)
        return sys_error("tmpcopyup: chown/chmod", path);
    } else if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t n = readlinkat(src, name.c_str(), target, sizeof target - 1);
      if (n < 0) return sys_error("tmpcopyup: readlink", path);
      target[n] = '\0';
      if (symlinkat(target, dst, name.c_str()) < 0) return sys_error("tmpcopyup: symlink", path);
      if (fchownat(dst, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        return sys_error("tmpcopyup: chown", path);
    } else {
      if (mknodat(dst, name.c_str(), st.st_mode, st.st_rdev) < 0)
        return sys_error("tmpcopyup: mknod", path);
      if (fchownat(dst, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
          fchmodat(dst, name.c_str(), perm, 0) < 0)
        return sys_error("tmpcopyup: chown/chmod", path);
    }
  }
  return ok();
}

Status apply_mount(Kernel& k, const RootfsPlan& plan, const MountStep& m, int root_fd) {
  if (m.kind == MountKind::Cgroup) return mount_cgroup(k, plan, m, root_fd);
  std::string shown = host_path(plan.rootfs, m.destination);
  bool file_target = false;
  if (m.kind == MountKind::Bind) {
    struct stat st {};
    if (stat(m.source.c_str(), &st) < 0) return sys_error("stat bind source", m.source);
    file_target = !S_ISDIR(st.st_mode);
  }
  if (m.kind == MountKind::Proc || m.kind == MountKind::Sysfs) {
    // Checked before creating it too: a dangling symlink would only fail as "no such file".
    auto exact = open_in_root(root_fd, m.destination, O_PATH, RESOLVE_NO_SYMLINKS);
    if (!exact && exact.error().err == ELOOP)
      return make_error("mount " + m.type + " on " + shown + ": target is a symlink");
  }
  UniqueFd target = FORKER_TRY(mkdir_all_in_root(root_fd, m.destination, file_target));
  if (m.kind == MountKind::Proc || m.kind == MountKind::Sysfs) {
    // CVE-2019-19921: /proc and /sys must be real directories, never symlinks into the image.
    auto exact = open_in_root(root_fd, m.destination, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
    if (!exact)
      return make_error("mount " + m.type + " on " + shown +
                        ": target is a symlink or not a directory");
  }
  std::string tpath = fd_path(target.get());
  const MountOptions& o = m.options;
  unsigned long flags = o.flags & ~MS_REMOUNT;
  const char* data = o.data.empty() ? nullptr : o.data.c_str();
  if (m.kind == MountKind::Bind && m.userns_fd >= 0) {
    FORKER_TRY(mount_idmapped(m.source, target.get(), m.userns_fd,
                              (flags & MS_REC) || m.options.recursive_idmap, shown));
    if (flags & kPerMountFlags) {
      UniqueFd mounted = FORKER_TRY(open_in_root(root_fd, m.destination, O_PATH));
      FORKER_TRY(remount_bind(k, fd_path(mounted.get()), shown, flags));
    }
  } else if (m.kind == MountKind::Bind) {
    unsigned long bflags = MS_BIND | (flags & MS_REC);
    if (k.mount(m.source.c_str(), tpath.c_str(), nullptr, bflags, nullptr) < 0)
      return mount_error("bind", m.source, shown, bflags);
    if (flags & kPerMountFlags) {
      UniqueFd mounted = FORKER_TRY(open_in_root(root_fd, m.destination, O_PATH));
      FORKER_TRY(remount_bind(k, fd_path(mounted.get()), shown, flags));
    }
  } else {
    const char* src = m.source.empty() ? m.type.c_str() : m.source.c_str();
    // tmpcopyup: keep a handle on the directory the tmpfs is about to cover, to copy it in.
    UniqueFd covered;
    if (o.tmpcopyup && m.type == "tmpfs") {
      covered.reset(openat(target.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!covered) return sys_error("open", shown);
    }
    if (k.mount(src, tpath.c_str(), m.type.c_str(), flags, data) < 0) {
      // sysfs cannot be mounted without a network namespace of our own (or in a user
      // namespace); fall back to a recursive bind of the host's /sys, as runc does.
      if (m.kind == MountKind::Sysfs && (errno == EPERM || errno == EBUSY)) {
        if (k.mount("/sys", tpath.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
          return mount_error("bind", "/sys", shown, MS_BIND | MS_REC);
        if (flags & kPerMountFlags) {
          UniqueFd mounted = FORKER_TRY(open_in_root(root_fd, m.destination, O_PATH));
          FORKER_TRY(remount_bind(k, fd_path(mounted.get()), shown, flags));
        }
      } else {
        return mount_error(m.type, src, shown, flags);
      }
    }
    if (covered) {
      // Copied before any read-only remount: a tmpfs mounted "ro" gets its files first.
      UniqueFd fresh = FORKER_TRY(open_in_root(root_fd, m.destination, O_RDONLY | O_DIRECTORY));
      if ((flags & MS_RDONLY) &&
          k.mount(nullptr, fd_path(fresh.get()).c_str(), nullptr, MS_REMOUNT | (flags & ~MS_RDONLY),
                  data) < 0)
        return mount_error("remount", "", shown, flags & ~MS_RDONLY);
      FORKER_TRY(copy_tree(covered.get(), fresh.get(), shown));
      if ((flags & MS_RDONLY) &&
          k.mount(nullptr, fd_path(fresh.get()).c_str(), nullptr, MS_REMOUNT | flags, data) < 0)
        return mount_error("remount", "", shown, flags);
    }
  }
  if (!o.propagation && !o.recursive_set && !o.recursive_clear) return ok();
  // The fd opened before mounting names the covered directory: reopen to reach the new mount.
  UniqueFd mounted = FORKER_TRY(open_in_root(root_fd, m.destination, O_PATH));
  std::string mpath = fd_path(mounted.get());
  if (o.propagation && k.mount(nullptr, mpath.c_str(), nullptr, o.propagation, nullptr) < 0)
    return mount_error("propagation", "", shown, o.propagation);
  if (o.recursive_set || o.recursive_clear) {
    if (k.mount_setattr(mounted.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, o.recursive_set,
                        o.recursive_clear) < 0)
      return sys_error("mount_setattr", shown);
  }
  return ok();
}

Status create_device(Kernel& k, const RootfsPlan& plan, const oci::Device& d, int root_fd) {
  std::string shown = host_path(plan.rootfs, d.path);
  mode_t type = d.type == "b" ? S_IFBLK : d.type == "p" ? S_IFIFO : S_IFCHR;
  mode_t perm = d.file_mode ? (*d.file_mode & 07777) : 0666;
  dev_t dev = makedev(static_cast<unsigned>(d.major), static_cast<unsigned>(d.minor));
  if (plan.in_userns) {
    // mknod is refused in a user namespace: bind the host's node onto an empty file.
    UniqueFd target = FORKER_TRY(mkdir_all_in_root(root_fd, d.path, true));
    if (k.mount(d.path.c_str(), fd_path(target.get()).c_str(), nullptr, MS_BIND, nullptr) < 0)
      return mount_error("bind", d.path, shown, MS_BIND);
    return ok();
  }
  std::string parent = d.path.substr(0, d.path.rfind('/'));
  std::string name = d.path.substr(d.path.rfind('/') + 1);
  UniqueFd dir = FORKER_TRY(mkdir_all_in_root(root_fd, parent.empty() ? "/" : parent, false));
  UniqueFd dirfd = FORKER_TRY(open_in_root(root_fd, parent.empty() ? "/" : parent, O_DIRECTORY));
  unlinkat(dirfd.get(), name.c_str(), 0);
  if (k.mknodat(dirfd.get(), name.c_str(), type | perm, dev) < 0)
    return sys_error("mknod", shown);
  // mknod applies the umask; the mode and owner the config asks for are set explicitly.
  if (fchmodat(dirfd.get(), name.c_str(), perm, 0) < 0) return sys_error("chmod", shown);
  if ((d.uid || d.gid) &&
      fchownat(dirfd.get(), name.c_str(), d.uid.value_or(0), d.gid.value_or(0),
               AT_SYMLINK_NOFOLLOW) < 0)
    return sys_error("chown", shown);
  return ok();
}

Status setup_dev(Kernel& k, const RootfsPlan& plan, int root_fd) {
  for (const auto& d : plan.devices) FORKER_TRY(create_device(k, plan, d, root_fd));
  UniqueFd dev = FORKER_TRY(mkdir_all_in_root(root_fd, "/dev", false));
  UniqueFd devdir = FORKER_TRY(open_in_root(root_fd, "/dev", O_DIRECTORY));
  static constexpr std::pair<const char*, const char*> kLinks[] = {
      {"/proc/self/fd", "fd"},        {"/proc/self/fd/0", "stdin"},
      {"/proc/self/fd/1", "stdout"},  {"/proc/self/fd/2", "stderr"},
      {"pts/ptmx", "ptmx"},
  };
  for (auto [target, name] : kLinks) {
    if (std::string(name) == "ptmx") unlinkat(devdir.get(), name, 0);
    if (k.symlinkat(target, devdir.get(), name) < 0 && errno != EEXIST)
      return sys_error("symlink", host_path(plan.rootfs, std::string("/dev/") + name));
  }
  if (access("/proc/kcore", F_OK) == 0) {
    if (k.symlinkat("/proc/kcore", devdir.get(), "core") < 0 && errno != EEXIST)
      return sys_error("symlink", host_path(plan.rootfs, "/dev/core"));
  }
  return ok();
}

// mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The mount point holding PATH: the longest mount point in mountinfo that is a prefix of it.
Status make_parent_mount_private(Kernel& k, const std::string& path) {
  auto text = read_file("/proc/self/mountinfo");
  if (!text) return std::move(text).error();
  std::string best = "/";
  for (const auto& line : split(*text, '\n')) {
    auto fields = split(line, ' ');
    if (fields.size() < 5) continue;
    const std::string mp = unescape_mountinfo(fields[4]);
    bool prefix = mp == "/" || path == mp || path.starts_with(mp + "/");
    if (prefix && mp.size() > best.size()) best = mp;
  }
  if (k.mount(nullptr, best.c_str(), nullptr, MS_PRIVATE, nullptr) < 0)
    return mount_error("propagation", "", best, MS_PRIVATE);
  return ok();
}

// The overlay of root_overlay, made here: inside our user namespace when the runtime is
// rootless (the host's refuses an unprivileged fsopen), detached until mount_root attaches it.
Result<UniqueFd> make_root_overlay(const OverlaySpec& spec) {
  trace::Scope step([&] {
    if (spec.upper.empty() && spec.lowers.size() == 1)
      return "root mount: open_tree " + trace::shown_path(AT_FDCWD, spec.lowers.front().c_str(),
                                                          false) + " read-only (detached)";
    return "root mount: fsopen overlay, " + std::to_string(spec.lowers.size()) +
           " lower layer(s)" + (spec.userxattr ? ", userxattr" : "") + ", fsmount (detached)";
  });
  Result<UniqueFd> mnt = step.status(overlay_mount_fd(spec));
  return mnt;
}

// pivot_root needs the new root to be a mount point: the rootfs bound onto itself, or the
// detached mount the parent made for it (or we made, root_overlay) attached there, inside our
// mount namespace only.
Status mount_root(Kernel& k, const RootfsPlan& plan) {
  UniqueFd made;
  if (plan.root_mount_fd < 0 && plan.root_overlay)
    made = FORKER_TRY(make_root_overlay(*plan.root_overlay).context("root overlay"));
  int fd = made ? made.get() : plan.root_mount_fd;
  if (fd >= 0) {
    if (k.move_mount(fd, "", AT_FDCWD, plan.rootfs.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
      return sys_error("move_mount root mount on", plan.rootfs);
    return ok();
  }
  if (k.mount(plan.rootfs.c_str(), plan.rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
    return mount_error("bind", plan.rootfs, plan.rootfs, MS_BIND | MS_REC);
  return ok();
}

}  // namespace

void unmount_under(const std::string& path) {
  auto text = read_file("/proc/self/mountinfo");
  if (!text) return;
  std::vector<std::string> targets;
  for (const auto& line : split(*text, '\n')) {
    auto fields = split(line, ' ');
    if (fields.size() < 5) continue;
    const std::string mp = unescape_mountinfo(fields[4]);
    if (mp == path || mp.starts_with(path + "/")) targets.push_back(mp);
  }
  // Later lines are mounted on top of or below earlier ones: undo in reverse order.
  for (auto it = targets.rbegin(); it != targets.rend(); ++it) umount2(it->c_str(), MNT_DETACH);
}

std::vector<oci::Device> default_devices() {
  auto dev = [](const char* path, int64_t major, int64_t minor) {
    oci::Device d;
    d.type = "c";
    d.path = path;
    d.major = major;
    d.minor = minor;
    d.file_mode = 0666;
    d.uid = 0;
    d.gid = 0;
    return d;
  };
  return {dev("/dev/null", 1, 3),    dev("/dev/zero", 1, 5), dev("/dev/full", 1, 7),
          dev("/dev/random", 1, 8),  dev("/dev/urandom", 1, 9), dev("/dev/tty", 5, 0)};
}

Result<RootfsPlan> plan_rootfs(const oci::Spec& spec, const std::string& bundle, bool no_pivot) {
  RootfsPlan plan;
  std::string root = absolute_in(bundle, spec.root.path);
  char resolved[PATH_MAX];
  if (!realpath(root.c_str(), resolved)) return sys_error("rootfs", root);
  struct stat st {};
  if (stat(resolved, &st) < 0 || !S_ISDIR(st.st_mode))
    return make_error("rootfs " + root + ": not a directory");
  plan.rootfs = resolved;
  plan.readonly = spec.root.readonly;
  plan.no_pivot = no_pivot;
  plan.root_propagation = spec.linux.rootfs_propagation.empty()
                              ? (MS_SLAVE | MS_REC)
                              : parse_propagation(spec.linux.rootfs_propagation);
  plan.root_propagation_given = !spec.linux.rootfs_propagation.empty();
  // Also when the runtime itself runs in a user namespace (rootless podman): mknod is refused.
  plan.in_userns = spec.has_namespace("user") || in_user_namespace();
  plan.new_cgroupns = spec.find_namespace("cgroup") && spec.find_namespace("cgroup")->path.empty();
  plan.mount_label = spec.linux.mount_label;
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    const auto& m = spec.mounts[i];
    auto opts = parse_mount_options(m.options);
    if (!opts) return std::move(opts).error().add_context("mounts[" + std::to_string(i) + "]");
    MountStep step;
    step.options = std::move(*opts);
    step.kind = kind_of(m, step.options);
    step.type = m.type;
    step.destination = m.destination[0] == '/' ? m.destination : "/" + m.destination;
    step.source = step.kind == MountKind::Bind ? absolute_in(bundle, m.source) : m.source;
    if (step.options.idmap || !m.uid_mappings.empty() || !m.gid_mappings.empty()) {
      std::string where = "mounts[" + std::to_string(i) + "] " + m.destination;
      if (step.kind != MountKind::Bind) return make_error(where + ": idmap needs a bind mount");
      // Without mappings of its own, the mount takes the container's (runc 1.2 semantics).
      step.uid_mappings = m.uid_mappings.empty() ? spec.linux.uid_mappings : m.uid_mappings;
      step.gid_mappings = m.gid_mappings.empty() ? spec.linux.gid_mappings : m.gid_mappings;
      if (step.uid_mappings.empty() || step.gid_mappings.empty())
        return make_error(where + ": idmap needs uidMappings and gidMappings");
      step.options.idmap = true;
    }
    if (step.kind == MountKind::Bind && step.destination == "/dev") plan.setup_dev = false;
    plan.mounts.push_back(std::move(step));
  }
  plan.devices = default_devices();
  for (const auto& d : spec.linux.devices) {
    // A device the config lists replaces the default of the same path.
    std::erase_if(plan.devices, [&](const oci::Device& x) { return x.path == d.path; });
    plan.devices.push_back(d);
  }
  plan.masked_paths = spec.linux.masked_paths;
  plan.readonly_paths = spec.linux.readonly_paths;
  return plan;
}

Status prepare_rootfs(Kernel& k, const RootfsPlan& plan) {
  if (plan.host_mount_ns) {
    // Attached here it would show in the host's mount table, which is what it exists to avoid.
    if (plan.root_mount_fd >= 0 || plan.root_overlay)
      return make_error("rootfs " + plan.rootfs +
                        ": a detached root mount needs a mount namespace");
    // The host's own mount namespace: its propagation is not ours to change.
    UniqueFd root(open(plan.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return sys_error("open", plan.rootfs);
    for (const auto& m : plan.mounts) FORKER_TRY(apply_mount(k, plan, m, root.get()));
    if (plan.setup_dev) FORKER_TRY(setup_dev(k, plan, root.get()));
    return ok();
  }
  // Nothing we mount may propagate back to the host.
  if (k.mount(nullptr, "/", nullptr, plan.root_propagation, nullptr) < 0)
    return mount_error("propagation", "", "/", plan.root_propagation);
  // pivot_root refuses a new root whose parent mount is shared, and an unbindable parent
  // cannot be bound: for those rootfsPropagation values make just that parent mount private.
  if (plan.root_propagation & (MS_SHARED | MS_UNBINDABLE))
    FORKER_TRY(make_parent_mount_private(k, plan.rootfs));
  FORKER_TRY(mount_root(k, plan));
  UniqueFd root(open(plan.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return sys_error("open", plan.rootfs);
  for (const auto& m : plan.mounts) FORKER_TRY(apply_mount(k, plan, m, root.get()));
  if (plan.setup_dev) FORKER_TRY(setup_dev(k, plan, root.get()));
  return ok();
}

Status enter_rootfs(Kernel& k, const RootfsPlan& plan) {
  if (plan.host_mount_ns) {
    // pivot_root would replace the host's root: a chroot is all a shared namespace allows.
    if (k.chroot(plan.rootfs.c_str()) < 0) return sys_error("chroot", plan.rootfs);
    if (k.chdir("/") < 0) return sys_error("chdir", "/");
    return ok();
  }
  if (plan.no_pivot) {
    // For ramfs roots, where pivot_root is refused.
    if (k.chdir(plan.rootfs.c_str()) < 0) return sys_error("chdir", plan.rootfs);
    if (k.mount(plan.rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr) < 0)
      return mount_error("move", plan.rootfs, "/", MS_MOVE);
    if (k.chroot(".") < 0) return sys_error("chroot", plan.rootfs);
    if (k.chdir("/") < 0) return sys_error("chdir", "/");
    return ok();
  }
  UniqueFd oldroot(open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!oldroot) return sys_error("open", "/");
  UniqueFd newroot(open(plan.rootfs.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!newroot) return sys_error("open", plan.rootfs);
  if (k.fchdir(newroot.get()) < 0) return sys_error("fchdir", plan.rootfs);
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then drops
  // the old root without needing a directory for it inside the image.
  if (k.pivot_root(".", ".") < 0) return sys_error("pivot_root", plan.rootfs);
  // "." is still the new root's mount (covered by the old root): mount(2) on it would make the
  // container's own mounts rslave (an "rshared" mount would end up private). Step onto the old
  // root itself, as runc does.
  if (k.fchdir(oldroot.get()) < 0) return sys_error("fchdir", "old root");
  // Keep the unmount of the old root from propagating to the host.
  if (k.mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) < 0)
    return mount_error("propagation", "", "old root", MS_SLAVE | MS_REC);
  if (k.umount2(".", MNT_DETACH) < 0) return sys_error("umount2", "old root");
  if (k.chdir("/") < 0) return sys_error("chdir", "/");
  return ok();
}

Status finish_rootfs(Kernel& k, const RootfsPlan& plan) {
  // A given rootfsPropagation applies to the container's "/", which exists only now (before
  // pivot_root it reached the old root); private needs no second step. As runc does.
  if (plan.root_propagation_given && !(plan.root_propagation & MS_PRIVATE) &&
      k.mount(nullptr, "/", nullptr, plan.root_propagation, nullptr) < 0)
    return mount_error("propagation", "", "/", plan.root_propagation);
  UniqueFd root(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return sys_error("open", "/");
  for (const auto& p : plan.readonly_paths) {
    auto fd = open_in_root(root.get(), p, O_PATH);
    if (!fd) {
      if (fd.error().err == ENOENT) continue;
      return std::move(fd).error().add_context("readonlyPaths");
    }
    std::string t = fd_path(fd->get());
    if (k.mount(t.c_str(), t.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
      return mount_error("bind", p, p, MS_BIND | MS_REC);
    UniqueFd mounted = FORKER_TRY(open_in_root(root.get(), p, O_PATH));
    FORKER_TRY(remount_bind(k, fd_path(mounted.get()), p, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC));
  }
  for (const auto& p : plan.masked_paths) {
    auto fd = open_in_root(root.get(), p, O_PATH);
    if (!fd) {
      if (fd.error().err == ENOENT) continue;
      return std::move(fd).error().add_context("maskedPaths");
    }
    struct stat st {};
    if (fstat(fd->get(), &st) < 0) return sys_error("stat", p);
    std::string t = fd_path(fd->get());
    if (S_ISDIR(st.st_mode)) {
      if (k.mount("tmpfs", t.c_str(), "tmpfs", MS_RDONLY, "size=0k") < 0)
        return mount_error("tmpfs", "", p, MS_RDONLY);
    } else if (k.mount("/dev/null", t.c_str(), nullptr, MS_BIND, nullptr) < 0) {
      return mount_error("bind", "/dev/null", p, MS_BIND);
    }
  }
  if (plan.readonly) {
    unsigned long f = MS_BIND | MS_REMOUNT | MS_RDONLY;
    if (k.mount(nullptr, "/", nullptr, f, nullptr) < 0) {
      unsigned long keep = locked_flags_of("/");
      if (k.mount(nullptr, "/", nullptr, f | keep, nullptr) < 0)
        return mount_error("remount", "", "/", f | keep);
    }
  }
  return ok();
}

}  // namespace forker::linux
