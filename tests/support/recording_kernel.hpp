// A fake of the syscall seam (linux/kernel.hpp): every call is recorded as a comparable
// KernelCall and returns 0, unless the test asked for it to fail with a chosen errno.
//
// File descriptors differ from run to run, so an fd argument (fchdir, mknodat's dirfd, ...) and a
// "/proc/self/fd/N" path are recorded as the path they name at the time of the call (readlink of
// /proc/self/fd/N). A test can then compare whole sequences:
//   EXPECT_THAT(k.calls(), ElementsAre(KernelCall::fchdir(rootfs), KernelCall::pivot_root(".",
//   ".")));
#pragma once

#include <cstddef>
#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "linux/kernel.hpp"

namespace forker::linux {

struct KernelCall {
  std::string name;               // the syscall: "mount", "pivot_root", ...
  std::vector<std::string> args;  // string arguments in order; a null pointer is ""
  unsigned long long flags = 0;   // the call's flags (mount flags, nstype, mknod mode, ...)
  std::vector<unsigned long long>
      extra;  // further numbers: mount_setattr {set, clear}, mknod {dev}

  bool operator==(const KernelCall&) const = default;

  // Builders for expected calls; the argument order follows the syscall.
  static KernelCall mount(std::string source, std::string target, std::string fstype,
                          unsigned long flags, std::string data = "");
  static KernelCall umount2(std::string target, int flags);
  static KernelCall mount_setattr(std::string dir, std::string path, unsigned int flags,
                                  unsigned long long set, unsigned long long clear);
  static KernelCall move_mount(std::string from_dir, std::string from_path, std::string to_dir,
                               std::string to_path, unsigned flags);
  static KernelCall pivot_root(std::string new_root, std::string put_old);
  static KernelCall chroot(std::string path);
  static KernelCall chdir(std::string path);
  static KernelCall fchdir(std::string dir);
  static KernelCall mknodat(std::string dir, std::string path, unsigned int mode,
                            unsigned long long dev);
  static KernelCall symlinkat(std::string target, std::string dir, std::string path);
  static KernelCall sethostname(std::string name);
  static KernelCall setdomainname(std::string name);
  static KernelCall setns(std::string ns, int nstype);
  static KernelCall unshare(int flags);
};

// For gtest's failure messages: mount("tmpfs", "/r/tmp", "tmpfs", MS_NOSUID|MS_NODEV, "size=1k").
void PrintTo(const KernelCall& call, std::ostream* os);
std::ostream& operator<<(std::ostream& os, const KernelCall& call);

// The path an fd names, as readlink("/proc/self/fd/N") gives it; "fd:N" when it cannot be read.
std::string describe_fd(int fd);

class RecordingKernel : public Kernel {
 public:
  const std::vector<KernelCall>& calls() const { return calls_; }
  // The recorded calls named NAME, in order.
  std::vector<KernelCall> calls_named(const std::string& name) const;
  // Indices (0-based) of calls_ that failed because a failure was injected.
  const std::vector<size_t>& failed() const { return failed_; }
  void clear() {
    calls_.clear();
    failed_.clear();
  }

  // The Nth call from now (1-based, counting every call) fails with ERR.
  void fail_nth(size_t n, int err);
  // The first call named NAME fails with ERR (later ones succeed).
  void fail_first(const std::string& name, int err);
  // The first call for which MATCH is true fails with ERR.
  void fail_when(std::function<bool(const KernelCall&)> match, int err);
  // Runs EFFECT after each successful call named NAME, for a test that needs the call's result
  // on disk (a mknodat that leaves a file for the chmod that follows).
  void on(const std::string& name, std::function<void(const KernelCall&)> effect);

  int mount(const char* source, const char* target, const char* fstype, unsigned long flags,
            const void* data) override;
  int umount2(const char* target, int flags) override;
  int mount_setattr(int dirfd, const char* path, unsigned int flags, unsigned long long set,
                    unsigned long long clear) override;
  int move_mount(int from_dirfd, const char* from_path, int to_dirfd, const char* to_path,
                 unsigned flags) override;
  int pivot_root(const char* new_root, const char* put_old) override;
  int chroot(const char* path) override;
  int chdir(const char* path) override;
  int fchdir(int fd) override;
  int mknodat(int dirfd, const char* path, mode_t mode, dev_t dev) override;
  int symlinkat(const char* target, int dirfd, const char* path) override;
  int sethostname(const char* name, size_t len) override;
  int setdomainname(const char* name, size_t len) override;
  int setns(int fd, int nstype) override;
  int unshare(int flags) override;

 private:
  struct Failure {
    std::function<bool(size_t index, const KernelCall&)> match;
    int err = 0;
    bool used = false;
  };
  // Records CALL; returns -1 with errno set when an injected failure matches, else 0.
  int record(KernelCall call);

  std::vector<KernelCall> calls_;
  std::vector<size_t> failed_;
  std::vector<Failure> failures_;
  std::vector<std::pair<std::string, std::function<void(const KernelCall&)>>> effects_;
};

}  // namespace forker::linux
