#include "image/store_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>
#include <utility>

#include "core/file.hpp"
#include "core/unique_fd.hpp"

namespace forker::image::detail {

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status fsync_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return sys_error("open", dir);
  if (::fsync(fd.get()) < 0) return sys_error("fsync", dir);
  return ok();
}

Status write_durable(const std::string& temp_path, const std::string& final_path,
                     std::string_view data, mode_t mode) {
  UniqueFd fd(::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) return sys_error("create", temp_path);
  auto fail = [&](Error e) {
    ::unlink(temp_path.c_str());
    return e;
  };
  while (!data.empty()) {
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(sys_error("write", temp_path));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  if (::fsync(fd.get()) < 0) return fail(sys_error("fsync", temp_path));
  fd.reset();
  if (::rename(temp_path.c_str(), final_path.c_str()) < 0)
    return fail(sys_error("rename " + temp_path + " to", final_path));
  return fsync_dir(parent_dir(final_path));
}

namespace {

// The open fd still names PATH (nobody unlinked or replaced it since we opened it).
bool still_linked(int fd, const std::string& path) {
  struct stat by_fd, by_path;
  if (::fstat(fd, &by_fd) < 0 || ::stat(path.c_str(), &by_path) < 0) return false;
  return by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino;
}

}  // namespace

Result<FileLock> acquire_lock(const std::string& path, bool exclusive) {
  for (;;) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return sys_error("open lock", path);
    while (::flock(fd.get(), exclusive ? LOCK_EX : LOCK_SH) < 0) {
      if (errno != EINTR) return sys_error("flock", path);
    }
    if (still_linked(fd.get(), path)) return FileLock(std::move(fd));
  }
}

Result<std::optional<FileLock>> try_lock(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::optional<FileLock>(FileLock());
    return sys_error("open lock", path);
  }
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK) return std::optional<FileLock>();
    if (errno != EINTR) return sys_error("flock", path);
  }
  return std::optional<FileLock>(FileLock(std::move(fd)));
}

namespace {

struct UsageWalk {
  dev_t dev = 0;
  std::set<std::pair<dev_t, ino_t>> seen;  // hard-linked inodes counted once
  int64_t bytes = 0;

  void count(const struct stat& st) {
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !seen.emplace(st.st_dev, st.st_ino).second)
      return;
    bytes += static_cast<int64_t>(st.st_blocks) * 512;
  }

  Status walk_dir(int dir_fd, const std::string& shown) {
    DIR* dir = ::fdopendir(dir_fd);
    if (dir == nullptr) {
      Error e = sys_error("opendir", shown);
      ::close(dir_fd);
      return e;
    }
    std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
    errno = 0;
    while (struct dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      struct stat st;
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) continue;  // removed while we walk
        return sys_error("stat", shown + "/" + name);
      }
      if (st.st_dev != dev) continue;  // a mount point: someone else's bytes
      count(st);
      if (S_ISDIR(st.st_mode)) {
        int child = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (child < 0) {
          if (errno == ENOENT) continue;
          return sys_error("open", shown + "/" + name);
        }
        FORKER_TRY(walk_dir(child, shown + "/" + name));
      }
      errno = 0;
    }
    if (errno != 0) return sys_error("readdir", shown);
    return ok();
  }
};

}  // namespace

Result<int64_t> tree_bytes(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) < 0) {
    if (errno == ENOENT) return int64_t{0};
    return sys_error("stat", path);
  }
  UsageWalk walk;
  walk.dev = st.st_dev;
  walk.count(st);
  if (!S_ISDIR(st.st_mode)) return walk.bytes;
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return int64_t{0};
    return sys_error("open", path);
  }
  FORKER_TRY(walk.walk_dir(fd, path));
  return walk.bytes;
}

Result<std::vector<std::string>> list_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return sys_error("opendir", dir);
  std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = ::readdir(d)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
    errno = 0;
  }
  if (errno != 0) return sys_error("readdir", dir);
  std::sort(names.begin(), names.end());
  return names;
}

Result<nlohmann::json> read_index(const std::string& root) {
  std::string path = root + "/index.json";
  std::string text = FORKER_TRY(read_file(path));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error("parse " + path + ":", "not a JSON object");
  if (!j.contains("manifests")) j["manifests"] = nlohmann::json::array();
  if (!j["manifests"].is_array())
    return make_error("parse " + path + ":", "\"manifests\" is not an array");
  return j;
}

}  // namespace forker::image::detail
