#include "core/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/unique_fd.hpp"

namespace forker {
namespace {

Result<std::string> read_all(int fd, const std::string& path) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok();
}

}  // namespace

Result<std::string> read_file(const std::string& path) { return read_file_at(AT_FDCWD, path); }

Result<std::string> read_file_at(int dirfd, const std::string& path) {
  UniqueFd fd(::openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return sys_error("open", path);
  return read_all(fd.get(), path);
}

Status write_file(const std::string& path, std::string_view data) {
  return write_file_at(AT_FDCWD, path, data);
}

Status write_file_at(int dirfd, const std::string& path, std::string_view data) {
  UniqueFd fd(::openat(dirfd, path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return sys_error("open", path);
  // Kernel knobs take one write; a short write is an error reported by the kernel.
  ssize_t n = ::write(fd.get(), data.data(), data.size());
  if (n < 0) return sys_error("write " + std::string(data) + " to", path);
  return ok();
}

Status write_file_atomic(const std::string& path, std::string_view data, int mode) {
  return write_file_replace(path, data, mode, true);
}

Status write_file_replace(const std::string& path, std::string_view data, int mode, bool sync) {
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return sys_error("open", tmp);
  if (auto st = write_all(fd.get(), data, tmp); !st) {
    ::unlink(tmp.c_str());
    return st;
  }
  if (sync && ::fsync(fd.get()) < 0) {
    Error e = sys_error("fsync", tmp);
    ::unlink(tmp.c_str());
    return e;
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) < 0) {
    Error e = sys_error("rename", tmp);
    ::unlink(tmp.c_str());
    return e;
  }
  return ok();
}

Status mkdir_all(const std::string& path, int mode) {
  if (path.empty()) return ok();
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    std::string part = path.substr(0, pos);
    if (part.empty()) continue;
    if (::mkdir(part.c_str(), mode) < 0 && errno != EEXIST) return sys_error("mkdir", part);
  }
  return ok();
}

bool path_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace forker
