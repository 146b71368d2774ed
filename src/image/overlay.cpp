#include "image/overlay.hpp"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sstream>

#include "core/file.hpp"
#include "core/unique_fd.hpp"
#include "image/store.hpp"

namespace forker::image {
namespace {

// What the kernel logged into the fs context (fsopen's fd reads as "e overlayfs: ..." lines):
// overlayfs explains most EINVALs only there.
std::string fs_context_log(int fs_fd) {
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(fs_fd, buf, sizeof buf - 1);
    if (n <= 0) break;
    std::string line(buf, static_cast<size_t>(n));
    if (line.size() > 2 && line[1] == ' ') line = line.substr(2);  // "e ", "w ", "i " prefixes
    out += out.empty() ? "" : "; ";
    out += line;
  }
  return out;
}

Error fs_error(int err, int fs_fd, std::string op, std::string object) {
  std::string log = fs_context_log(fs_fd);
  if (!log.empty()) object += " (kernel: " + log + ")";
  return sys_error_errno(err, op, object);
}

Status set_string(int fs_fd, const char* key, const std::string& value) {
  if (::syscall(SYS_fsconfig, fs_fd, FSCONFIG_SET_STRING, key, value.c_str(), 0) < 0) {
    int err = errno;
    return fs_error(err, fs_fd, std::string("fsconfig ") + key, value);
  }
  return ok();
}

std::string escape(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '\\' || c == ':' || c == ',') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// Overlay refuses one lower without an upper ("at least 2 lowerdir are needed while upperdir
// nonexistent", still so on 6.18): one layer read-only is a read-only bind of that layer, made
// whole before it is attached so it is never visible writable.
Status bind_read_only(const std::string& source, const std::string& target) {
  long tree =
      ::syscall(SYS_open_tree, AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) return sys_error("open_tree", source);
  UniqueFd tree_fd(static_cast<int>(tree));
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (::syscall(SYS_mount_setattr, tree_fd.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
    return sys_error("mount_setattr read-only", source);
  if (::syscall(SYS_move_mount, tree_fd.get(), "", AT_FDCWD, target.c_str(),
                MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return sys_error("move_mount (read-only bind of " + source + ") on", target);
  return ok();
}

// The initial user namespace maps every id to itself ("0 0 4294967295"). Anywhere else, even as
// its root (a rootless runtime inside its namespace), trusted.* xattrs are out of reach and
// overlay must keep its whiteouts and opaque marks in user.* (userxattr, Linux 5.11).
bool in_initial_user_namespace() {
  auto map = read_file("/proc/self/uid_map");
  if (!map) return ::geteuid() == 0;
  std::istringstream in(*map);
  std::string inside, outside, count, extra;
  in >> inside >> outside >> count >> extra;
  return inside == "0" && outside == "0" && count == "4294967295" && extra.empty();
}

}  // namespace

Result<std::string> overlay_mount_data(const OverlaySpec& spec, size_t page_size) {
  std::string data = "lowerdir=";
  for (size_t i = 0; i < spec.lowers.size(); ++i) {
    if (i > 0) data += ':';
    data += escape(spec.lowers[i]);
  }
  if (!spec.upper.empty())
    data += ",upperdir=" + escape(spec.upper) + ",workdir=" + escape(spec.work);
  if (spec.userxattr) data += ",userxattr";
  // mount(2) copies at most one page of data, terminating NUL included.
  if (data.size() + 1 > page_size)
    return make_error("overlay mount options:",
                      std::to_string(spec.lowers.size()) + " layers need " +
                          std::to_string(data.size() + 1) + " bytes, more than the " +
                          std::to_string(page_size) +
                          "-byte page mount(2) takes, and this kernel has no fsconfig lowerdir+ "
                          "(Linux 6.8)");
  return data;
}

Status mount_overlay_new_api(const OverlaySpec& spec, const std::string& target) {
  long fs = ::syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (fs < 0) return sys_error("fsopen", "overlay");
  UniqueFd fs_fd(static_cast<int>(fs));
  for (const std::string& lower : spec.lowers)
    FORKER_TRY(set_string(fs_fd.get(), "lowerdir+", lower));
  if (!spec.upper.empty()) {
    FORKER_TRY(set_string(fs_fd.get(), "upperdir", spec.upper));
    FORKER_TRY(set_string(fs_fd.get(), "workdir", spec.work));
  }
  if (spec.userxattr &&
      ::syscall(SYS_fsconfig, fs_fd.get(), FSCONFIG_SET_FLAG, "userxattr", nullptr, 0) < 0) {
    int err = errno;
    return fs_error(err, fs_fd.get(), "fsconfig userxattr", "overlay on " + target);
  }
  if (::syscall(SYS_fsconfig, fs_fd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) {
    int err = errno;
    return fs_error(err, fs_fd.get(), "fsconfig create",
                    "overlay of " + std::to_string(spec.lowers.size()) + " layers for " + target);
  }
  long mnt = ::syscall(SYS_fsmount, fs_fd.get(), FSMOUNT_CLOEXEC, 0);
  if (mnt < 0) return sys_error("fsmount", "overlay for " + target);
  UniqueFd mnt_fd(static_cast<int>(mnt));
  if (::syscall(SYS_move_mount, mnt_fd.get(), "", AT_FDCWD, target.c_str(),
                MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return sys_error("move_mount overlay on", target);
  return ok();
}

Status mount_overlay_legacy(const OverlaySpec& spec, const std::string& target) {
  long page = ::sysconf(_SC_PAGESIZE);
  std::string data =
      FORKER_TRY(overlay_mount_data(spec, page > 0 ? static_cast<size_t>(page) : 4096));
  if (::mount("overlay", target.c_str(), "overlay", 0, data.c_str()) < 0) {
    int err = errno;
    // mount(2) does not say which directory is missing: name the first one that is.
    if (err == ENOENT) {
      std::vector<std::string> dirs = spec.lowers;
      if (!spec.upper.empty()) dirs.insert(dirs.end(), {spec.upper, spec.work});
      for (const auto& dir : dirs)
        if (::access(dir.c_str(), F_OK) < 0)
          return sys_error_errno(ENOENT, "mount overlay on " + target + ": layer", dir);
    }
    return sys_error_errno(err, "mount overlay (" + std::to_string(spec.lowers.size()) +
                                    " layers) on", target);
  }
  return ok();
}

// Before Linux 6.5 overlayfs took the new mount API through the legacy shim, which accepts any
// key and joins them into one option string: lowerdir+ then fails only at FSCONFIG_CMD_CREATE,
// with EINVAL. The shim is told apart by a key no parser knows, which it also accepts.
bool overlay_parses_fsconfig() {
  long fs = ::syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (fs < 0) return false;
  UniqueFd fs_fd(static_cast<int>(fs));
  return ::syscall(SYS_fsconfig, fs_fd.get(), FSCONFIG_SET_FLAG, "forker-no-such-option", nullptr,
                   0) < 0;
}

Status mount_overlay(const std::vector<std::string>& lowers, const std::string& upper,
                     const std::string& work, const std::string& target) {
  if (lowers.empty()) return make_error("mount overlay on " + target + ":", "no lower layers");
  if (upper.empty() != work.empty())
    return make_error("mount overlay on " + target + ":", "upperdir and workdir go together");
  if (upper.empty() && lowers.size() == 1) return bind_read_only(lowers.front(), target);
  OverlaySpec spec{lowers, upper, work, !in_initial_user_namespace()};
  auto done = mount_overlay_new_api(spec, target);
  if (done) return done;
  // Before 6.8 the first lowerdir+ is an unknown key (EINVAL); before 5.2 there is no fsopen.
  const Error& e = done.error();
  bool no_lowerdir_plus =
      e.err == EINVAL && e.op == "fsconfig lowerdir+" &&
      (e.object == lowers.front() || e.object.starts_with(lowers.front() + " (kernel: "));
  bool legacy_shim = e.err == EINVAL && e.op == "fsconfig create" && !overlay_parses_fsconfig();
  if (no_lowerdir_plus || legacy_shim || e.err == ENOSYS) return mount_overlay_legacy(spec, target);
  return done;
}

}  // namespace forker::image
