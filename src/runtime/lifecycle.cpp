// start, run, kill, delete, state, list.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "core/file.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "linux/rootfs.hpp"
#include "linux/terminal.hpp"
#include "runtime/hooks.hpp"
#include "runtime/launch.hpp"

namespace forker::runtime {
namespace {

Result<UniqueFd> open_pidfd(const oci::ContainerState& st) {
  long fd = syscall(SYS_pidfd_open, st.pid, 0);
  if (fd < 0) return sys_error("pidfd_open", std::to_string(st.pid));
  // The pid may have been reused between reading the state and opening it: check again.
  if (oci::process_start_time(st.pid).value_or(0) != st.pid_start_time) {
    close(static_cast<int>(fd));
    return sys_error_errno(ESRCH, "pidfd_open", std::to_string(st.pid));
  }
  return UniqueFd(static_cast<int>(fd));
}

// Waits until the process behind PIDFD exits (or timeout_ms passes); true when it exited.
bool wait_exit(int pidfd, int timeout_ms) {
  pollfd p{pidfd, POLLIN, 0};
  for (;;) {
    int n = poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

Result<oci::Spec> spec_of(const oci::ContainerState& st) {
  return oci::parse_spec(st.config_json);
}

}  // namespace

Result<int> parse_signal(const std::string& name) {
  if (auto n = parse_int(name)) {
    if (*n <= 0 || *n > 64) return make_error("invalid signal " + name);
    return static_cast<int>(*n);
  }
  std::string s = name;
  for (auto& c : s) c = static_cast<char>(toupper(c));
  if (s.starts_with("SIG")) s = s.substr(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = sigabbrev_np(sig);
    if (abbrev && s == abbrev) return sig;
  }
  if (s.starts_with("RTMIN")) {
    // Only "RTMIN" and "RTMIN+N": "RTMIN-1" or "RTMINx1" must not pass as RTMIN+1.
    std::optional<int64_t> off;
    if (s.size() == 5) off = 0;
    else if (s[5] == '+') off = parse_int(s.substr(6));
    if (off && *off >= 0 && SIGRTMIN + *off <= SIGRTMAX) return static_cast<int>(SIGRTMIN + *off);
  }
  return make_error("invalid signal " + name);
}

Status start_impl(const std::string& state_dir, const oci::ContainerState& st,
                  const oci::Spec& spec) {
  std::string fifo = state_dir + "/exec.fifo";
  // The pidfd first: once the fifo has a reader the init goes on to exec, and a short-lived
  // process can exit and be reaped (by conmon or the shim) before pidfd_open.
  UniqueFd pidfd = FORKER_TRY(open_pidfd(st));
  UniqueFd fd(open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return sys_error("open", fifo);
  pollfd p[2] = {{fd.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
  for (;;) {
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("poll", fifo);
    if (p[0].revents & POLLIN) {
      char c;
      if (read(fd.get(), &c, 1) == 1) break;
    }
    if (p[1].revents) return make_error("container init exited before start");
  }
  unlink(fifo.c_str());
  std::string hook_state = oci::state_json(st, oci::ContainerStatus::Running, false);
  // A failing poststart hook is reported but does not stop the container (runtime-spec).
  for (const auto& e : run_hooks_all("poststart", spec.hooks.poststart, hook_state))
    log::warn(e.message());
  return ok();
}

Status start_container(const GlobalOptions& g, const std::string& id) {
  auto dir = FORKER_TRY(oci::StateDir::open(g.root, id).context("start " + id));
  auto st = FORKER_TRY(dir.load());
  auto status = oci::derive_status(dir.path(), st);
  if (status != oci::ContainerStatus::Created)
    return make_error(std::string("start ") + id + ": cannot start a container that is " +
                      oci::status_name(status));
  auto spec = FORKER_TRY(spec_of(st));
  return start_impl(dir.path(), st, spec).context("start " + id);
}

Status destroy_impl(oci::StateDir& dir, const oci::ContainerState& st) {
  auto host = FORKER_TRY(cgroup_host(st));
  auto cg = linux::Cgroup::open(host, st.cgroups_path, st.cgroup_dirs_created);
  if (cg) {
    // Most deletes find the cgroup empty (the init was reaped): skip the freeze-signal-thaw.
    auto left = cg->pids();
    if (!left || !left->empty()) auto _ = cg->kill_all(SIGKILL);
  }
  if (auto pidfd = open_pidfd(st)) {
    syscall(SYS_pidfd_send_signal, pidfd->get(), SIGKILL, nullptr, 0);
    wait_exit(pidfd->get(), 5000);
  }
  if (cg) FORKER_TRY(cg->destroy().context("cgroup " + st.cgroups_path));
  auto spec = spec_of(st);
  // Without a mount namespace the container's mounts are in ours; they go with it.
  if (spec && !spec->has_namespace("mount")) linux::unmount_under(st.rootfs);
  FORKER_TRY(dir.remove());
  if (spec) {
    std::string hook_state = oci::state_json(st, oci::ContainerStatus::Stopped, false);
    for (const auto& e : run_hooks_all("poststop", spec->hooks.poststop, hook_state))
      log::warn(e.message());
  }
  return ok();
}

Status delete_container(const GlobalOptions& g, const std::string& id, bool force) {
  auto dir = oci::StateDir::open(g.root, id);
  if (!dir) {
    // Like runc, --force on a container that is already gone succeeds: containerd's shim
    // cleanup and podman both force-delete after a normal delete.
    std::string state_file = g.root + "/" + id + "/state.json";
    if (force && access(state_file.c_str(), F_OK) < 0 && errno == ENOENT) return ok();
    return std::move(dir).error().add_context("delete " + id);
  }
  auto st = FORKER_TRY(dir->load().context("delete " + id));
  auto status = oci::derive_status(dir->path(), st);
  // A created container is deleted without --force, as runc and crun do and as engines rely on
  // (containerd's shim deletes a task that never started); a running one needs --force. The
  // runtime-spec asks for an error in both cases: two validation-suite assertions we give up.
  if ((status == oci::ContainerStatus::Running || status == oci::ContainerStatus::Paused) && !force)
    return make_error(std::string("delete ") + id + ": cannot delete a container that is " +
                      oci::status_name(status) + " (use --force)");
  return destroy_impl(*dir, st).context("delete " + id);
}

Status kill_container(const GlobalOptions& g, const std::string& id, int signal, bool all) {
  auto st = FORKER_TRY(oci::read_state(g.root, id).context("kill " + id));
  auto status = oci::derive_status(g.root + "/" + id, st);
  // Rootless without a cgroup (cgroups_path empty): the init is all we can name; killing a pid
  // namespace's init takes every process in it along.
  if (all && !st.cgroups_path.empty()) {
    auto host = FORKER_TRY(cgroup_host(st));
    auto cg = FORKER_TRY(linux::Cgroup::open(host, st.cgroups_path).context("kill " + id));
    return cg.kill_all(signal).context("kill " + id);
  }
  if (status == oci::ContainerStatus::Stopped)
    return make_error("kill " + id + ": container not running");
  auto pidfd = FORKER_TRY(open_pidfd(st).context("kill " + id));
  if (syscall(SYS_pidfd_send_signal, pidfd.get(), signal, nullptr, 0) < 0)
    return sys_error("kill " + id + ": send signal to", std::to_string(st.pid));
  // A frozen task does not act on SIGKILL: thaw a paused container so it dies (runc 1.2 too).
  if (signal == SIGKILL && status == oci::ContainerStatus::Paused) {
    auto host = FORKER_TRY(cgroup_host(st));
    auto cg = FORKER_TRY(linux::Cgroup::open(host, st.cgroups_path).context("kill " + id));
    return cg.thaw().context("kill " + id);
  }
  return ok();
}

Result<std::string> container_state(const GlobalOptions& g, const std::string& id) {
  auto st = FORKER_TRY(oci::read_state(g.root, id).context("state " + id));
  return oci::state_json(st, oci::derive_status(g.root + "/" + id, st), true);
}

Result<std::vector<pid_t>> container_pids(const GlobalOptions& g, const std::string& id) {
  auto st = FORKER_TRY(oci::read_state(g.root, id).context("ps " + id));
  if (st.cgroups_path.empty()) return std::vector<pid_t>{st.pid};  // rootless, no cgroup
  auto host = FORKER_TRY(cgroup_host(st));
  auto cg = FORKER_TRY(linux::Cgroup::open(host, st.cgroups_path).context("ps " + id));
  return cg.pids().context("ps " + id);
}

Result<std::vector<ListEntry>> list_containers(const GlobalOptions& g) {
  std::vector<ListEntry> out;
  auto ids = FORKER_TRY(oci::list_containers(g.root));
  for (const auto& id : ids) {
    auto st = oci::read_state(g.root, id);
    if (!st) continue;  // deleted meanwhile
    auto status = oci::derive_status(g.root + "/" + id, *st);
    out.push_back({std::move(*st), status});
  }
  return out;
}

// Forwards the signals a terminal user sends to the container until it exits.
Result<int> wait_forwarding_signals(ChildGuard& child) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT})
    sigaddset(&set, s);
  sigset_t old;
  sigprocmask(SIG_BLOCK, &set, &old);
  UniqueFd sfd(signalfd(-1, &set, SFD_CLOEXEC));
  if (!sfd) return sys_error("signalfd", "run");
  pollfd p[2] = {{sfd.get(), POLLIN, 0}, {child.pidfd(), POLLIN, 0}};
  for (;;) {
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("poll", "run");
    if (p[0].revents & POLLIN) {
      signalfd_siginfo si;
      if (read(sfd.get(), &si, sizeof si) == sizeof si)
        kill(child.pid(), static_cast<int>(si.ssi_signo));
    }
    if (p[1].revents) break;
  }
  auto code = child.wait();
  sigprocmask(SIG_SETMASK, &old, nullptr);
  return code;
}

Result<int> run_container(const GlobalOptions& g, const CreateOptions& o, bool detach) {
  auto created = FORKER_TRY(create_impl(g, o, !detach).context("run " + o.id));
  if (auto st = start_impl(created.dir.path(), created.state, created.spec); !st) {
    auto _ = destroy_impl(created.dir, created.state);
    return std::move(st).error().add_context("run " + o.id);
  }
  if (detach) {
    created.child.release();
    return 0;
  }
  int code = 0;
  if (created.pty_master) {
    auto ps = linux::proxy_terminal(created.pty_master.get(), created.child.pid());
    code = FORKER_TRY(created.child.wait());
    if (!ps) log::warn(ps.error().message());
  } else {
    code = FORKER_TRY(wait_forwarding_signals(created.child));
  }
  FORKER_TRY(destroy_impl(created.dir, created.state).context("run " + o.id));
  return code;
}

}  // namespace forker::runtime
