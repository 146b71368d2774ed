// The operations on existing containers: state, stop, kill, rm, wait, exec, inspect, logs.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/file.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "engine/container_config.hpp"
#include "engine/engine_internal.hpp"
#include "oci/state.hpp"

namespace forker::engine {

namespace detail {

bool marker_present(const std::string& dir, const char* name) {
  return access((dir + "/" + name).c_str(), F_OK) == 0;
}
void set_marker(const std::string& dir, const char* name) {
  UniqueFd fd(open((dir + "/" + name).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
}
void clear_marker(const std::string& dir, const char* name) {
  (void)unlink((dir + "/" + name).c_str());
}

Status write_monitor_pid(const std::string& dir) {
  pid_t pid = getpid();
  uint64_t start = oci::process_start_time(pid).value_or(0);
  return write_file_replace(dir + "/" + kMonitorPid,
                            std::to_string(pid) + " " + std::to_string(start) + "\n", 0644, false);
}

namespace {
// The monitor's pid, when the process that wrote monitor.pid is still the one alive.
std::optional<pid_t> live_monitor(const std::string& dir) {
  auto text = read_file(dir + "/" + kMonitorPid);
  if (!text) return std::nullopt;
  auto parts = split(trim(*text), ' ');
  if (parts.size() != 2) return std::nullopt;
  auto pid = parse_int(parts[0]);
  auto start = parse_uint(parts[1]);
  if (!pid || !start || *pid <= 0) return std::nullopt;
  auto now = oci::process_start_time(static_cast<pid_t>(*pid));
  if (!now || *now != *start) return std::nullopt;
  // A zombie is gone for our purposes.
  auto stat = read_file("/proc/" + std::to_string(*pid) + "/stat");
  if (stat) {
    auto close_paren = stat->rfind(')');
    if (close_paren != std::string::npos && close_paren + 2 < stat->size() &&
        (*stat)[close_paren + 2] == 'Z')
      return std::nullopt;
  }
  return static_cast<pid_t>(*pid);
}
}  // namespace

bool monitor_alive(const std::string& dir) { return live_monitor(dir).has_value(); }

bool wait_monitor_gone(const std::string& dir, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (monitor_alive(dir)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace detail

using namespace detail;

namespace {

// A pidfd for the container's process when it is the one the state names (pid reuse checked).
UniqueFd open_pidfd(pid_t pid) {
  return UniqueFd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
}

// Waits until PIDFD is readable (the process exited) or TIMEOUT_MS passed; true when exited.
bool wait_pidfd(int pidfd, int timeout_ms) {
  if (pidfd < 0) return true;
  pollfd p{pidfd, POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left < 0) left = 0;
    int n = poll(&p, 1, timeout_ms < 0 ? -1 : left);
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return true;
  }
}

bool active(ContainerState s) {
  return s == ContainerState::kRunning || s == ContainerState::kPaused;
}

}  // namespace

Result<std::vector<ContainerRecord>> Engine::resolve(const std::string& name) const {
  auto one = containers_.find(name);
  if (one) return std::vector<ContainerRecord>{std::move(*one)};
  auto members = FORKER_TRY(containers_.group(name));
  if (!members.empty()) return members;
  return std::move(one).error();
}

Result<ContainerView> Engine::view(const std::string& name) const {
  ContainerView v;
  v.record = FORKER_TRY(containers_.find(name));
  v.exit = containers_.load_exit(v.record.id);
  auto st = oci::read_state(rt_.root, v.record.id);
  if (!st) {
    v.state = v.exit ? ContainerState::kExited : ContainerState::kCreated;
    return v;
  }
  switch (oci::derive_status(rt_.root + "/" + v.record.id, *st)) {
    case oci::ContainerStatus::Running:
      v.state = ContainerState::kRunning;
      v.pid = st->pid;
      break;
    case oci::ContainerStatus::Paused:
      v.state = ContainerState::kPaused;
      v.pid = st->pid;
      break;
    case oci::ContainerStatus::Creating:
    case oci::ContainerStatus::Created:
      v.state = ContainerState::kCreated;
      break;
    case oci::ContainerStatus::Stopped:
      v.state = ContainerState::kExited;
      break;
  }
  return v;
}

Result<std::vector<ContainerView>> Engine::list(bool all) const {
  std::vector<ContainerView> out;
  for (const ContainerRecord& r : FORKER_TRY(containers_.list())) {
    auto v = view(r.id);
    if (!v) continue;  // removed meanwhile
    if (all || active(v->state)) out.push_back(std::move(*v));
  }
  return out;
}

Status Engine::stop(const std::string& name, std::optional<int> timeout) {
  struct Target {
    ContainerView view;
    std::string dir;
    UniqueFd pidfd;
  };
  std::vector<Target> targets;
  for (const ContainerRecord& r : FORKER_TRY(resolve(name))) {
    auto v = FORKER_TRY(view(r.id));
    std::string dir = containers_.dir(r.id);
    if (!active(v.state)) {
      // Between two runs of a restart policy: the monitor sees the marker and stops there.
      if (monitor_alive(dir)) {
        set_marker(dir, kStopRequested);
        targets.push_back({std::move(v), dir, UniqueFd()});
      }
      continue;
    }
    set_marker(dir, kStopRequested);
    if (v.state == ContainerState::kPaused)
      FORKER_TRY(runtime::resume_container(rt_, r.id).context("stop " + r.name));
    int sig = FORKER_TRY(runtime::parse_signal(r.stop_signal).context("stop " + r.name));
    UniqueFd pidfd = open_pidfd(v.pid);
    if (auto k = runtime::kill_container(rt_, r.id, sig, false); !k)
      log::debug(k.error().message());  // it may have exited meanwhile
    targets.push_back({std::move(v), dir, std::move(pidfd)});
  }
  for (Target& t : targets) {
    int seconds = timeout.value_or(t.view.record.stop_timeout);
    if (!wait_pidfd(t.pidfd.get(), seconds * 1000)) {
      // PID 1 ignored the stop signal (no handler: the kernel drops it for PID 1).
      set_marker(t.dir, kIgnoredSigterm);
      (void)runtime::kill_container(rt_, t.view.record.id, SIGKILL, true);
      wait_pidfd(t.pidfd.get(), 10000);
    }
  }
  for (Target& t : targets) {
    // Whoever waits for the container records its exit and removes its runtime state.
    // If it is gone and the runtime state is still there, nobody will clean up but us.
    if (wait_monitor_gone(t.dir, 10000)) {
      if (oci::read_state(rt_.root, t.view.record.id)) {
        (void)runtime::delete_container(rt_, t.view.record.id, true);
        networking().detach(t.view.record.id);
        if (!containers_.load_exit(t.view.record.id)) {
          ExitRecord e;
          e.exit_code = 128 + SIGKILL;
          e.finished = oci::rfc3339_now();
          e.stopped_by_user = true;
          (void)containers_.save_exit(t.view.record.id, e);
        }
      }
    }
  }
  return ok();
}

Status Engine::kill(const std::string& name, const std::string& signal) {
  int sig = FORKER_TRY(runtime::parse_signal(signal.empty() ? "SIGKILL" : signal));
  bool any = false;
  for (const ContainerRecord& r : FORKER_TRY(resolve(name))) {
    auto v = FORKER_TRY(view(r.id));
    if (!active(v.state)) continue;
    set_marker(containers_.dir(r.id), kStopRequested);
    FORKER_TRY(runtime::kill_container(rt_, r.id, sig, false).context("kill " + r.name));
    any = true;
  }
  if (!any) return make_error("kill " + name, "container is not running");
  return ok();
}

Status Engine::remove(const std::string& name, bool force) {
  for (const ContainerRecord& r : FORKER_TRY(resolve(name))) {
    auto v = FORKER_TRY(view(r.id));
    std::string dir = containers_.dir(r.id);
    if (active(v.state)) {
      if (!force)
        return make_error("cannot remove container \"" + r.name + "\"",
                          "container is running: stop the container before removing or use -f");
      set_marker(dir, kRemoving);
      UniqueFd pidfd = open_pidfd(v.pid);
      (void)runtime::kill_container(rt_, r.id, SIGKILL, true);
      wait_pidfd(pidfd.get(), 10000);
    }
    set_marker(dir, kRemoving);
    if (!wait_monitor_gone(dir, 10000))
      return make_error("rm " + r.name, "its monitor is still busy after 10 s; try again");
    if (oci::read_state(rt_.root, r.id)) (void)runtime::delete_container(rt_, r.id, true);
    FORKER_TRY(remove_record(r).context("rm " + r.name));
  }
  return ok();
}

Result<int> Engine::wait(const std::string& name) {
  std::optional<int> last;
  for (;;) {
    auto v = view(name);
    if (!v) {
      if (last) return *last;  // --rm: the record went with the exit
      return std::move(v).error();
    }
    if (v->exit && !v->exit->finished.empty()) last = v->exit->exit_code;
    std::string dir = containers_.dir(v->record.id);
    if (active(v->state)) {
      UniqueFd pidfd = open_pidfd(v->pid);
      wait_pidfd(pidfd.get(), 1000);
      continue;
    }
    bool recorded = v->exit && !v->exit->finished.empty();
    if (monitor_alive(dir) && !recorded) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    if (!v->exit) return make_error("wait " + name, "the container has not run");
    return v->exit->exit_code;
  }
}

namespace {

bool names_term(const std::vector<std::string>& env) {
  return std::any_of(env.begin(), env.end(),
                     [](const std::string& e) { return e == "TERM" || e.starts_with("TERM="); });
}

// process.env of the container's config.json; empty when it cannot be read.
std::vector<std::string> container_env(const std::string& dir) {
  auto text = read_file(dir + "/config.json");
  if (!text) return {};
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  std::vector<std::string> env;
  if (doc.is_discarded() || !doc.contains("process")) return env;
  for (const auto& e : doc["process"].value("env", nlohmann::json::array()))
    if (e.is_string()) env.push_back(e.get<std::string>());
  return env;
}

}  // namespace

std::variant<int, RunFailure> Engine::exec(const std::string& name, const ExecRequest& r) {
  auto v = view(name);
  if (!v) return RunFailure{std::move(v).error()};
  if (v->state != ContainerState::kRunning)
    return RunFailure{make_error("exec " + name, std::string("container is ") +
                                                     state_name(v->state) + ", not running")};
  runtime::ExecOptions eo;
  eo.id = v->record.id;
  eo.args = r.args;
  eo.tty = r.tty;
  eo.env = r.env;
  // docker's exec -t: TERM=xterm, unless the container's environment or -e names a TERM.
  if (r.tty && !names_term(r.env) && !names_term(container_env(containers_.dir(v->record.id))))
    eo.env.insert(eo.env.begin(), "TERM=xterm");
  eo.cwd = r.workdir;
  eo.detach = r.detach;
  if (!r.user.empty()) {
    // The container's own /etc/passwd, reached through its root as the host sees it.
    std::string root_path = "/proc/" + std::to_string(v->pid) + "/root";
    UniqueFd root(::open(root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return RunFailure{sys_error("open", root_path)};
    auto user = resolve_user(r.user, root.get());
    if (!user) return RunFailure{std::move(user).error().add_context("exec -u")};
    eo.user = std::to_string(user->uid) + ":" + std::to_string(user->gid);
    eo.additional_gids = user->additional_gids;
  }
  std::optional<UniqueFd> saved_stdin;
  if (!r.interactive) {
    saved_stdin.emplace(fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3));
    UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    dup2(null.get(), STDIN_FILENO);
  }
  auto code = runtime::exec_container(rt_, eo);
  if (saved_stdin && *saved_stdin) dup2(saved_stdin->get(), STDIN_FILENO);
  if (!code) {
    Error e = std::move(code).error();
    int exit_code = exit_code_for(e);
    return RunFailure{std::move(e), exit_code};
  }
  return *code;
}

Result<nlohmann::json> Engine::inspect(const std::string& name) const {
  ContainerView v = FORKER_TRY(view(name));
  const ContainerRecord& r = v.record;
  std::string dir = containers_.dir(r.id);
  nlohmann::json config = nlohmann::json::object();
  if (auto text = read_file(dir + "/config.json")) {
    auto doc = nlohmann::json::parse(*text, nullptr, false);
    if (!doc.is_discarded()) config = std::move(doc);
  }
  nlohmann::json process = config.value("process", nlohmann::json::object());
  nlohmann::json state = {
      {"Status", state_name(v.state)},
      {"Running", v.state == ContainerState::kRunning},
      {"Paused", v.state == ContainerState::kPaused},
      {"Pid", v.pid},
      {"ExitCode", v.exit ? v.exit->exit_code : 0},
      {"Error", v.exit ? v.exit->error : ""},
      {"StartedAt", v.exit ? v.exit->started : ""},
      {"FinishedAt", v.exit ? v.exit->finished : ""},
      {"OOMKilled", v.exit ? v.exit->oom_killed : false},
      {"IgnoredStopSignal", v.exit ? v.exit->ignored_sigterm : false},
  };
  nlohmann::json j = {
      {"Id", r.id},
      {"Created", r.created},
      {"Path", r.args.empty() ? "" : r.args.front()},
      {"Args", r.args.empty() ? std::vector<std::string>{}
                              : std::vector<std::string>(r.args.begin() + 1, r.args.end())},
      {"State", state},
      {"Image", r.image_id.empty() ? r.rootfs_dir : "sha256:" + r.image_id},
      {"Name", "/" + r.name},
      {"RestartCount", v.exit ? v.exit->restart_count : 0},
      {"LogPath", dir + "/" + kLogFile},
      {"HostnamePath", dir + "/hostname"},
      {"HostsPath", dir + "/hosts"},
      {"ResolvConfPath", dir + "/resolv.conf"},
      {"Config",
       {{"Hostname", config.value("hostname", "")},
        {"Image", r.image},
        {"Env", process.value("env", nlohmann::json::array())},
        {"Cmd", r.args},
        {"WorkingDir", process.value("cwd", "/")},
        {"Tty", r.tty},
        {"StopSignal", r.stop_signal},
        {"StopTimeout", r.stop_timeout}}},
      {"HostConfig",
       {{"AutoRemove", r.auto_remove},
        {"RestartPolicy", {{"Name", r.restart_policy}, {"MaximumRetryCount", r.restart_max}}},
        {"ReadonlyRootfs", config.value("root", nlohmann::json::object()).value("readonly", false)}}},
      {"Group", r.group},
      {"Replica", r.replica},
      {"RunOptions", r.run_options},
  };
  if (config.contains("linux") && config["linux"].contains("resources"))
    j["HostConfig"]["Resources"] = config["linux"]["resources"];
  j["HostConfig"]["NetworkMode"] = network_mode_text(r);
  j["NetworkSettings"] = network_settings(r, active(v.state));
  return j;
}

Status Engine::network_connect(const std::string& network, const std::string& name) {
  ContainerView v = FORKER_TRY(view(name));
  ContainerRecord r = v.record;
  const std::string what = "network connect " + network + " " + r.name;
  NetworkRequest req = FORKER_TRY(NetworkRequest::from_json(r.network).context(what));
  if (req.mode != "bridge")
    return make_error(what, "a container on --network " + network_mode_text(r) +
                                " cannot join other networks");
  auto net = FORKER_TRY(networking().get_network(network).context(what));
  if (std::find(req.networks.begin(), req.networks.end(), net.name) != req.networks.end())
    return make_error(what, "already connected");
  if (active(v.state)) FORKER_TRY(networking().connect(r, net.name, v.pid).context(what));
  req.networks.push_back(net.name);
  r.network = req.to_json();
  return containers_.save(r);
}

Status Engine::network_disconnect(const std::string& network, const std::string& name) {
  ContainerView v = FORKER_TRY(view(name));
  ContainerRecord r = v.record;
  const std::string what = "network disconnect " + network + " " + r.name;
  NetworkRequest req = FORKER_TRY(NetworkRequest::from_json(r.network).context(what));
  auto net = FORKER_TRY(networking().get_network(network).context(what));
  auto it = std::find(req.networks.begin(), req.networks.end(), net.name);
  if (req.mode != "bridge" || it == req.networks.end())
    return make_error(what, "not connected to it");
  FORKER_TRY(networking().disconnect(r, net.name).context(what));
  req.networks.erase(it);
  r.network = req.to_json();
  return containers_.save(r);
}

std::string Engine::network_mode_text(const ContainerRecord& r) const {
  auto req = NetworkRequest::from_json(r.network);
  if (!req) return "none";
  if (req->mode == "bridge") return req->networks.empty() ? "bridge" : req->networks.front();
  if (req->mode == "container") return "container:" + req->target;
  if (req->mode == "ns") return "ns:" + req->target;
  return req->mode;
}

nlohmann::json Engine::network_settings(const ContainerRecord& r, bool running) const {
  // docker's shape: addresses of the first network at the top, every network under Networks.
  nlohmann::json ports = nlohmann::json::object();
  nlohmann::json out = {{"IPAddress", ""}, {"Gateway", ""}, {"MacAddress", ""},
                        {"IPPrefixLen", 0}, {"GlobalIPv6Address", ""}, {"Networks", nlohmann::json::object()}};
  auto req = NetworkRequest::from_json(r.network);
  if (req)
    for (const auto& p : req->ports) {
      std::string key = std::to_string(p.container_port) + "/" + p.protocol;
      if (!ports.contains(key)) ports[key] = nlohmann::json::array();
      ports[key].push_back({{"HostIp", p.host_ip.empty() ? "0.0.0.0" : p.host_ip},
                            {"HostPort", std::to_string(p.host_port)}});
    }
  out["Ports"] = ports;
  if (!running) return out;
  auto ep = networking().endpoint(r.id);
  if (!ep) return out;
  for (const Attachment& a : ep->attachments) {
    nlohmann::json n = {{"IPAddress", a.address.str()},
                        {"IPPrefixLen", a.subnet.prefix},
                        {"Gateway", a.gateway.str()},
                        {"MacAddress", a.mac},
                        {"GlobalIPv6Address", a.address6 ? a.address6->str() : ""},
                        {"Interface", a.interface},
                        {"HostVeth", a.host_veth}};
    if (out["IPAddress"] == "")
      for (const char* k : {"IPAddress", "IPPrefixLen", "Gateway", "MacAddress", "GlobalIPv6Address"})
        out[k] = n[k];
    out["Networks"][a.network] = std::move(n);
  }
  return out;
}

std::string Engine::ports_text(const ContainerRecord& r) const {
  auto req = NetworkRequest::from_json(r.network);
  if (!req) return "";
  std::vector<std::string> parts;
  for (const auto& p : req->ports) parts.push_back(p.str());
  return join(parts, ", ");
}

Status Engine::logs(const std::string& name, const LogPrintOptions& o) const {
  std::vector<ContainerRecord> members = FORKER_TRY(resolve(name));
  auto print_one = [this](const ContainerRecord& r, const LogPrintOptions& opts) -> Status {
    std::string dir = containers_.dir(r.id);
    std::string path = dir + "/" + kLogFile;
    if (!r.detached && access(path.c_str(), F_OK) != 0)
      return make_error("logs " + r.name,
                        "it ran in the foreground, where its output went to the terminal; run "
                        "it with -d to keep a log");
    return print_log(path, opts, STDOUT_FILENO, STDERR_FILENO, [this, &r, &dir] {
      auto v = view(r.id);
      return (v && active(v->state)) || monitor_alive(dir);
    });
  };
  if (members.size() == 1 && members.front().group.empty()) return print_one(members.front(), o);
  // A replica group: every member, each line prefixed with its name (docker compose's way);
  // with -f, all of them at once.
  size_t width = 0;
  for (const auto& r : members) width = std::max(width, r.name.size());
  auto options_for = [&](const ContainerRecord& r) {
    LogPrintOptions one = o;
    one.prefix = r.name + std::string(width - r.name.size(), ' ') + " | " + o.prefix;
    return one;
  };
  if (!o.follow) {
    for (const auto& r : members) FORKER_TRY(print_one(r, options_for(r)));
    return ok();
  }
  std::vector<Status> results(members.size());
  std::vector<std::thread> followers;
  for (size_t i = 0; i < members.size(); ++i)
    followers.emplace_back([&, i] { results[i] = print_one(members[i], options_for(members[i])); });
  for (auto& t : followers) t.join();
  for (auto& r : results) FORKER_TRY(std::move(r));
  return ok();
}

Result<std::vector<pid_t>> Engine::top(const std::string& name) const {
  ContainerView v = FORKER_TRY(view(name));
  if (!active(v.state)) return make_error("top " + name, "container is not running");
  return runtime::container_pids(rt_, v.record.id);
}

Status Engine::pause(const std::string& name, bool pause) {
  for (const ContainerRecord& r : FORKER_TRY(resolve(name))) {
    if (pause)
      FORKER_TRY(runtime::pause_container(rt_, r.id));
    else
      FORKER_TRY(runtime::resume_container(rt_, r.id));
  }
  return ok();
}

}  // namespace forker::engine
