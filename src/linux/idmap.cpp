#include "linux/idmap.hpp"

#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/file.hpp"
#include "linux/idmap_tools.hpp"

namespace forker::linux {

Result<UniqueFd> make_userns_fd(const std::vector<oci::IdMapping>& uid_mappings,
                                const std::vector<oci::IdMapping>& gid_mappings) {
  if (uid_mappings.empty() || gid_mappings.empty())
    return make_error("idmapped mount: needs both uidMappings and gidMappings");
  int hold[2];
  if (pipe2(hold, O_CLOEXEC) < 0) return sys_error("pipe", "idmap");
  UniqueFd read_end(hold[0]), write_end(hold[1]);
  // A process that only exists to own the namespace until we hold an fd to it.
  long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, 0);
  if (pid < 0) return sys_error("clone", "idmap user namespace");
  if (pid == 0) {
    write_end.reset();
    char c;
    ssize_t ignored = read(read_end.get(), &c, 1);
    (void)ignored;
    _exit(0);
  }
  read_end.reset();
  auto reap = [&] {
    write_end.reset();
    int status;
    while (waitpid(static_cast<pid_t>(pid), &status, 0) < 0 && errno == EINTR) {
    }
  };
  std::string proc = "/proc/" + std::to_string(pid);
  auto st = write_id_maps(static_cast<pid_t>(pid), uid_mappings, gid_mappings);
  if (!st) {
    reap();
    return std::move(st).error().add_context("idmapped mount");
  }
  UniqueFd ns(open((proc + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC));
  int saved = errno;
  reap();
  if (!ns) return sys_error_errno(saved, "open", proc + "/ns/user");
  return ns;
}

Status mount_idmapped(const std::string& source, int target_fd,
                      int userns_fd, bool recursive, const std::string& shown) {
  unsigned int tree_flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
  long tree = syscall(SYS_open_tree, AT_FDCWD, source.c_str(), tree_flags);
  if (tree < 0) return sys_error("open_tree", source);
  UniqueFd tree_fd(static_cast<int>(tree));
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (syscall(SYS_mount_setattr, tree_fd.get(), "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0),
              &attr, sizeof attr) < 0)
    return sys_error("mount_setattr MOUNT_ATTR_IDMAP (source " + source + ") for", shown);
  if (syscall(SYS_move_mount, tree_fd.get(), "", target_fd, "",
              MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return sys_error("move_mount (source " + source + ") on", shown);
  return ok();
}

}  // namespace forker::linux
