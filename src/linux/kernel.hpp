// The syscall seam: one virtual per kernel call whose order matters, holding no logic.
// LinuxKernel is the real one; tests/support/recording_kernel records calls and injects errors.
// Each returns what the syscall returns (-1 with errno set on failure).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace forker::linux {

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual int mount(const char* source, const char* target, const char* fstype,
                    unsigned long flags, const void* data) = 0;
  virtual int umount2(const char* target, int flags) = 0;
  virtual int mount_setattr(int dirfd, const char* path, unsigned int flags, unsigned long long set,
                            unsigned long long clear) = 0;
  // Attaches a detached mount (fsmount, open_tree) with MOVE_MOUNT_F_EMPTY_PATH, or moves one.
  virtual int move_mount(int from_dirfd, const char* from_path, int to_dirfd, const char* to_path,
                         unsigned flags) = 0;
  virtual int pivot_root(const char* new_root, const char* put_old) = 0;
  virtual int chroot(const char* path) = 0;
  virtual int chdir(const char* path) = 0;
  virtual int fchdir(int fd) = 0;
  virtual int mknodat(int dirfd, const char* path, mode_t mode, dev_t dev) = 0;
  virtual int symlinkat(const char* target, int dirfd, const char* path) = 0;
  virtual int sethostname(const char* name, size_t len) = 0;
  virtual int setdomainname(const char* name, size_t len) = 0;
  virtual int setns(int fd, int nstype) = 0;
  virtual int unshare(int flags) = 0;
};

// The real kernel. Under --explain (core/trace.hpp) each call is recorded with its arguments.
Kernel& real_kernel();

// "CLONE_NEWNS|CLONE_NEWPID": clone(2)/unshare(2)/setns(2) flags by name, the rest in hex.
std::string clone_flags_to_string(uint64_t flags);

}  // namespace forker::linux
