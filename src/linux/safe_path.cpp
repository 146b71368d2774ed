#include "linux/safe_path.hpp"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/strings.hpp"

namespace forker::linux {

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

std::string host_path(const std::string& rootfs, const std::string& path) {
  if (path.empty() || path[0] != '/') return rootfs + "/" + path;
  return rootfs + path;
}

Result<UniqueFd> open_in_root(int root_fd, const std::string& path, int flags,
                              unsigned long long resolve) {
  open_how how{};
  how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve;
  std::string rel = path;
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  if (rel.empty()) rel = ".";
  long fd = syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
  if (fd < 0) return sys_error("openat2", path);
  return UniqueFd(static_cast<int>(fd));
}

namespace {

Result<UniqueFd> mkdir_all_impl(int root_fd, const std::string& path, bool last_is_file,
                                mode_t mode, int depth) {
  if (depth > 40) return sys_error_errno(ELOOP, "mkdir", path);
  auto existing = open_in_root(root_fd, path, O_PATH);
  if (existing) return existing;
  if (existing.error().err != ENOENT) return existing;

  auto parts = split(path, '/');
  std::string prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty() || parts[i] == ".") continue;
    bool last = i + 1 == parts.size();
    std::string parent = prefix.empty() ? "/" : prefix;
    prefix += "/" + parts[i];
    auto cur = open_in_root(root_fd, prefix, O_PATH);
    if (cur) continue;
    if (cur.error().err != ENOENT) return cur;
    UniqueFd dir = FORKER_TRY(open_in_root(root_fd, parent, O_DIRECTORY | O_RDONLY));
    // A dangling symlink: create what it points to, resolved inside the root (as runc does),
    // rather than failing with "no such file".
    char link[PATH_MAX];
    ssize_t n = readlinkat(dir.get(), parts[i].c_str(), link, sizeof link - 1);
    if (n > 0) {
      link[n] = 0;
      std::string target = link[0] == '/' ? std::string(link) : parent + "/" + link;
      for (size_t j = i + 1; j < parts.size(); ++j) target += "/" + parts[j];
      return mkdir_all_impl(root_fd, target, last_is_file, mode, depth + 1);
    }
    if (last && last_is_file) {
      int fd = openat(dir.get(), parts[i].c_str(),
                      O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0 && errno != EEXIST) return sys_error("create", prefix);
      if (fd >= 0) close(fd);
    } else if (mkdirat(dir.get(), parts[i].c_str(), mode) < 0 && errno != EEXIST) {
      return sys_error("mkdir", prefix);
    }
  }
  return open_in_root(root_fd, path, O_PATH);
}

}  // namespace

Result<UniqueFd> mkdir_all_in_root(int root_fd, const std::string& path, bool last_is_file,
                                   mode_t mode) {
  return mkdir_all_impl(root_fd, path, last_is_file, mode, 0);
}

}  // namespace forker::linux
