// create: plan everything from config.json, then make the state directory, the cgroup (limits
// first), clone the init into its namespaces, write its id maps, place it in its cgroup, and
// leave it waiting on exec.fifo. Every step is undone if a later one fails.
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/file.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/trace.hpp"
#include "core/undo.hpp"
#include "linux/seccomp_cache.hpp"
#include "linux/idmap.hpp"
#include "linux/idmap_tools.hpp"
#include "linux/personality.hpp"
#include "linux/terminal.hpp"
#include "oci/validate.hpp"
#include "runtime/container_cgroup.hpp"
#include "runtime/hooks.hpp"
#include "runtime/launch.hpp"

namespace forker::runtime {
namespace {

Result<std::string> absolute_bundle(const std::string& bundle) {
  char buf[PATH_MAX];
  if (!realpath(bundle.c_str(), buf)) return sys_error("bundle", bundle);
  return std::string(buf);
}

// Turns the spec into the init's plan; nothing on the host changes here.
Status plan_init(const oci::Spec& spec, const CreateOptions& o, const std::string& bundle,
                 InitPlan& plan, int& clone_flags) {
  plan.container_id = o.id;
  plan.process = *spec.process;
  plan.preserve_fds = o.preserve_fds;
  plan.new_keyring = !o.no_new_keyring;
  clone_flags = 0;
  for (const auto& ns : spec.linux.namespaces) {
    int flag = oci::namespace_clone_flag(ns.type);
    if (!ns.path.empty()) {
      UniqueFd fd(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) return sys_error("open namespace", ns.path);
      JoinNamespace j{std::move(fd), flag, ns.path};
      // The user namespace is joined first so the others are joined with its privileges.
      if (flag == CLONE_NEWUSER) plan.join_namespaces.insert(plan.join_namespaces.begin(), std::move(j));
      else plan.join_namespaces.push_back(std::move(j));
      continue;
    }
    if (flag == CLONE_NEWNET) plan.loopback_up = true;
    if (flag == CLONE_NEWPID || flag == CLONE_NEWUSER) clone_flags |= flag;
    else if (flag == CLONE_NEWCGROUP) plan.new_cgroupns = true;
    else if (flag == CLONE_NEWTIME) plan.new_timens = true;
    else plan.unshare_flags |= flag;
  }
  // Nothing to join first: the clone makes every new namespace, as crun does. The kernel
  // objects of a namespace (a network namespace is ~100 KiB) are then charged to the runtime's
  // cgroup, not to the container's, whose limit stays the container's own.
  if (plan.join_namespaces.empty()) {
    clone_flags |= plan.unshare_flags;
    plan.unshare_flags = 0;
  }
  // A pid namespace joined by path must be entered by the parent: setns(CLONE_NEWPID) only
  // applies to children. Move it out of the child's list.
  for (auto it = plan.join_namespaces.begin(); it != plan.join_namespaces.end(); ++it) {
    if (it->type == CLONE_NEWPID) {
      if (setns(it->fd.get(), CLONE_NEWPID) < 0) return sys_error("setns", it->path);
      plan.join_namespaces.erase(it);
      break;
    }
  }
  if (!spec.has_namespace("mount") && spec.root.readonly)
    return make_error("root.readonly: needs a mount namespace (it would remount the host's root)");
  plan.time_offsets = spec.linux.time_offsets;
  plan.set_hostname = !spec.hostname.empty();
  plan.hostname = spec.hostname;
  plan.set_domainname = !spec.domainname.empty();
  plan.domainname = spec.domainname;
  plan.sysctl = spec.linux.sysctl;
  plan.rootfs = FORKER_TRY(linux::plan_rootfs(spec, bundle, o.no_pivot));
  // runtime-spec: no mount namespace means the runtime's own; the container's mounts then land
  // in the host's mount table under the rootfs, and delete takes them down.
  plan.rootfs->host_mount_ns = !spec.has_namespace("mount");
  plan.rootfs->root_mount_fd = o.rootfs_mount_fd;
  if (o.rootfs_mount_fd < 0) plan.rootfs->root_overlay = o.rootfs_overlay;
  // Checked here too, before anything is made on the host (prepare_rootfs refuses it as well).
  if ((o.rootfs_mount_fd >= 0 || o.rootfs_overlay) && plan.rootfs->host_mount_ns)
    return make_error("root.path " + plan.rootfs->rootfs +
                      ": a detached root mount needs a mount namespace");
  for (auto& m : plan.rootfs->mounts) {
    if (!m.options.idmap) continue;
    UniqueFd ns = FORKER_TRY(linux::make_userns_fd(m.uid_mappings, m.gid_mappings)
                                 .context("mount " + m.destination));
    m.userns_fd = ns.get();
    plan.idmap_userns.push_back(std::move(ns));
  }
  if (spec.process->capabilities)
    plan.capabilities = FORKER_TRY(linux::plan_capabilities(*spec.process->capabilities));
  if (plan.capabilities)
    for (const auto& w : plan.capabilities->warnings) log::warn(w);
  plan.rlimits = FORKER_TRY(linux::plan_rlimits(spec.process->rlimits));
  if (spec.linux.seccomp) {
    plan.seccomp = FORKER_TRY(
        linux::compile_seccomp_cached(*spec.linux.seccomp, linux::default_seccomp_cache_dir()));
    if (plan.seccomp->needs_listener && spec.linux.seccomp->listener_path.empty())
      return make_error("linux.seccomp: SCMP_ACT_NOTIFY needs listenerPath");
  }
  if (spec.linux.personality)
    plan.personality = FORKER_TRY(linux::plan_personality(*spec.linux.personality));
  plan.parent_runs_hooks = !spec.hooks.prestart.empty() || !spec.hooks.create_runtime.empty();
  plan.create_container_hooks = spec.hooks.create_container;
  plan.start_container_hooks = spec.hooks.start_container;
  if (!spec.process->apparmor_profile.empty() && access("/sys/kernel/security/apparmor", F_OK) != 0)
    log::warn("process.apparmorProfile ignored: AppArmor is not enabled on this host");
  else if (!spec.process->apparmor_profile.empty())
    return make_error("process.apparmorProfile: AppArmor profiles are not supported yet");
  if (!spec.process->selinux_label.empty() || !spec.linux.mount_label.empty()) {
    if (access("/sys/fs/selinux/enforce", F_OK) == 0)
      return make_error("process.selinuxLabel: SELinux labels are not supported yet");
    log::warn("SELinux labels ignored: SELinux is not enabled on this host");
  }
  return ok();
}

void fill_cgroup_mounts(const linux::Cgroup& cg, linux::RootfsPlan& rootfs) {
  const auto& host = cg.host();
  auto dirs = cg.dirs();
  size_t i = 0;
  for (const auto& m : host.v1) {
    linux::CgroupMountEntry e;
    std::string name = m.dir.substr(m.dir.rfind('/') + 1);
    e.name = name;
    e.fstype = "cgroup";
    e.options = join(m.controllers, ",");
    e.host_path = i < dirs.size() ? dirs[i] : m.dir;
    ++i;
    rootfs.cgroup_entries.push_back(std::move(e));
  }
  if (!host.unified.empty()) {
    linux::CgroupMountEntry e;
    e.name = host.layout == linux::CgroupLayout::kV2 ? "" : "unified";
    e.fstype = "cgroup2";
    e.host_path = dirs.empty() ? host.unified : dirs.back();
    rootfs.cgroup_entries.push_back(std::move(e));
  }
}

// After the config's own rules, the devices every container needs and those it lists are
// allowed, as runc does; otherwise a "deny all" rule would take /dev/null away.
void append_default_device_rules(const oci::Spec& spec, oci::Resources& res) {
  auto allow = [&](const char* type, std::optional<int64_t> major, std::optional<int64_t> minor,
                   const char* access) {
    res.devices.push_back(oci::DeviceRule{true, type, major, minor, access});
  };
  allow("c", std::nullopt, std::nullopt, "m");
  allow("b", std::nullopt, std::nullopt, "m");
  for (const auto& d : linux::default_devices()) allow("c", d.major, d.minor, "rwm");
  allow("c", 136, std::nullopt, "rwm");  // /dev/pts/*
  allow("c", 5, 2, "rwm");               // /dev/ptmx
  for (const auto& d : spec.linux.devices)
    if (d.type == "c" || d.type == "b") allow(d.type == "c" ? "c" : "b", d.major, d.minor, "rwm");
}

}  // namespace

ChildGuard::~ChildGuard() {
  if (s_.pid <= 0) return;
  kill(s_.pid, SIGKILL);
  int status;
  while (waitpid(s_.pid, &status, 0) < 0 && errno == EINTR) {
  }
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

Result<int> ChildGuard::wait() {
  int status = 0;
  for (;;) {
    if (waitpid(s_.pid, &status, 0) >= 0) break;
    if (errno != EINTR) return sys_error("waitpid", std::to_string(s_.pid));
  }
  s_.pid = -1;
  return exit_code_of(status);
}

Result<linux::CgroupHost> cgroup_host() { return linux::detect_cgroup_host(); }

Result<linux::CgroupHost> cgroup_host(const oci::ContainerState& st) {
  auto host = FORKER_TRY(linux::detect_cgroup_host());
  linux::apply_cgroup_bases(host, st.cgroup_bases);
  return host;
}

Status forward_seccomp_listener(const SyncChannel& ch, const oci::Spec& spec,
                                const oci::ContainerState& st, pid_t pid, oci::ContainerStatus status) {
  // runtime-spec: the listener goes to the agent at listenerPath with the process state.
  UniqueFd listener = FORKER_TRY(ch.expect_fd(SyncStep::kSeccompFd));
  std::string process_state = FORKER_TRY(linux::container_process_state_json(
      "1.1.0", pid, spec.linux.seccomp->listener_metadata,
      oci::state_json(st, status, false)));
  return linux::send_seccomp_listener(listener.get(), spec.linux.seccomp->listener_path,
                                      process_state)
      .context("seccomp listener " + spec.linux.seccomp->listener_path);
}

Result<UniqueFd> attach_console(InitPlan& plan, const std::string& console_socket) {
  if (!plan.process.terminal) return UniqueFd();
  if (!console_socket.empty()) {
    plan.console_socket = FORKER_TRY(linux::connect_console_socket(console_socket));
    return UniqueFd();
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return sys_error("socketpair", "console");
  plan.console_socket = UniqueFd(sv[1]);
  return UniqueFd(sv[0]);
}

Status write_pid_file(const std::string& path, pid_t pid) {
  if (path.empty()) return ok();
  return write_file_atomic(path, std::to_string(pid), 0644).context("pid file");
}

Result<Created> create_impl(const GlobalOptions& g, const CreateOptions& o, bool foreground) {
  log::StepTimer timer;
  trace::Scope create_step("create");
  trace::Scope plan_step("plan: config.json, validate, plan the init");
  FORKER_TRY(oci::validate_container_id(o.id));
  if (g.systemd_cgroup)
    return make_error("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system)");
  std::string bundle = FORKER_TRY(absolute_bundle(o.bundle));
  std::string config_text = FORKER_TRY(read_file(bundle + "/config.json"));
  oci::Spec spec = FORKER_TRY(oci::parse_spec(config_text));
  FORKER_TRY(oci::validate_spec(spec));
  if (spec.process->terminal && o.console_socket.empty() && !foreground)
    return make_error("process.terminal is set but no --console-socket was given");
  InitPlan plan;
  int clone_flags = 0;
  FORKER_TRY(plan_init(spec, o, bundle, plan, clone_flags));
  timer.lap("plan");
  plan_step.end();

  trace::Scope state_step([&] { return "state dir " + g.root + "/" + o.id + " and exec.fifo"; });
  auto dir = FORKER_TRY(oci::StateDir::create(g.root, o.id));
  UndoStack undo;
  undo.push("remove state directory", [&dir] { auto _ = dir.remove(); });
  if (plan.rootfs->host_mount_ns)
    undo.push("unmount container mounts", [&plan] { linux::unmount_under(plan.rootfs->rootfs); });

  std::string fifo = dir.path() + "/exec.fifo";
  if (mkfifo(fifo.c_str(), 0622) < 0) return sys_error("mkfifo", fifo);
  // Not the umask's 0600: a process.user other than root must be able to open it for writing.
  if (chmod(fifo.c_str(), 0622) < 0) return sys_error("chmod", fifo);
  plan.exec_fifo = UniqueFd(open(fifo.c_str(), O_PATH | O_CLOEXEC));
  if (!plan.exec_fifo) return sys_error("open", fifo);
  state_step.end();

  trace::Scope cgroup_step("cgroup");
  auto host = FORKER_TRY(cgroup_host());
  std::string cg_path = FORKER_TRY(linux::resolve_cgroup_path(spec.linux.cgroups_path, o.id));
  if (linux::is_relative_cgroups_path(spec.linux.cgroups_path)) {
    std::string own = FORKER_TRY(read_file("/proc/self/cgroup"));
    FORKER_TRY(linux::place_under_own_cgroups(host, own));
  }
  std::optional<oci::Resources> resources = spec.linux.resources;
  if (resources && !resources->devices.empty()) append_default_device_rules(spec, *resources);
  const oci::Resources* res = resources ? &*resources : nullptr;
  // Rootless without a delegated cgroup: none at all (one warning names the limits lost).
  std::optional<linux::Cgroup> cgroup =
      FORKER_TRY(make_container_cgroup(host, cg_path, res, spec));
  if (cgroup) fill_cgroup_mounts(*cgroup, *plan.rootfs);
  const int cgroup_fd = cgroup ? cgroup->unified_dir_fd() : -1;
  timer.lap("cgroup");
  cgroup_step.end();

  UniqueFd console_local = FORKER_TRY(attach_console(plan, o.console_socket));

  auto [parent_end, child_end] = FORKER_TRY(SyncChannel::make_pair());
  Spawned spawned =
      FORKER_TRY(spawn_init(plan, clone_flags, child_end, parent_end, cgroup_fd));
  ChildGuard child(std::move(spawned));
  plan.console_socket.reset();
  plan.exec_fifo.reset();
  timer.lap("clone");
  UniqueFd netns_fd, userns_fd;
  if (o.keep_namespace_fds && (clone_flags & CLONE_NEWNET)) {
    const std::string ns = "/proc/" + std::to_string(child.pid()) + "/ns/";
    netns_fd = UniqueFd(open((ns + "net").c_str(), O_RDONLY | O_CLOEXEC));
    if (clone_flags & CLONE_NEWUSER)
      userns_fd = UniqueFd(open((ns + "user").c_str(), O_RDONLY | O_CLOEXEC));
  }

  if (clone_flags & CLONE_NEWUSER) {
    // Directly, or through newuidmap/newgidmap when rootless (linux/idmap_tools.hpp).
    trace::Scope step(
        [&] { return "write /proc/" + std::to_string(child.pid()) + "/{uid,gid}_map"; });
    FORKER_TRY(step.status(
        linux::write_id_maps(child.pid(), spec.linux.uid_mappings, spec.linux.gid_mappings)));
  }
  if (cgroup && !child.in_cgroup())  // born inside it on a v2 host
    FORKER_TRY(cgroup->add_process(child.pid()).context("cgroup " + cg_path));
  if (spec.process->oom_score_adj) {
    std::string path = "/proc/" + std::to_string(child.pid()) + "/oom_score_adj";
    std::string value = std::to_string(*spec.process->oom_score_adj);
    trace::Scope step([&] { return "write " + path + " " + value; });
    FORKER_TRY(step.status(write_file(path, value)));
  }

  oci::ContainerState st;
  st.id = o.id;
  st.pid = child.pid();
  st.pid_start_time = oci::process_start_time(child.pid()).value_or(0);
  st.bundle = bundle;
  st.rootfs = plan.rootfs->rootfs;
  st.created = oci::rfc3339_now();
  st.owner = "";
  st.cgroups_path = cgroup ? cg_path : "";  // empty: no cgroup (rootless)
  if (cgroup) st.cgroup_dirs_created = cgroup->created_dirs();
  if (cgroup) st.cgroup_bases = linux::cgroup_bases(host);
  st.annotations = spec.annotations;
  st.config_json = config_text;
  // The validation suite and runc give hooks "created" from prestart on.
  std::string hook_state = oci::state_json(st, oci::ContainerStatus::Created, false);
  FORKER_TRY(parent_end.send(SyncStep::kGo, hook_state));
  trace::Scope wait_step("wait for the init to be ready");

  if (plan.parent_runs_hooks) {
    FORKER_TRY(parent_end.expect(SyncStep::kHooksRequest));
    FORKER_TRY(run_hooks("prestart", spec.hooks.prestart, hook_state));
    FORKER_TRY(run_hooks("createRuntime", spec.hooks.create_runtime, hook_state));
    FORKER_TRY(parent_end.send(SyncStep::kHooksDone));
  }
  if (plan.seccomp && plan.seccomp->needs_listener)
    FORKER_TRY(forward_seccomp_listener(parent_end, spec, st, st.pid, oci::ContainerStatus::Creating));
  FORKER_TRY(parent_end.expect(SyncStep::kReady));
  timer.lap("init ready");
  wait_step.end();

  UniqueFd pty_master;
  if (console_local) pty_master = FORKER_TRY(linux::recv_console_fd(console_local.get()));
  trace::Scope save_step("save state.json");
  FORKER_TRY(dir.save(st));
  FORKER_TRY(write_pid_file(o.pid_file, st.pid));
  save_step.end();
  timer.lap("state saved");
  if (cgroup) cgroup->commit();
  undo.commit();
  return Created{std::move(dir),   std::move(st),      std::move(spec),
                 std::move(child), std::move(pty_master), std::move(netns_fd),
                 std::move(userns_fd)};
}

Status create_container(const GlobalOptions& g, const CreateOptions& o) {
  auto created = FORKER_TRY(create_impl(g, o, false).context("create " + o.id));
  created.child.release();  // it waits on exec.fifo and outlives us
  return ok();
}

}  // namespace forker::runtime
