#include "linux/overlay.hpp"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <sstream>

#include "core/file.hpp"
#include "core/unique_fd.hpp"

namespace forker::linux {
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

// Attaches the detached mount FD (fsmount, open_tree) on TARGET; WHAT names it in the error.
Status attach(int fd, const std::string& what, const std::string& target) {
  if (::syscall(SYS_move_mount, fd, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return sys_error("move_mount " + what + " on", target);
  return ok();
}

// fsconfig copies at most 256 bytes of a string value, its NUL included (fs/fsopen.c): the
// reason lowerdir+ exists.
constexpr size_t kFsconfigValueMax = 255;

std::string joined_lowers(const std::vector<std::string>& lowers) {
  std::string out;
  for (size_t i = 0; i < lowers.size(); ++i) {
    if (i > 0) out += ':';
    out += escape(lowers[i]);
  }
  return out;
}

// The one "lowerdir" value for kernels without lowerdir+. Paths that do not fit in a value, or
// hold a ',' (the pre-6.5 shim refuses one even escaped), are named by /proc/self/fd links to
// fds left in HELD: overlayfs resolves them in our process when it parses or creates.
Result<std::string> joined_lowerdir_value(const std::vector<std::string>& lowers,
                                          std::vector<UniqueFd>& held) {
  std::string value = joined_lowers(lowers);
  bool comma = std::any_of(lowers.begin(), lowers.end(),
                           [](const std::string& l) { return l.find(',') != std::string::npos; });
  if (value.size() <= kFsconfigValueMax && !comma) return value;
  value.clear();
  for (const std::string& lower : lowers) {
    UniqueFd fd(::open(lower.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return sys_error("open layer", lower);
    value += (value.empty() ? "/proc/self/fd/" : ":/proc/self/fd/") + std::to_string(fd.get());
    held.push_back(std::move(fd));
  }
  if (value.size() > kFsconfigValueMax)
    return make_error("overlay mount options:",
                      std::to_string(lowers.size()) + " layers do not fit in one " +
                          std::to_string(kFsconfigValueMax + 1) +
                          "-byte fsconfig lowerdir value, and this kernel has no fsconfig "
                          "lowerdir+ (Linux 6.8)");
  return value;
}

enum class Lowers { kPerLayer, kJoined };

// fsopen("overlay"), one fsconfig per option, create, fsmount: the overlay, attached nowhere.
// SHOWN says what it is for in errors ("for /target", "(detached)").
Result<UniqueFd> overlay_fsmount(const OverlaySpec& spec, Lowers lowers, const std::string& shown) {
  long fs = ::syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (fs < 0) return sys_error("fsopen", "overlay");
  UniqueFd fs_fd(static_cast<int>(fs));
  std::vector<UniqueFd> held;  // layers named by fd in a joined value, until the mount exists
  if (lowers == Lowers::kPerLayer) {
    for (const std::string& lower : spec.lowers)
      FORKER_TRY(set_string(fs_fd.get(), "lowerdir+", lower));
  } else {
    std::string value = FORKER_TRY(joined_lowerdir_value(spec.lowers, held));
    FORKER_TRY(set_string(fs_fd.get(), "lowerdir", value));
  }
  if (!spec.upper.empty()) {
    // Unlike lowerdir+, overlayfs unescapes these two (a '\' quotes the next character).
    FORKER_TRY(set_string(fs_fd.get(), "upperdir", escape(spec.upper)));
    FORKER_TRY(set_string(fs_fd.get(), "workdir", escape(spec.work)));
  }
  if (spec.userxattr &&
      ::syscall(SYS_fsconfig, fs_fd.get(), FSCONFIG_SET_FLAG, "userxattr", nullptr, 0) < 0) {
    int err = errno;
    return fs_error(err, fs_fd.get(), "fsconfig userxattr", "overlay " + shown);
  }
  if (::syscall(SYS_fsconfig, fs_fd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) {
    int err = errno;
    return fs_error(err, fs_fd.get(), "fsconfig create",
                    "overlay of " + std::to_string(spec.lowers.size()) + " layers " + shown);
  }
  long mnt = ::syscall(SYS_fsmount, fs_fd.get(), FSMOUNT_CLOEXEC, 0);
  if (mnt < 0) return sys_error("fsmount", "overlay " + shown);
  return UniqueFd(static_cast<int>(mnt));
}

// A detached clone of DIR and the mounts below it, private, and with READ_ONLY every one of
// them read-only, before anyone can reach it. open_tree's clone of a shared mount joins its
// peer group (as mount --bind does): whatever a container then mounts on it (/proc, /dev, ...)
// would propagate back to DIR's mount on the host, and stay there after the container.
Result<UniqueFd> clone_tree(const std::string& dir, bool read_only) {
  long tree = ::syscall(SYS_open_tree, AT_FDCWD, dir.c_str(),
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (tree < 0) return sys_error("open_tree", dir);
  UniqueFd tree_fd(static_cast<int>(tree));
  struct mount_attr attr = {};
  attr.attr_set = read_only ? MOUNT_ATTR_RDONLY : 0;
  attr.propagation = MS_PRIVATE;
  if (::syscall(SYS_mount_setattr, tree_fd.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                sizeof attr) < 0)
    return sys_error(read_only ? "mount_setattr private read-only" : "mount_setattr private", dir);
  return tree_fd;
}

// Overlay refuses one lower without an upper ("at least 2 lowerdir are needed while upperdir
// nonexistent", still so on 6.18): one layer read-only is a read-only bind of that layer, made
// whole before it is attached so it is never visible writable.
Status bind_read_only(const std::string& source, const std::string& target) {
  UniqueFd tree = FORKER_TRY(clone_tree(source, true));
  return attach(tree.get(), "(read-only bind of " + source + ")", target);
}

// The option rules both mount_overlay and overlay_mount_fd check before any syscall.
Status check_layers(const std::vector<std::string>& lowers, const std::string& upper,
                    const std::string& work, const std::string& where) {
  if (lowers.empty()) return make_error("mount overlay " + where + ":", "no lower layers");
  if (upper.empty() != work.empty())
    return make_error("mount overlay " + where + ":", "upperdir and workdir go together");
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
  std::string data = "lowerdir=" + joined_lowers(spec.lowers);
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
  UniqueFd mnt = FORKER_TRY(overlay_fsmount(spec, Lowers::kPerLayer, "for " + target));
  return attach(mnt.get(), "overlay", target);
}

Result<UniqueFd> overlay_fsmount_per_layer(const OverlaySpec& spec) {
  return overlay_fsmount(spec, Lowers::kPerLayer, "(detached)");
}

Result<UniqueFd> overlay_fsmount_joined(const OverlaySpec& spec) {
  return overlay_fsmount(spec, Lowers::kJoined, "(detached)");
}

namespace {
// ENOENT from mount(2) or a joined lowerdir string does not say which directory is missing:
// the first one that is, or nullopt.
std::optional<std::string> first_missing_dir(const OverlaySpec& spec) {
  std::vector<std::string> dirs = spec.lowers;
  if (!spec.upper.empty()) dirs.insert(dirs.end(), {spec.upper, spec.work});
  for (const auto& dir : dirs)
    if (::access(dir.c_str(), F_OK) < 0) return dir;
  return std::nullopt;
}
}  // namespace

Status mount_overlay_legacy(const OverlaySpec& spec, const std::string& target) {
  long page = ::sysconf(_SC_PAGESIZE);
  std::string data =
      FORKER_TRY(overlay_mount_data(spec, page > 0 ? static_cast<size_t>(page) : 4096));
  if (::mount("overlay", target.c_str(), "overlay", 0, data.c_str()) < 0) {
    int err = errno;
    if (err == ENOENT)
      if (auto dir = first_missing_dir(spec))
        return sys_error_errno(ENOENT, "mount overlay on " + target + ": layer", *dir);
    return sys_error_errno(err, "mount overlay (" + std::to_string(spec.lowers.size()) +
                                    " layers) on", target);
  }
  return ok();
}

namespace {

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

// Whether E, from the per-layer new API, says this kernel has no lowerdir+ (so one lowerdir
// string it is): before 6.8 the first lowerdir+ is an unknown key (EINVAL), and before 6.5 the
// legacy shim takes it and fails only at create.
bool lowerdir_plus_missing(const Error& e, const std::string& first_lower) {
  bool unknown_key = e.err == EINVAL && e.op == "fsconfig lowerdir+" &&
                     (e.object == first_lower || e.object.starts_with(first_lower + " (kernel: "));
  return unknown_key ||
         (e.err == EINVAL && e.op == "fsconfig create" && !overlay_parses_fsconfig());
}

}  // namespace

Status mount_overlay(const std::vector<std::string>& lowers, const std::string& upper,
                     const std::string& work, const std::string& target) {
  FORKER_TRY(check_layers(lowers, upper, work, "on " + target));
  if (upper.empty() && lowers.size() == 1) return bind_read_only(lowers.front(), target);
  OverlaySpec spec{lowers, upper, work, !in_initial_user_namespace()};
  auto done = mount_overlay_new_api(spec, target);
  if (done) return done;
  // mount(2) takes a page of options, more than one fsconfig value; before 5.2 there is no fsopen.
  if (lowerdir_plus_missing(done.error(), lowers.front()) || done.error().err == ENOSYS)
    return mount_overlay_legacy(spec, target);
  return done;
}

Result<UniqueFd> overlay_mount_fd(const OverlaySpec& spec) {
  FORKER_TRY(check_layers(spec.lowers, spec.upper, spec.work, "(detached)"));
  if (spec.upper.empty() && spec.lowers.size() == 1) return clone_tree(spec.lowers.front(), true);
  OverlaySpec s = spec;
  s.userxattr = spec.userxattr || !in_initial_user_namespace();
  auto mnt = overlay_fsmount_per_layer(s);
  if (mnt || !lowerdir_plus_missing(mnt.error(), s.lowers.front())) return mnt;
  // No mount(2) fallback here: what it mounts is attached. fsopen itself is Linux 5.2.
  auto joined = overlay_fsmount_joined(s);
  if (!joined && joined.error().err == ENOENT)
    if (auto dir = first_missing_dir(s))
      return sys_error_errno(ENOENT, "mount overlay (detached): layer", *dir);
  return joined;
}

Result<UniqueFd> bind_mount_fd(const std::string& dir, bool read_only) {
  return clone_tree(dir, read_only);
}

}  // namespace forker::linux
