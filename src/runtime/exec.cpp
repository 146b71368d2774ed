// exec: a new process in a running container: the container's namespaces and cgroup, the
// process settings from --process or from the container's config plus the flags.
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "core/file.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "linux/seccomp_cache.hpp"
#include "linux/rootless.hpp"
#include "linux/terminal.hpp"
#include "oci/validate.hpp"
#include "runtime/launch.hpp"

namespace forker::runtime {
namespace {

const char* proc_ns_name(const std::string& type) {
  if (type == "mount") return "mnt";
  if (type == "network") return "net";
  return type.c_str();
}

bool same_namespace(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0 && sa.st_ino == sb.st_ino &&
         sa.st_dev == sb.st_dev;
}

Result<oci::Process> exec_process(const ExecOptions& o, const oci::Spec& spec) {
  if (!o.process_file.empty()) {
    std::string text = FORKER_TRY(read_file(o.process_file));
    return oci::parse_process(text);
  }
  if (o.args.empty()) return make_error("exec: no command given (args or --process)");
  oci::Process p = *spec.process;
  p.args = o.args;
  p.terminal = o.tty;
  for (const auto& e : o.env) {
    auto key = e.substr(0, e.find('='));
    std::erase_if(p.env, [&](const std::string& x) { return x.substr(0, x.find('=')) == key; });
    p.env.push_back(e);
  }
  if (!o.cwd.empty()) p.cwd = o.cwd;
  if (!o.user.empty()) {
    auto parts = split(o.user, ':');
    auto uid = parse_uint(parts[0]);
    if (!uid || parts.size() > 2) return make_error("exec --user " + o.user + ": expected uid[:gid]");
    p.user.uid = static_cast<uint32_t>(*uid);
    p.user.gid = 0;
    if (parts.size() == 2) {
      auto gid = parse_uint(parts[1]);
      if (!gid) return make_error("exec --user " + o.user + ": expected uid[:gid]");
      p.user.gid = static_cast<uint32_t>(*gid);
    }
  }
  if (!o.additional_gids.empty()) p.user.additional_gids = o.additional_gids;
  if (!o.caps.empty()) {
    if (!p.capabilities) p.capabilities = oci::Capabilities{};
    auto add = [](std::vector<std::string>& set, const std::string& c) {
      if (std::find(set.begin(), set.end(), c) == set.end()) set.push_back(c);
    };
    for (const auto& c : o.caps) {
      add(p.capabilities->bounding, c);
      add(p.capabilities->effective, c);
      add(p.capabilities->permitted, c);
      add(p.capabilities->ambient, c);
      add(p.capabilities->inheritable, c);
    }
  }
  if (o.no_new_privs) p.no_new_privileges = true;
  return p;
}

}  // namespace

Result<int> exec_container(const GlobalOptions& g, const ExecOptions& o) {
  auto st = FORKER_TRY(oci::read_state(g.root, o.id).context("exec " + o.id));
  auto status = oci::derive_status(g.root + "/" + o.id, st);
  // Not into a created container either: until start its init is still the runtime binary,
  // and a process there holding /proc/1/exe could reopen it for writing (CVE-2019-5736).
  if (status != oci::ContainerStatus::Running)
    return make_error(std::string("exec ") + o.id + ": cannot exec in a container that is " +
                      oci::status_name(status));
  auto spec = FORKER_TRY(oci::parse_spec(st.config_json).context("exec " + o.id));
  InitPlan plan;
  plan.container_id = o.id;
  plan.exec_mode = true;
  plan.process = FORKER_TRY(exec_process(o, spec).context("exec " + o.id));
  FORKER_TRY(oci::validate_process(plan.process).context("exec " + o.id));
  if (plan.process.terminal && o.console_socket.empty() && o.detach)
    return make_error("exec " + o.id + ": --tty with --detach needs --console-socket");
  plan.preserve_fds = o.preserve_fds;
  plan.new_keyring = false;
  if (plan.process.capabilities)
    plan.capabilities = FORKER_TRY(linux::plan_capabilities(*plan.process.capabilities));
  plan.rlimits = FORKER_TRY(linux::plan_rlimits(plan.process.rlimits));
  if (spec.linux.seccomp)
    plan.seccomp = FORKER_TRY(
        linux::compile_seccomp_cached(*spec.linux.seccomp, linux::default_seccomp_cache_dir()));

  std::string proc = "/proc/" + std::to_string(st.pid) + "/ns/";
  // Rootless: setns into the pid namespace below also needs CAP_SYS_ADMIN in our own user
  // namespace, which only the container's gives us. Join it first; the child inherits it.
  if (spec.find_namespace("user") && linux::running_rootless() &&
      !same_namespace(proc + "user", "/proc/self/ns/user")) {
    // Right after start the init may not have reached execve yet: until then it is not
    // dumpable and its /proc/PID/ns files are closed to us (EACCES; root has CAP_SYS_PTRACE).
    UniqueFd fd;
    for (int i = 0; i < 2000; ++i) {
      fd = UniqueFd(open((proc + "user").c_str(), O_RDONLY | O_CLOEXEC));
      if (fd || errno != EACCES) break;
      usleep(1000);
    }
    if (!fd) return sys_error("exec " + o.id + ": open namespace", proc + "user");
    if (setns(fd.get(), CLONE_NEWUSER) < 0)
      return sys_error("exec " + o.id + ": setns", proc + "user");
  }
  for (const auto& ns : spec.linux.namespaces) {
    std::string target = proc + proc_ns_name(ns.type);
    std::string mine = std::string("/proc/self/ns/") + proc_ns_name(ns.type);
    int flag = oci::namespace_clone_flag(ns.type);
    if (flag == CLONE_NEWUSER && same_namespace(target, mine)) continue;
    UniqueFd fd(open(target.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return sys_error("exec " + o.id + ": open namespace", target);
    if (flag == CLONE_NEWPID) {
      // Applies to our children only: the exec'd process is born in the container's pid ns.
      if (setns(fd.get(), CLONE_NEWPID) < 0) return sys_error("exec " + o.id + ": setns", target);
      continue;
    }
    JoinNamespace j{std::move(fd), flag, target};
    if (flag == CLONE_NEWUSER) plan.join_namespaces.insert(plan.join_namespaces.begin(), std::move(j));
    else plan.join_namespaces.push_back(std::move(j));
  }
  // Recheck: the init may have exited while we opened its namespaces.
  if (oci::process_start_time(st.pid).value_or(0) != st.pid_start_time)
    return make_error("exec " + o.id + ": container not running");

  UniqueFd console_local = FORKER_TRY(attach_console(plan, o.console_socket));
  auto host = FORKER_TRY(cgroup_host(st));
  // An empty cgroups_path: a rootless container without a cgroup.
  std::optional<linux::Cgroup> cgroup;
  if (!st.cgroups_path.empty())
    cgroup = FORKER_TRY(linux::Cgroup::open(host, st.cgroups_path).context("exec " + o.id));
  const int cgroup_fd = cgroup ? cgroup->unified_dir_fd() : -1;

  auto [parent_end, child_end] = FORKER_TRY(SyncChannel::make_pair());
  ChildGuard child(FORKER_TRY(spawn_init(plan, 0, child_end, parent_end, cgroup_fd)));
  plan.console_socket.reset();
  if (cgroup && !child.in_cgroup())  // on v2 it was born inside
    FORKER_TRY(cgroup->add_process(child.pid()).context("exec " + o.id));
  FORKER_TRY(parent_end.send(SyncStep::kGo, oci::state_json(st, status, false)));
  if (plan.seccomp && plan.seccomp->needs_listener)
    FORKER_TRY(forward_seccomp_listener(parent_end, spec, st, child.pid(), status).context("exec " + o.id));
  FORKER_TRY(parent_end.expect(SyncStep::kReady).context("exec " + o.id));
  FORKER_TRY(write_pid_file(o.pid_file, child.pid()));
  if (o.detach) {
    child.release();
    return 0;
  }
  if (console_local) {
    auto master = FORKER_TRY(linux::recv_console_fd(console_local.get()));
    auto ps = linux::proxy_terminal(master.get(), child.pid());
    if (!ps) log::warn(ps.error().message());
    return child.wait();
  }
  return wait_forwarding_signals(child);
}

}  // namespace forker::runtime
