// rm -rf for layer directories and unpack debris. Layers come from untrusted archives, so the
// walk never follows a symlink (every open is O_NOFOLLOW relative to the parent's fd), never
// descends into another mount, and copes with the modes an image may carry (0500 directories).
#include "image/remove_tree.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "core/unique_fd.hpp"
#include "image/layer_unpack.hpp"
#include "linux/safe_path.hpp"

#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif

namespace forker::image {
namespace {

// Deeper directories are moved up to the top of the tree instead of being entered, so the walk
// holds at most this many fds however deep a hostile layer nests (PATH_MAX allows ~2000 levels).
constexpr int kMaxDepth = 64;

struct Child {
  std::string name;
  unsigned char type;
};

Result<std::vector<Child>> list_dir(int dirfd, const std::string& shown) {
  int dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return sys_error("dup", shown);
  DIR* dir = fdopendir(dup_fd);
  if (dir == nullptr) {
    Error e = sys_error("opendir", shown);
    close(dup_fd);
    return e;
  }
  rewinddir(dir);  // the fd may have been read before; the dup shares its offset
  std::vector<Child> out;
  errno = 0;
  while (dirent* d = readdir(dir)) {
    std::string_view n = d->d_name;
    if (n != "." && n != "..") out.push_back({std::string(n), d->d_type});
    errno = 0;
  }
  int err = errno;
  closedir(dir);
  if (err != 0) return sys_error_errno(err, "readdir", shown);
  return out;
}

// True when FD is the root of a mount (bind mounts included) or on another device than DEV.
Result<bool> crosses_mount(int fd, dev_t dev, const std::string& shown) {
  struct statx stx {};
  if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_TYPE, &stx) < 0)
    return sys_error("statx", shown);
  if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
      (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
    return true;
  return makedev(stx.stx_dev_major, stx.stx_dev_minor) != dev;
}

// Opens NAME under DIRFD as a directory (never through a symlink) and gives its owner rwx, which
// listing it and unlinking inside it need when we are not root.
Result<UniqueFd> open_dir_for_removal(int dirfd, const std::string& name, const std::string& shown) {
  UniqueFd fd(openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd && errno == EACCES) {
    // Not readable: chmod through an O_PATH fd (which needs no permission) and reopen that inode.
    UniqueFd path_fd(openat(dirfd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!path_fd) return sys_error("open", shown);
    std::string proc = linux::fd_path(path_fd.get());
    if (chmod(proc.c_str(), 0700) < 0) return sys_error("chmod", shown);
    fd.reset(open(proc.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  if (!fd) return sys_error("open", shown);
  struct stat st {};
  if (fstat(fd.get(), &st) < 0) return sys_error("stat", shown);
  if ((st.st_mode & 0700) != 0700 && fchmod(fd.get(), (st.st_mode & 07777) | 0700) < 0)
    return sys_error("chmod", shown);
  return fd;
}

class TreeRemover {
 public:
  TreeRemover(int top_fd, dev_t dev, std::string top_shown)
      : top_fd_(top_fd), dev_(dev), top_shown_(std::move(top_shown)) {}

  // Empties the top directory; the caller removes it.
  Status run() {
    remove_contents(top_fd_, top_shown_, 1);
    while (!hoisted_.empty()) {
      std::string name = std::move(hoisted_.back());
      hoisted_.pop_back();
      remove_dir(top_fd_, name, top_shown_ + "/" + name, 1);
    }
    if (failed_) return std::move(first_error_);
    return ok();
  }

 private:
  void note(Error e) {
    if (!failed_) first_error_ = std::move(e);
    failed_ = true;
  }

  // Removes what it can and remembers the first failure, so one stuck file does not leave the
  // rest of the tree behind.
  void remove_contents(int dirfd, const std::string& shown, int depth) {
    auto children = list_dir(dirfd, shown);
    if (!children) return note(std::move(children).error());
    for (const Child& c : *children) {
      std::string child_shown = shown + "/" + c.name;
      if (c.type != DT_DIR) {
        if (unlinkat(dirfd, c.name.c_str(), 0) == 0) continue;
        if (errno != EISDIR) {  // DT_UNKNOWN on some filesystems: only EISDIR means "a directory"
          if (errno != ENOENT) note(sys_error("unlink", child_shown));
          continue;
        }
      }
      if (depth >= kMaxDepth) {
        std::string hoisted = ".forker-remove-" + std::to_string(hoist_count_++);
        if (renameat(dirfd, c.name.c_str(), top_fd_, hoisted.c_str()) < 0) {
          note(sys_error("rename", child_shown));
          continue;
        }
        hoisted_.push_back(std::move(hoisted));
        continue;
      }
      remove_dir(dirfd, c.name, child_shown, depth + 1);
    }
  }

  void remove_dir(int dirfd, const std::string& name, const std::string& shown, int depth) {
    auto child = open_dir_for_removal(dirfd, name, shown);
    if (!child) {
      if (child.error().err != ENOENT) note(std::move(child).error());
      return;
    }
    auto mounted = crosses_mount(child->get(), dev_, shown);
    if (!mounted) return note(std::move(mounted).error());
    if (*mounted) return note(sys_error_errno(EBUSY, "remove tree: not entering mount point", shown));
    remove_contents(child->get(), shown, depth);
    child->reset();
    if (unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT)
      note(sys_error("rmdir", shown));
  }

  int top_fd_;
  dev_t dev_;
  std::string top_shown_;
  std::vector<std::string> hoisted_;
  unsigned hoist_count_ = 0;
  Error first_error_;
  bool failed_ = false;
};

}  // namespace

Status remove_tree_at(int parent_fd, const std::string& name, const std::string& shown_path) {
  struct stat st {};
  if (fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return ok();
    return sys_error("stat", shown_path);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(parent_fd, name.c_str(), 0) < 0 && errno != ENOENT)
      return sys_error("unlink", shown_path);
    return ok();
  }
  UniqueFd top = FORKER_TRY(open_dir_for_removal(parent_fd, name, shown_path));
  struct statx stx {};
  if (statx(top.get(), "", AT_EMPTY_PATH, STATX_TYPE, &stx) < 0)
    return sys_error("statx", shown_path);
  if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
      (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
    return sys_error_errno(EBUSY, "remove tree: refusing a mount point", shown_path);
  FORKER_TRY(TreeRemover(top.get(), st.st_dev, shown_path).run());
  top.reset();
  if (unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT)
    return sys_error("rmdir", shown_path);
  return ok();
}

Status remove_tree(const std::string& path) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  size_t slash = trimmed.rfind('/');
  std::string parent = slash == std::string::npos ? "." : trimmed.substr(0, slash);
  std::string name = slash == std::string::npos ? trimmed : trimmed.substr(slash + 1);
  if (parent.empty()) parent = "/";
  if (name.empty() || name == "." || name == "..")
    return make_error("remove tree: refusing path", path);
  // The caller's own path up to the last component is trusted; below it nothing is followed.
  UniqueFd parent_fd(open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!parent_fd) {
    if (errno == ENOENT) return ok();
    return sys_error("open", parent);
  }
  return remove_tree_at(parent_fd.get(), name, path);
}

}  // namespace forker::image
