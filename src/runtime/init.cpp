#include "runtime/init.hpp"

#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/file.hpp"
#include "core/strings.hpp"
#include "core/trace.hpp"
#include "linux/kernel.hpp"
#include "linux/loopback.hpp"
#include "linux/personality.hpp"
#include "linux/terminal.hpp"
#include "runtime/hooks.hpp"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace forker::runtime {
namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

Status join_namespaces(InitPlan& plan, linux::Kernel& k) {
  for (auto& ns : plan.join_namespaces) {
    if (k.setns(ns.fd.get(), ns.type) < 0) return sys_error("setns", ns.path);
    ns.fd.reset();
  }
  return ok();
}

Status write_time_offsets(const InitPlan& plan) {
  std::string text;
  for (const auto& [clock, off] : plan.time_offsets)
    text += clock + " " + std::to_string(off.secs) + " " + std::to_string(off.nanosecs) + "\n";
  if (text.empty()) return ok();
  return write_file("/proc/self/timens_offsets", text);
}

Status write_sysctls(const InitPlan& plan) {
  for (const auto& [key, value] : plan.sysctl) {
    std::string path = "/proc/sys/" + key;
    for (auto& c : path)
      if (c == '.') c = '/';
    trace::Scope step([&] { return "write " + path + " " + value; });
    FORKER_TRY(step.status(write_file(path, value)).context("sysctl " + key));
  }
  return ok();
}

Status check_cwd(const std::string& cwd) {
  trace::Scope step([&] { return "chdir " + cwd; });
  if (step.result(chdir(cwd.c_str())) < 0) return sys_error("chdir", cwd);
  // CVE-2024-21626: a cwd reached through a leaked host fd reads as "(unreachable)".
  char buf[PATH_MAX];
  if (!getcwd(buf, sizeof buf)) return sys_error("getcwd", cwd);
  if (buf[0] != '/') return make_error("cwd " + cwd + ": outside the container's root");
  return ok();
}

Status setup_terminal(InitPlan& plan) {
  auto pty = FORKER_TRY(linux::open_pty(plan.process.console_size, "/dev/ptmx"));
  FORKER_TRY(linux::send_console_fd(plan.console_socket.get(), pty.master.get()));
  plan.console_socket.reset();
  pty.master.reset();
  FORKER_TRY(linux::setup_console_stdio(pty.slave.get()));
  return ok();
}

// Every fd above the preserved ones is closed at execve; the preserved ones are kept open.
Status seal_fds(int preserve_fds) {
  int first_closed = 3 + preserve_fds;
  trace::Scope step(
      [&] { return "close_range " + std::to_string(first_closed) + " ~0 CLOSE_RANGE_CLOEXEC"; });
  if (step.result(syscall(SYS_close_range, first_closed, ~0U, CLOSE_RANGE_CLOEXEC)) < 0)
    return sys_error("close_range", std::to_string(first_closed));
  for (int fd = 3; fd < first_closed; ++fd) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
  return ok();
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Everything up to the point where the init tells the parent it is ready.
Status prepare(InitPlan& plan, const SyncChannel& ch, std::string& state_json,
               std::string& exec_path) {
  linux::Kernel& k = linux::real_kernel();
  {
    trace::Scope step("wait for the parent (id maps, cgroup placement)");
    state_json = FORKER_TRY(ch.expect(SyncStep::kGo));
  }
  trace::Scope namespaces_step("namespaces");
  FORKER_TRY(join_namespaces(plan, k));
  // In a user namespace our ids are still the host's, unmapped there (files we create would
  // fail with EOVERFLOW): become its root, as runc does. Raw syscalls: glibc's setxid would
  // try to signal threads this clone does not have. EINVAL: 0 is not mapped; keep our ids.
  if (plan.rootfs && plan.rootfs->in_userns) {
    trace::Scope gid_step("setresgid 0 0 0");
    if (gid_step.result(syscall(SYS_setresgid, 0, 0, 0)) < 0 && errno != EINVAL)
      return sys_error("setresgid", "0 in the user namespace");
    gid_step.end();
    trace::Scope uid_step("setresuid 0 0 0");
    if (uid_step.result(syscall(SYS_setresuid, 0, 0, 0)) < 0 && errno != EINVAL)
      return sys_error("setresuid", "0 in the user namespace");
  }
  if (plan.unshare_flags && k.unshare(plan.unshare_flags) < 0)
    return sys_error("unshare", "namespaces");
  // The cgroup namespace is made after the parent placed us in our cgroup, so that cgroup
  // becomes the namespace's root.
  if (plan.new_cgroupns && k.unshare(CLONE_NEWCGROUP) < 0) return sys_error("unshare", "cgroup");
  if (plan.new_timens) {
    // unshare makes the namespace for our children; the offsets can be written until a process
    // enters it; then we enter it ourselves (execve does that only since Linux 6.2).
    if (k.unshare(CLONE_NEWTIME) < 0) return sys_error("unshare", "time");
    FORKER_TRY(write_time_offsets(plan));
    UniqueFd ns(open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC));
    if (!ns) return sys_error("open", "/proc/self/ns/time_for_children");
    if (k.setns(ns.get(), CLONE_NEWTIME) < 0) return sys_error("setns", "time");
  }
  if (plan.loopback_up) {
    trace::Scope step("lo up (ioctl SIOCSIFFLAGS IFF_UP)");
    FORKER_TRY(step.status(linux::bring_up_loopback()));
  }
  if (plan.set_hostname && k.sethostname(plan.hostname.data(), plan.hostname.size()) < 0)
    return sys_error("sethostname", plan.hostname);
  if (plan.set_domainname &&
      k.setdomainname(plan.domainname.data(), plan.domainname.size()) < 0)
    return sys_error("setdomainname", plan.domainname);
  namespaces_step.end();
  if (plan.rootfs) {
    {
      // Paths under the rootfs are shown relative to it (the paths the container will see) until
      // pivot_root or chroot makes them its own.
      trace::set_path_root(plan.rootfs->rootfs);
      trace::Scope step([&] { return "rootfs " + plan.rootfs->rootfs + " (paths below: in it)"; });
      FORKER_TRY(step.status(linux::prepare_rootfs(k, *plan.rootfs)).context("rootfs"));
    }
    if (plan.parent_runs_hooks) {
      trace::Scope step("prestart/createRuntime hooks (run by the parent)");
      FORKER_TRY(ch.send(SyncStep::kHooksRequest));
      FORKER_TRY(ch.expect(SyncStep::kHooksDone));
    }
    if (!plan.create_container_hooks.empty()) {
      trace::Scope step("createContainer hooks");
      FORKER_TRY(
          step.status(run_hooks("createContainer", plan.create_container_hooks, state_json)));
    }
    {
      trace::Scope step("pivot_root");
      FORKER_TRY(step.status(linux::enter_rootfs(k, *plan.rootfs)).context("rootfs"));
    }
    FORKER_TRY(write_sysctls(plan));
    trace::Scope step("finish rootfs (readonly and masked paths)");
    FORKER_TRY(step.status(linux::finish_rootfs(k, *plan.rootfs)).context("rootfs"));
  }
  trace::Scope process_step("process");
  if (plan.process.terminal) {
    trace::Scope step("terminal (pty from /dev/ptmx)");
    FORKER_TRY(step.status(setup_terminal(plan)));
  }
  FORKER_TRY(check_cwd(plan.process.cwd));
  if (plan.process.user.umask) umask(static_cast<mode_t>(*plan.process.user.umask));
  FORKER_TRY(linux::apply_rlimits(plan.rlimits));
  if (plan.personality) FORKER_TRY(linux::apply_personality(*plan.personality));
  if (plan.new_keyring) {
    // A session keyring of our own, so the container cannot read the host's keys. Refused
    // in some user namespaces; that is not fatal, as in runc.
    std::string name = "_ses." + plan.container_id;
    trace::Scope step([&] { return "keyctl KEYCTL_JOIN_SESSION_KEYRING " + name; });
    step.result(syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name.c_str()));
  }
  exec_path = FORKER_TRY(resolve_executable(plan.process.args[0], plan.process.env));
  if (plan.process.no_new_privileges) {
    trace::Scope step("prctl PR_SET_NO_NEW_PRIVS 1");
    if (step.result(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) < 0)
      return sys_error("prctl", "PR_SET_NO_NEW_PRIVS");
  }
  // Before the filter, which may not allow close_range: everything above the preserved fds is
  // closed at execve (our own later fds are all O_CLOEXEC).
  FORKER_TRY(seal_fds(plan.preserve_fds));
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it before the drop. A
  // filter with a notify listener is loaded here too, so the listener can reach the parent.
  if (plan.seccomp && (!plan.process.no_new_privileges || plan.seccomp->needs_listener)) {
    int listener = FORKER_TRY(linux::load_seccomp(*plan.seccomp).context("seccomp"));
    if (listener >= 0) {
      UniqueFd owned(listener);
      FORKER_TRY(ch.send_fd(SyncStep::kSeccompFd, listener));
    }
  }
  if (plan.capabilities) {
    FORKER_TRY(linux::drop_bounding_set(*plan.capabilities));
    FORKER_TRY(linux::keep_caps_across_setuid(true));
    FORKER_TRY(linux::set_ids(plan.process.user));
    FORKER_TRY(linux::apply_capabilities(*plan.capabilities));
  } else {
    FORKER_TRY(linux::set_ids(plan.process.user));
  }
  return ok();
}

[[noreturn]] void fail_after_ready(const Error& e) {
  std::string msg = "forker-oci: container init: " + e.message() + "\n";
  ssize_t ignored = write(STDERR_FILENO, msg.data(), msg.size());
  (void)ignored;
  _exit(127);
}

// The clone copied every fd of the runtime, among them the state directory's lock: keep only
// stdio, the preserved fds and those the plan names, or `start` would wait on our lock.
void close_inherited_fds(const InitPlan& plan, const SyncChannel& ch) {
  std::vector<int> keep = {ch.fd(), plan.console_socket.get(), plan.exec_fifo.get()};
  for (const auto& ns : plan.join_namespaces) keep.push_back(ns.fd.get());
  for (const auto& fd : plan.idmap_userns) keep.push_back(fd.get());
  if (plan.rootfs) keep.push_back(plan.rootfs->root_mount_fd);  // attached by prepare_rootfs
  std::sort(keep.begin(), keep.end());
  unsigned int next = 3u + static_cast<unsigned int>(plan.preserve_fds);
  for (int fd : keep) {
    if (fd < 0 || static_cast<unsigned int>(fd) < next) continue;
    if (static_cast<unsigned int>(fd) > next) syscall(SYS_close_range, next, fd - 1, 0);
    next = static_cast<unsigned int>(fd) + 1;
  }
  syscall(SYS_close_range, next, ~0U, 0);
}

[[noreturn]] void run_init(InitPlan& plan, SyncChannel& ch) {
  // Our steps form a tree of their own (the parent's open steps are not ours to end).
  trace::begin_process();
  trace::Scope init_step(plan.exec_mode ? "exec init" : "init");
  close_inherited_fds(plan, ch);
  // CVE-2019-5736: until execve this process runs the runtime's binary, and a container process
  // could open it through /proc/PID/exe (and write it once no runtime runs). Non-dumpable, only
  // CAP_SYS_PTRACE in the host's user namespace can; execve makes the program dumpable again.
  // An exec'd process is visible in the container from birth. The init is not dumpable only
  // after prepare: the parent writes its /proc files (id maps, oom_score_adj) before kGo, and
  // prepare may write its own (timens_offsets); no container process exists before kReady.
  if (plan.exec_mode) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Die with the runtime while it still holds the setup; cleared once ready.
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  std::string state_json, exec_path;
  if (auto st = prepare(plan, ch, state_json, exec_path); !st) {
    init_step.status(st);
    init_step.end();
    auto _ = ch.send_error(st.error().add_context(plan.exec_mode ? "exec" : "container init"));
    _exit(1);
  }
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  init_step.end();  // before kReady: the parent may print as soon as the start is done
  if (!ch.send(SyncStep::kReady)) _exit(1);
  ch.close();
  if (plan.exec_fifo) {
    // Blocks until `start` opens the fifo for reading.
    trace::Scope step("wait for start (open exec.fifo for writing)");
    std::string p = "/proc/self/fd/" + std::to_string(plan.exec_fifo.get());
    int fd = open(p.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail_after_ready(sys_error("open", "exec.fifo"));
    if (write(fd, "0", 1) != 1) fail_after_ready(sys_error("write", "exec.fifo"));
    close(fd);
    plan.exec_fifo.reset();
  }
  if (!plan.start_container_hooks.empty()) {
    trace::Scope step("startContainer hooks");
    if (auto st = run_hooks("startContainer", plan.start_container_hooks, state_json); !st)
      fail_after_ready(st.error());
  }
  if (plan.seccomp && plan.process.no_new_privileges && !plan.seccomp->needs_listener) {
    if (auto st = linux::load_seccomp(*plan.seccomp); !st) fail_after_ready(st.error());
  }
  auto argv = c_strings(plan.process.args);
  auto envp = c_strings(plan.process.env);
  // execve does not return on success: a point step, recorded just before it.
  trace::point([&] {
    std::string text = "exec " + exec_path + " [";
    for (size_t i = 0; i < plan.process.args.size(); ++i)
      text += (i ? " " : "") + plan.process.args[i];
    return text + "]";
  });
  execve(exec_path.c_str(), argv.data(), envp.data());
  fail_after_ready(sys_error("exec", exec_path));
}

}  // namespace

Result<std::string> resolve_executable(const std::string& arg0,
                                       const std::vector<std::string>& env) {
  auto executable = [](const std::string& p) {
    struct stat st {};
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
  };
  if (arg0.find('/') != std::string::npos) {
    if (!executable(arg0)) {
      int e = errno ? errno : EACCES;
      struct stat st {};
      if (stat(arg0.c_str(), &st) < 0) return sys_error("exec", "\"" + arg0 + "\"");
      (void)e;
      return make_error("exec \"" + arg0 + "\": permission denied or not a regular file");
    }
    return arg0;
  }
  std::string path = kDefaultPath;
  for (const auto& e : env)
    if (e.starts_with("PATH=")) path = e.substr(5);
  for (const auto& dir : split(path, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + arg0;
    if (executable(candidate)) return candidate;
  }
  return make_error("exec: \"" + arg0 + "\": executable file not found in $PATH");
}

Result<Spawned> spawn_init(InitPlan& plan, int clone_flags, SyncChannel& child_end,
                           SyncChannel& parent_end, int cgroup_fd) {
  int pidfd = -1;
  clone_args args{};
  args.flags = static_cast<uint64_t>(clone_flags) | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  // Each attempt is a step of its own; the child leaves them to the parent (trace::Scope ends a
  // step only in the process that began it).
  auto clone3 = [&args] {
    trace::Scope step([&] { return "clone3 " + linux::clone_flags_to_string(args.flags); });
    return step.result(syscall(SYS_clone3, &args, sizeof args));
  };
  long pid = clone3();
  if (pid < 0 && cgroup_fd >= 0 && errno != ENOMEM && errno != EAGAIN) {
    // The kernel may refuse to clone into this cgroup (EOPNOTSUPP for a cgroup that is not a
    // valid domain, as some delegated ones are; ENOSYS before Linux 5.7): clone plainly and let
    // the caller move the child.
    args.flags &= ~static_cast<uint64_t>(CLONE_INTO_CGROUP);
    args.cgroup = 0;
    cgroup_fd = -1;
    pid = clone3();
  }
  if (pid < 0 && errno == ENOSYS) {
    // clone3 is Linux 5.3+; the old clone has the same fork-like form without a stack.
    trace::Scope step([&] {
      return "clone " + linux::clone_flags_to_string(static_cast<unsigned>(clone_flags));
    });
    pid = step.result(syscall(SYS_clone, clone_flags | SIGCHLD, nullptr, nullptr, nullptr, 0));
  }
  if (pid < 0) return sys_error("clone", "container init");
  if (pid == 0) {
    parent_end.close();
    run_init(plan, child_end);
  }
  child_end.close();
  return Spawned{static_cast<pid_t>(pid), UniqueFd(pidfd), cgroup_fd >= 0};
}

}  // namespace forker::runtime
