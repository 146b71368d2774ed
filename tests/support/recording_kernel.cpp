#include "support/recording_kernel.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <utility>

#include "linux/mount_options.hpp"

namespace forker::linux {
namespace {

std::string str(const char* s) { return s ? std::string(s) : std::string(); }

constexpr std::string_view kFdPrefix = "/proc/self/fd/";

// "/proc/self/fd/N" (as mount targets are passed) -> the path that fd names.
std::string resolve(const char* path) {
  std::string p = str(path);
  if (!p.starts_with(kFdPrefix)) return p;
  char buf[PATH_MAX];
  ssize_t n = readlink(p.c_str(), buf, sizeof buf - 1);
  if (n < 0) return p;
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

std::string describe_fd(int fd) {
  if (fd == AT_FDCWD) return "AT_FDCWD";
  std::string link = std::string(kFdPrefix) + std::to_string(fd);
  char buf[PATH_MAX];
  ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
  if (n < 0) return "fd:" + std::to_string(fd);
  return std::string(buf, static_cast<size_t>(n));
}

KernelCall KernelCall::mount(std::string source, std::string target, std::string fstype,
                             unsigned long flags, std::string data) {
  return {"mount",
          {std::move(source), std::move(target), std::move(fstype), std::move(data)},
          flags,
          {}};
}
KernelCall KernelCall::umount2(std::string target, int flags) {
  return {"umount2", {std::move(target)}, static_cast<unsigned long long>(flags), {}};
}
KernelCall KernelCall::mount_setattr(std::string dir, std::string path, unsigned int flags,
                                     unsigned long long set, unsigned long long clear) {
  return {"mount_setattr", {std::move(dir), std::move(path)}, flags, {set, clear}};
}
KernelCall KernelCall::move_mount(std::string from_dir, std::string from_path, std::string to_dir,
                                  std::string to_path, unsigned flags) {
  return {"move_mount",
          {std::move(from_dir), std::move(from_path), std::move(to_dir), std::move(to_path)},
          flags,
          {}};
}
KernelCall KernelCall::pivot_root(std::string new_root, std::string put_old) {
  return {"pivot_root", {std::move(new_root), std::move(put_old)}, 0, {}};
}
KernelCall KernelCall::chroot(std::string path) { return {"chroot", {std::move(path)}, 0, {}}; }
KernelCall KernelCall::chdir(std::string path) { return {"chdir", {std::move(path)}, 0, {}}; }
KernelCall KernelCall::fchdir(std::string dir) { return {"fchdir", {std::move(dir)}, 0, {}}; }
KernelCall KernelCall::mknodat(std::string dir, std::string path, unsigned int mode,
                               unsigned long long dev) {
  return {"mknodat", {std::move(dir), std::move(path)}, mode, {dev}};
}
KernelCall KernelCall::symlinkat(std::string target, std::string dir, std::string path) {
  return {"symlinkat", {std::move(target), std::move(dir), std::move(path)}, 0, {}};
}
KernelCall KernelCall::sethostname(std::string name) {
  return {"sethostname", {std::move(name)}, 0, {}};
}
KernelCall KernelCall::setdomainname(std::string name) {
  return {"setdomainname", {std::move(name)}, 0, {}};
}
KernelCall KernelCall::setns(std::string ns, int nstype) {
  return {"setns", {std::move(ns)}, static_cast<unsigned long long>(nstype), {}};
}
KernelCall KernelCall::unshare(int flags) {
  return {"unshare", {}, static_cast<unsigned long long>(flags), {}};
}

void PrintTo(const KernelCall& call, std::ostream* os) {
  *os << call.name << '(';
  bool first = true;
  for (const auto& a : call.args) {
    *os << (first ? "" : ", ") << '"' << a << '"';
    first = false;
  }
  *os << (first ? "" : ", ");
  if (call.name == "mount")
    *os << mount_flags_to_string(static_cast<unsigned long>(call.flags));
  else
    *os << "0x" << std::hex << call.flags << std::dec;
  for (auto e : call.extra) *os << ", 0x" << std::hex << e << std::dec;
  *os << ')';
}

std::ostream& operator<<(std::ostream& os, const KernelCall& call) {
  PrintTo(call, &os);
  return os;
}

std::vector<KernelCall> RecordingKernel::calls_named(const std::string& name) const {
  std::vector<KernelCall> out;
  for (const auto& c : calls_)
    if (c.name == name) out.push_back(c);
  return out;
}

void RecordingKernel::fail_nth(size_t n, int err) {
  size_t index = calls_.size() + n - 1;
  failures_.push_back({[index](size_t i, const KernelCall&) { return i == index; }, err, false});
}

void RecordingKernel::fail_first(const std::string& name, int err) {
  failures_.push_back({[name](size_t, const KernelCall& c) { return c.name == name; }, err, false});
}

void RecordingKernel::fail_when(std::function<bool(const KernelCall&)> match, int err) {
  failures_.push_back(
      {[match = std::move(match)](size_t, const KernelCall& c) { return match(c); }, err, false});
}

void RecordingKernel::on(const std::string& name, std::function<void(const KernelCall&)> effect) {
  effects_.emplace_back(name, std::move(effect));
}

int RecordingKernel::record(KernelCall call) {
  size_t index = calls_.size();
  calls_.push_back(std::move(call));
  for (auto& f : failures_) {
    if (f.used || !f.match(index, calls_.back())) continue;
    f.used = true;
    failed_.push_back(index);
    errno = f.err;
    return -1;
  }
  for (const auto& [name, effect] : effects_)
    if (name == calls_.back().name) effect(calls_.back());
  return 0;
}

int RecordingKernel::mount(const char* source, const char* target, const char* fstype,
                           unsigned long flags, const void* data) {
  return record(KernelCall::mount(resolve(source), resolve(target), str(fstype), flags,
                                  str(static_cast<const char*>(data))));
}
int RecordingKernel::umount2(const char* target, int flags) {
  return record(KernelCall::umount2(resolve(target), flags));
}
int RecordingKernel::mount_setattr(int dirfd, const char* path, unsigned int flags,
                                   unsigned long long set, unsigned long long clear) {
  return record(KernelCall::mount_setattr(describe_fd(dirfd), str(path), flags, set, clear));
}
int RecordingKernel::move_mount(int from_dirfd, const char* from_path, int to_dirfd,
                                const char* to_path, unsigned flags) {
  return record(KernelCall::move_mount(describe_fd(from_dirfd), str(from_path),
                                       describe_fd(to_dirfd), resolve(to_path), flags));
}
int RecordingKernel::pivot_root(const char* new_root, const char* put_old) {
  return record(KernelCall::pivot_root(str(new_root), str(put_old)));
}
int RecordingKernel::chroot(const char* path) { return record(KernelCall::chroot(str(path))); }
int RecordingKernel::chdir(const char* path) { return record(KernelCall::chdir(str(path))); }
int RecordingKernel::fchdir(int fd) { return record(KernelCall::fchdir(describe_fd(fd))); }
int RecordingKernel::mknodat(int dirfd, const char* path, mode_t mode, dev_t dev) {
  return record(KernelCall::mknodat(describe_fd(dirfd), str(path), mode, dev));
}
int RecordingKernel::symlinkat(const char* target, int dirfd, const char* path) {
  return record(KernelCall::symlinkat(str(target), describe_fd(dirfd), str(path)));
}
int RecordingKernel::sethostname(const char* name, size_t len) {
  return record(KernelCall::sethostname(name ? std::string(name, len) : std::string()));
}
int RecordingKernel::setdomainname(const char* name, size_t len) {
  return record(KernelCall::setdomainname(name ? std::string(name, len) : std::string()));
}
int RecordingKernel::setns(int fd, int nstype) {
  return record(KernelCall::setns(describe_fd(fd), nstype));
}
int RecordingKernel::unshare(int flags) { return record(KernelCall::unshare(flags)); }

}  // namespace forker::linux
