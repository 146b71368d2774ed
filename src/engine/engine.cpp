// `forker run`: from options to a running container. Preparation (name, snapshot, config.json,
// container.json) happens once; each start mounts the root afresh and hands the mount to the
// container's init, which attaches it inside its own mount namespace.
#include "engine/engine.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "core/file.hpp"
#include "core/log.hpp"
#include "core/trace.hpp"
#include "core/undo.hpp"
#include "engine/container_config.hpp"
#include "engine/engine_internal.hpp"
#include "image/builtin_busybox.hpp"
#include "image/overlay.hpp"
#include "image/layer_unpack.hpp"
#include "linux/cgroup_stats.hpp"
#include "linux/safe_path.hpp"
#include "linux/terminal.hpp"
#include "oci/state.hpp"

extern char** environ;

namespace forker::engine {

namespace detail {

namespace {

// The root of one start: the image layers (or a directory, the only lower) over its upper.
linux::OverlaySpec root_overlay(const StartPlan& p) {
  linux::OverlaySpec spec;
  // A directory with --read-only: a read-only bind of it (one lower, no upper).
  spec.lowers = p.read_only_bind ? std::vector<std::string>{p.lowers.front()} : p.lowers;
  if (!p.read_only_bind) {
    spec.upper = p.upper;
    spec.work = p.work;
  }
  spec.userxattr = p.rootless;
  return spec;
}

// Rootless, with no mount of the root to read /etc/passwd in: the top-most layer that has one
// (a whiteout there, a character device, means the image deleted it). /etc/group is read from
// the same layer. nullopt: none has it (numeric users only).
Result<std::optional<UniqueFd>> passwd_layer(const StartPlan& p) {
  std::vector<std::string> layers = p.lowers;
  if (!p.read_only_bind) layers.insert(layers.begin(), p.upper);
  for (const std::string& layer : layers) {
    UniqueFd dir(open(layer.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return sys_error("open layer", layer);
    auto passwd = linux::open_in_root(dir.get(), "/etc/passwd", O_PATH);
    if (!passwd) {
      if (passwd.error().err == ENOENT || passwd.error().err == ENOTDIR) continue;
      return std::move(passwd).error();
    }
    struct stat st {};
    if (fstat(passwd->get(), &st) < 0) return sys_error("fstat", layer + "/etc/passwd");
    if (S_ISCHR(st.st_mode)) break;
    return std::optional<UniqueFd>(std::move(dir));
  }
  return std::optional<UniqueFd>();
}

}  // namespace

Result<UniqueFd> mount_root(const StartPlan& p) {
  trace::Scope step([&] {
    if (p.read_only_bind) return "root mount fd: open_tree " + p.lowers.front() + " read-only";
    return "root mount fd: fsopen overlay, " + std::to_string(p.lowers.size()) +
           " lower layer(s), fsmount (detached)";
  });
  if (p.read_only_bind) return step.status(image::bind_mount_fd(p.lowers.front(), true));
  return step.status(image::overlay_mount_fd(root_overlay(p)));
}

bool oom_killed(const oci::ContainerState& st) {
  if (st.cgroups_path.empty()) return false;
  auto host = runtime::cgroup_host(st);
  if (!host) return false;
  auto cg = linux::Cgroup::open(*host, st.cgroups_path);
  return cg && linux::cgroup_oom_kills(*cg).value_or(0) > 0;
}

int exit_code_for(const Error& e) {
  std::string m = e.message();
  if (m.find("executable file not found") != std::string::npos) return kExitNotFound;
  if (m.find("exec \"") != std::string::npos) {
    if (e.err == ENOENT || m.find("No such file") != std::string::npos) return kExitNotFound;
    return kExitCannotInvoke;
  }
  return kExitEngineFailed;
}

Result<runtime::Created> start_container(const runtime::GlobalOptions& rt, StartPlan& p) {
  UniqueFd root = std::move(p.prepared_root);
  runtime::CreateOptions co;
  co.id = p.record.id;
  co.bundle = p.dir;
  if (p.rootless) {
    // The host's user namespace refuses us an overlay: the init makes it in its own.
    co.rootfs_overlay = root_overlay(p);
  } else {
    if (!root) root = FORKER_TRY(mount_root(p).context("mount root of " + p.record.name));
    co.rootfs_mount_fd = root.get();
  }
  co.keep_namespace_fds = p.network.mode == "bridge" || p.network.mode == "slirp4netns";
  auto created = FORKER_TRY(runtime::create_impl(rt, co, /*foreground=*/true));
  ContainerNetworking networking(p.store_root);
  if (auto a = networking.attach(p.record, p.network, p.hostname, p.dir, created.child.pid(),
                                 created.netns.get(), created.userns.get());
      !a) {
    networking.detach(p.record.id);
    auto _ = runtime::destroy_impl(created.dir, created.state);
    Error e = std::move(a).error();
    e.add_context("network of " + p.record.name);
    return e;
  }
  trace::Scope start_step("start (open exec.fifo: the init goes on to execve)");
  auto st = start_step.status(runtime::start_impl(created.dir.path(), created.state, created.spec));
  start_step.end();
  trace::stop_recording();  // --explain covers the start; what follows is not ours to list
  if (!st) {
    auto _ = runtime::destroy_impl(created.dir, created.state);
    networking.detach(p.record.id);
    return std::move(st).error();
  }
  return created;
}

}  // namespace detail

using namespace detail;

namespace {

std::string runtime_root() {
  if (geteuid() == 0) return "/run/forker";
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg && *xdg) return std::string(xdg) + "/forker";
  return "/tmp/forker-" + std::to_string(geteuid());
}

// `forker run ./rootfs`: a path, not an image name (docker names never start with '/' or '.').
bool names_directory(const std::string& image) {
  return image.starts_with("/") || image.starts_with("./") || image.starts_with("../") ||
         image == "." || image == "..";
}

constexpr const char* kInitPath = "/sbin/forker-init";

// forker-init, installed beside forker (static, so any root filesystem can run it).
Result<std::string> init_binary() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) return sys_error("readlink", "/proc/self/exe");
  std::string dir(self, static_cast<size_t>(n));
  dir.resize(dir.rfind('/'));
  std::string path = dir + "/forker-init";
  if (access(path.c_str(), X_OK) != 0) return sys_error("--init: find", path);
  return path;
}

// Whether memory cgroups can limit swap here, so that a swap value in config.json is not
// refused. v1: the memsw files of the memory hierarchy. v2: memory.swap.max exists in every
// non-root cgroup when the kernel accounts swap (the root has none): look at a child of the
// root that has memory files; with none to look at, the memory controller's presence decides
// (Debian's kernels account swap).
bool swap_accounting() {
  if (access("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", F_OK) == 0) return true;
  auto controllers = read_file("/sys/fs/cgroup/cgroup.controllers");
  if (!controllers || controllers->find("memory") == std::string::npos) return false;
  if (DIR* d = opendir("/sys/fs/cgroup")) {
    std::optional<bool> seen;
    while (dirent* e = readdir(d)) {
      if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
      std::string child = std::string("/sys/fs/cgroup/") + e->d_name;
      if (access((child + "/memory.max").c_str(), F_OK) != 0) continue;
      seen = access((child + "/memory.swap.max").c_str(), F_OK) == 0;
      break;
    }
    closedir(d);
    if (seen) return *seen;
  }
  return true;
}

std::vector<std::string> host_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  return env;
}

// Swaps /dev/null in as fd 0 for the lifetime of the object: the container's stdin when -i is
// not given (docker's rule), since the init inherits our fds at clone.
class NullStdin {
 public:
  NullStdin() {
    saved_ = UniqueFd(fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3));
    UniqueFd null(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (null) dup2(null.get(), STDIN_FILENO);
  }
  ~NullStdin() {
    if (saved_) dup2(saved_.get(), STDIN_FILENO);
  }

 private:
  UniqueFd saved_;
};

}  // namespace

const char* state_name(ContainerState s) {
  switch (s) {
    case ContainerState::kCreated: return "created";
    case ContainerState::kRunning: return "running";
    case ContainerState::kPaused: return "paused";
    case ContainerState::kExited: return "exited";
  }
  return "unknown";
}

Result<Engine> Engine::open(image::Store store) {
  runtime::GlobalOptions rt;
  rt.root = runtime_root();
  ContainerStore containers(store.root());
  return Engine(std::move(store), std::move(containers), std::move(rt));
}

std::variant<int, RunFailure> Engine::run(
    const RunOptions& o, const std::function<void(const std::string& id)>& on_started) {
  if (o.replicas < 1) return RunFailure{make_error("--replicas", "must be at least 1")};
  // The network first: a published port already taken fails before anything exists, and
  // random host ports are chosen once for every replica.
  auto network = networking().plan(o, containers_);
  if (!network) return RunFailure{std::move(network).error()};
  if (o.replicas == 1) return run_one(o, o.name, "", 0, *network, on_started);
  // Replicas: NAME-1..NAME-N, detached; on a failure the ones already started are removed.
  std::string group = o.name;
  if (group.empty()) group = generated_name(new_container_id());
  if (auto v = validate_name(group); !v) return RunFailure{std::move(v).error()};
  if (auto existing = containers_.group(group); existing && !existing->empty())
    return RunFailure{make_error("--replicas", "a group named '" + group + "' exists already")};
  RunOptions one = o;
  one.detach = true;
  one.replicas = 1;
  std::vector<std::string> started;
  for (int i = 1; i <= o.replicas; ++i) {
    auto r = run_one(one, group + "-" + std::to_string(i), group, i, *network,
                     [&](const std::string& id) { started.push_back(id); });
    if (auto* failure = std::get_if<RunFailure>(&r)) {
      for (const std::string& id : started) {
        auto rec = containers_.find(id);
        if (rec) (void)remove(rec->id, true);
      }
      failure->error.add_context("replica " + std::to_string(i) + " of " + group);
      return r;
    }
  }
  for (const std::string& id : started) on_started(id);
  return 0;
}

std::variant<int, RunFailure> Engine::run_one(
    const RunOptions& o, const std::string& wanted_name, const std::string& group, int replica,
    const NetworkRequest& network, const std::function<void(const std::string& id)>& on_started) {
  auto fail = [](Error e, int code = kExitEngineFailed) { return RunFailure{std::move(e), code}; };
  // --explain: the start's steps, printed to stderr when this returns.
  trace::Session explain(o.explain, STDERR_FILENO);
  if (o.detach && o.remove && o.restart != "no")
    return fail(make_error("--restart", "conflicts with --rm"));
  trace::Scope prepare_step("prepare");
  StartPlan plan;  // before UNDO: its steps use the record
  UndoStack undo;
  ContainerRecord& rec = plan.record;
  rec.id = new_container_id();
  rec.name = wanted_name.empty() ? generated_name(rec.id) : wanted_name;
  if (auto v = validate_name(rec.name); !v) return fail(std::move(v).error());

  // The root: an image's layers, or a plain directory used as the only lower layer.
  ImageDefaults defaults;
  image::Snapshot snap;
  rec.image = o.image;
  trace::Scope snapshot_step([&] { return "snapshot containers/" + rec.id; });
  if (names_directory(o.image)) {
    char real[PATH_MAX];
    if (!realpath(o.image.c_str(), real)) return fail(sys_error("root directory", o.image));
    rec.rootfs_dir = real;
    auto s = store_.create_directory_snapshot(rec.rootfs_dir, rec.id, !o.remove);
    if (!s) return fail(std::move(s).error());
    snap = std::move(*s);
    // Through an overlay even with --read-only: mount targets (/etc/hostname...) may have to
    // be made, in the upper layer; root.readonly then makes it read-only. The directory is
    // never written either way.
    plan.read_only_bind = false;
  } else {
    auto image = image::find_image_or_builtin(store_, o.image);
    if (!image) {
      auto e = std::move(image).error();
      e.add_context("run");
      return fail(std::move(e));
    }
    rec.image_id = image->id();
    auto config_text = store_.read_blob_unverified(image->config.digest);
    if (!config_text) return fail(std::move(config_text).error());
    auto d = parse_image_defaults(*config_text);
    if (!d) return fail(std::move(d).error().add_context("image " + o.image));
    defaults = std::move(*d);
    auto s = store_.create_snapshot(*image, rec.id, !o.remove);
    if (!s) return fail(std::move(s).error());
    snap = std::move(*s);
  }
  snapshot_step.end();
  undo.push("remove snapshot", [&] { (void)store_.remove_snapshot(rec.id); });
  // After the snapshot: a name pointing at a missing container directory counts as stale.
  if (auto r = containers_.reserve_name(rec.name, rec.id); !r) return fail(std::move(r).error());
  undo.push("release name", [&] { (void)containers_.release_name(rec.name); });
  plan.dir = snap.dir;
  plan.lowers = snap.lowers;
  plan.upper = snap.upper;
  plan.work = snap.work;
  plan.rootfs = snap.rootfs;
  plan.rootless = store_.rootless();

  // config.json, with a mount of the root to look users up in and make the workdir. Rootless
  // there is none (only the init can mount it): users come from the layer with /etc/passwd.
  UniqueFd root, users_root;
  if (plan.rootless) {
    auto layer = passwd_layer(plan);
    if (!layer) return fail(std::move(layer).error().add_context("users of " + rec.name));
    if (*layer) users_root = std::move(**layer);
  } else {
    auto mounted = mount_root(plan);
    if (!mounted) return fail(std::move(mounted).error().add_context("mount root of " + rec.name));
    root = std::move(*mounted);
  }
  trace::Scope config_step("config.json, hostname, hosts, resolv.conf, container record");
  ConfigContext ctx;
  ctx.id = rec.id;
  ctx.name = rec.name;
  ctx.rootfs = plan.rootfs;
  ctx.container_dir = plan.dir;
  ctx.cgroups_path = plan.rootless ? "" : "/forker/" + rec.id;
  ctx.volumes_dir = store_.root() + "/volumes";
  ctx.rootfs_fd = plan.rootless ? users_root.get() : root.get();
  ctx.host_env = host_environment();
  if (auto resolv = read_file("/etc/resolv.conf")) ctx.host_resolv_conf = std::move(*resolv);
  ctx.rootless = plan.rootless;
  ctx.swap_accounting = swap_accounting();
  ctx.host_uid = geteuid();
  ctx.host_gid = getegid();
  ctx.network_mode = network.mode;
  auto netns = networking().netns_path(network, rt_.root);
  if (!netns) return fail(std::move(netns).error());
  ctx.netns_path = *netns;
  auto built = build_config(o, defaults, ctx);
  if (!built) return fail(std::move(built).error());
  if (o.init) {
    // docker's --init: a reaper bound in read-only from beside our own binary becomes PID 1.
    auto init = init_binary();
    if (!init) return fail(std::move(init).error());
    built->config["mounts"].push_back({{"destination", kInitPath},
                                       {"type", "bind"},
                                       {"source", *init},
                                       {"options", {"bind", "ro", "rprivate"}}});
    auto& args = built->config["process"]["args"];
    args.insert(args.begin(), kInitPath);
    built->args.insert(built->args.begin(), kInitPath);
  }
  std::string cwd = built->config["process"].value("cwd", "/");
  if (cwd != "/" && !o.read_only && !plan.rootless) {
    // docker makes a missing working directory; in the upper layer, never in an image layer.
    // Rootless there is no merged view to make it in (made straight in the upper dir it could
    // hide a symlink or an owner of a lower layer): a missing workdir fails at the init's chdir.
    auto made = linux::mkdir_all_in_root(root.get(), cwd, false);
    if (!made) return fail(std::move(made).error().add_context("workdir " + cwd));
  }
  plan.prepared_root = std::move(root);
  for (const std::string& volume : built->named_volumes) {
    if (auto m = mkdir_all(ctx.volumes_dir + "/" + volume + "/_data", 0755); !m)
      return fail(std::move(m).error().add_context("volume " + volume));
  }
  for (auto [file, text] : {std::pair{"hostname", &built->files.hostname},
                            std::pair{"hosts", &built->files.hosts},
                            std::pair{"resolv.conf", &built->files.resolv_conf}}) {
    if (auto w = write_file_replace(plan.dir + "/" + file, *text, 0644, false); !w)
      return fail(std::move(w).error());
  }
  if (auto w = write_file_replace(plan.dir + "/config.json", built->config.dump(), 0600, false); !w)
    return fail(std::move(w).error());

  rec.args = built->args;
  rec.created = oci::rfc3339_now();
  rec.group = group;
  rec.replica = replica;
  rec.auto_remove = o.remove;
  rec.detached = o.detach;
  rec.tty = o.tty;
  rec.stop_signal = built->stop_signal;
  rec.stop_timeout = o.stop_timeout.value_or(10);
  std::string policy = o.restart;
  if (auto colon = policy.find(':'); colon != std::string::npos) {
    rec.restart_max = std::atoi(policy.c_str() + colon + 1);
    policy.resize(colon);
  }
  if (policy != "no" && policy != "always" && policy != "on-failure" && policy != "unless-stopped")
    return fail(make_error("--restart '" + o.restart + "'",
                           "expected no, always, unless-stopped or on-failure[:N]"));
  rec.restart_policy = policy;
  rec.network = network.to_json();
  plan.network = network;
  plan.store_root = store_.root();
  plan.hostname = built->config.value("hostname", "");
  undo.push("release addresses", [&] { networking().release(rec); });
  rec.run_options = {{"image", o.image}, {"command", o.command}, {"env", o.env},
                     {"volumes", o.volumes}, {"memory", o.memory}, {"cpus", o.cpus},
                     {"restart", o.restart}, {"read_only", o.read_only},
                     {"anonymous_volumes", built->anonymous_volumes}};
  if (auto s = containers_.save(rec); !s) return fail(std::move(s).error());
  config_step.end();
  prepare_step.end();

  if (o.detach) {
    // The monitor is a grandchild: our child exits at once, so the monitor belongs to no one
    // here and survives this command and its terminal.
    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) < 0) return fail(sys_error("pipe2", "monitor status"));
    UniqueFd status_read(status_pipe[0]), status_write(status_pipe[1]);
    std::fflush(nullptr);
    pid_t child = fork();
    if (child < 0) return fail(sys_error("fork", "monitor"));
    if (child == 0) {
      status_read.reset();
      setsid();
      pid_t monitor = fork();
      if (monitor != 0) _exit(monitor < 0 ? 1 : 0);
      run_monitor(*this, std::move(plan), status_write.release());
    }
    status_write.reset();
    int ws = 0;
    while (waitpid(child, &ws, 0) < 0 && errno == EINTR) {
    }
    std::string report;
    char buf[4096];
    for (;;) {
      ssize_t n = read(status_read.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      report.append(buf, static_cast<size_t>(n));
    }
    if (report.starts_with("ok")) {
      undo.commit();
      on_started(rec.id);
      return 0;
    }
    // The monitor removed the container's runtime state; the record and snapshot are ours.
    set_marker(plan.dir, kRemoving);
    if (report.empty()) return fail(make_error("monitor of " + rec.name, "exited before the start"));
    int code = std::atoi(report.c_str());
    std::string message = report.substr(report.find(' ') + 1);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    Error e = make_error(message);
    return fail(std::move(e), code ? code : kExitEngineFailed);
  }

  // Foreground: we are the container's waiter.
  (void)write_monitor_pid(plan.dir);
  std::optional<NullStdin> null_stdin;
  if (!o.interactive) null_stdin.emplace();
  auto created = start_container(rt_, plan);
  null_stdin.reset();
  if (!created) {
    Error e = std::move(created).error();
    int code = exit_code_for(e);
    e.add_context("run " + rec.name);
    return fail(std::move(e), code);
  }
  ExitRecord exit;
  exit.started = created->state.created;
  int code = 0;
  if (created->pty_master) {
    // Without -i our stdin is not the container's (docker's rule): no input, no raw mode, so
    // Ctrl-C is our SIGINT, which the proxy forwards; the size follows our output's terminal.
    linux::TerminalProxyOptions io{o.interactive ? STDIN_FILENO : -1, STDOUT_FILENO};
    auto ps = linux::proxy_terminal(created->pty_master.get(), created->child.pid(), io);
    auto w = created->child.wait();
    if (!ps) log::warn(ps.error().message());
    code = w ? *w : kExitEngineFailed;
  } else {
    auto w = runtime::wait_forwarding_signals(created->child);
    code = w ? *w : kExitEngineFailed;
  }
  exit.exit_code = code;
  exit.finished = oci::rfc3339_now();
  exit.oom_killed = oom_killed(created->state);
  exit.stopped_by_user = marker_present(plan.dir, kStopRequested);
  exit.ignored_sigterm = marker_present(plan.dir, kIgnoredSigterm);
  if (auto d = runtime::destroy_impl(created->dir, created->state); !d)
    log::warn(d.error().message());
  networking().detach(rec.id);
  undo.commit();
  if (o.remove) {
    if (auto r = remove_record(rec); !r) log::warn(r.error().message());
  } else {
    (void)containers_.save_exit(rec.id, exit);
    (void)unlink((plan.dir + "/" + kMonitorPid).c_str());
  }
  return code;
}

Status Engine::remove_record(const ContainerRecord& r) {
  networking().detach(r.id);  // normally gone with its exit
  networking().release(r);
  FORKER_TRY(store_.remove_snapshot(r.id));
  // Volumes made up for this container (-v /path, the image's VOLUME) go with it, as with
  // docker's --rm; named ones stay.
  if (r.run_options.is_object() && r.run_options.contains("anonymous_volumes"))
    for (const auto& v : r.run_options["anonymous_volumes"])
      if (v.is_string()) (void)image::remove_tree(store_.root() + "/volumes/" + v.get<std::string>());
  return containers_.release_name(r.name);
}

}  // namespace forker::engine
