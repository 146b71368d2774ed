#include "linux/kernel.hpp"

#include <linux/mount.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace forker::linux {
namespace {

class LinuxKernel final : public Kernel {
 public:
  int mount(const char* source, const char* target, const char* fstype, unsigned long flags,
            const void* data) override {
    return ::mount(source, target, fstype, flags, data);
  }
  int umount2(const char* target, int flags) override { return ::umount2(target, flags); }
  int mount_setattr(int dirfd, const char* path, unsigned int flags, unsigned long long set,
                    unsigned long long clear) override {
    struct mount_attr attr {};
    attr.attr_set = set;
    attr.attr_clr = clear;
    return static_cast<int>(::syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof attr));
  }
  int move_mount(int from_dirfd, const char* from_path, int to_dirfd, const char* to_path,
                 unsigned flags) override {
    return static_cast<int>(
        ::syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags));
  }
  int pivot_root(const char* new_root, const char* put_old) override {
    return static_cast<int>(::syscall(SYS_pivot_root, new_root, put_old));
  }
  int chroot(const char* path) override { return ::chroot(path); }
  int chdir(const char* path) override { return ::chdir(path); }
  int fchdir(int fd) override { return ::fchdir(fd); }
  int mknodat(int dirfd, const char* path, mode_t mode, dev_t dev) override {
    return ::mknodat(dirfd, path, mode, dev);
  }
  int symlinkat(const char* target, int dirfd, const char* path) override {
    return ::symlinkat(target, dirfd, path);
  }
  int sethostname(const char* name, size_t len) override { return ::sethostname(name, len); }
  int setdomainname(const char* name, size_t len) override { return ::setdomainname(name, len); }
  int setns(int fd, int nstype) override { return ::setns(fd, nstype); }
  int unshare(int flags) override { return ::unshare(flags); }
};

}  // namespace

Kernel& real_kernel() {
  static LinuxKernel kernel;
  return kernel;
}

}  // namespace forker::linux
