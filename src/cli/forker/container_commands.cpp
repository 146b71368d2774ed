// `forker run`, `ps`, `stop`, `kill`, `rm`, `wait`, `exec`, `inspect`, `logs`, `top`, `pause`,
// `unpause`: flags as docker names them; the work is the engine's (engine/engine.hpp).
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "cli/forker/cli.hpp"
#include "cli/forker/format.hpp"
#include "core/strings.hpp"
#include "engine/engine.hpp"
#include "engine/go_template.hpp"

namespace forker::cli {

Result<engine::Engine> open_engine(const Globals& g) {
  auto store = FORKER_TRY(open_store(g));
  return engine::Engine::open(std::move(store));
}

namespace {

using engine::ContainerState;
using engine::ContainerView;
using engine::Engine;
using json = nlohmann::json;

// One line, docker's exit code for `run`/`exec` failures.
int fail_with(const engine::RunFailure& f) {
  std::fprintf(stderr, "forker: %s\n", f.error.message().c_str());
  return f.exit_code;
}

struct RunArgs {
  engine::RunOptions o;
  std::string entrypoint;
  bool entrypoint_given = false;
  std::string memory_limit;
  std::string pids_limit;
};

int run_run(const Globals& g, RunArgs& a, CLI::App* c) {
  std::vector<std::string> rest = c->remaining();
  if (rest.empty()) {
    std::fprintf(stderr, "forker: run: an IMAGE or root directory is required (forker run --help)\n");
    return engine::kExitEngineFailed;
  }
  engine::RunOptions& o = a.o;
  o.image = rest.front();
  o.command.assign(rest.begin() + 1, rest.end());
  if (c->count("--entrypoint")) o.entrypoint = a.entrypoint;
  if (!a.memory_limit.empty()) o.memory = a.memory_limit;
  if (!a.pids_limit.empty()) {
    auto n = parse_int(a.pids_limit);
    if (!n) {
      std::fprintf(stderr, "forker: --pids-limit '%s': not a number\n", a.pids_limit.c_str());
      return engine::kExitEngineFailed;
    }
    o.pids_limit = *n;
  }
  if (o.replicas > 1) o.detach = true;
  auto eng = open_engine(g);
  if (!eng) {
    std::fprintf(stderr, "forker: %s\n", eng.error().message().c_str());
    return engine::kExitEngineFailed;
  }
  auto result = eng->run(o, [&](const std::string& id) { std::printf("%s\n", id.c_str()); });
  std::fflush(stdout);
  if (auto* f = std::get_if<engine::RunFailure>(&result)) return fail_with(*f);
  return std::get<int>(result);
}

// "Up 5 minutes", "Exited (0) 2 seconds ago", "Created".
std::string status_text(const ContainerView& v) {
  auto age = [](const std::string& rfc3339) -> std::optional<int64_t> {
    std::tm tm{};
    if (rfc3339.size() < 19 || !strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
      return std::nullopt;
    return static_cast<int64_t>(std::time(nullptr) - timegm(&tm));
  };
  switch (v.state) {
    case ContainerState::kRunning:
    case ContainerState::kPaused: {
      std::string s = "Up";
      if (v.exit && !v.exit->started.empty())
        if (auto a = age(v.exit->started)) s += " " + human_duration(*a);
      if (v.state == ContainerState::kPaused) s += " (Paused)";
      return s;
    }
    case ContainerState::kExited: {
      if (!v.exit) return "Exited";
      std::string s = "Exited (" + std::to_string(v.exit->exit_code) + ")";
      if (auto a = age(v.exit->finished)) s += " " + human_duration(*a) + " ago";
      if (v.exit->ignored_sigterm) s += " (ignored SIGTERM, killed)";
      return s;
    }
    case ContainerState::kCreated: return "Created";
  }
  return "";
}

std::string command_text(const std::vector<std::string>& args) {
  std::string s = "\"" + join(args, " ");
  if (s.size() > 21) s = s.substr(0, 19) + "…";
  return s + "\"";
}

struct PsArgs {
  bool all = false, quiet = false, no_trunc = false;
  std::string format = "table";
};

// ---- ps --format TEMPLATE: docker's fields and column names --------------------------------

const std::vector<engine::TemplateField> kPsFields = {
    {"ID", "CONTAINER ID"}, {"Names", "NAMES"},          {"Image", "IMAGE"},
    {"Command", "COMMAND"}, {"CreatedAt", "CREATED AT"}, {"RunningFor", "CREATED"},
    {"Status", "STATUS"},   {"State", "STATE"},          {"Ports", "PORTS"},
    {"Labels", "LABELS"},   {"Group", "GROUP"}};

// docker's CreatedAt: Go's time.String() in local time, "2024-05-01 12:34:56 +0200 CEST".
std::string local_time_text(const std::string& rfc3339) {
  auto t = parse_rfc3339(rfc3339);
  if (!t) return "";
  std::time_t tt = static_cast<std::time_t>(*t);
  std::tm tm{};
  ::localtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z %Z", &tm);
  return buf;
}

bool running(const ContainerView& v) {
  return v.state == ContainerState::kRunning || v.state == ContainerState::kPaused;
}

engine::TemplateRow ps_row(const ContainerView& v, bool no_trunc, const std::string& ports) {
  const auto& r = v.record;
  auto created = parse_rfc3339(r.created);
  return {{"ID", no_trunc ? r.id : r.id.substr(0, 12)},
          {"Names", r.name},
          {"Image", r.image},
          {"Command", no_trunc ? "\"" + join(r.args, " ") + "\"" : command_text(r.args)},
          {"CreatedAt", local_time_text(r.created)},
          {"RunningFor", created ? human_duration(std::time(nullptr) - *created) + " ago" : ""},
          {"Status", status_text(v)},
          {"State", engine::state_name(v.state)},
          {"Ports", ports},
          {"Labels", ""},  // no --label yet
          {"Group", r.group}};
}

int print_ps_template(const engine::Engine& eng, const std::vector<ContainerView>& views,
                      const PsArgs& a) {
  auto t = engine::GoTemplate::parse(a.format, kPsFields);
  if (!t) return fail(t.error());
  std::vector<engine::TemplateRow> rows;
  for (const auto& v : views)
    rows.push_back(ps_row(v, a.no_trunc, running(v) ? eng.ports_text(v.record) : ""));
  std::fputs(t->render(rows).c_str(), stdout);
  return 0;
}

int run_ps(const Globals& g, const PsArgs& a) {
  auto eng = open_engine(g);
  if (!eng) return fail(eng.error());
  auto views = eng->list(a.all);
  if (!views) return fail(views.error());
  if (a.quiet) {
    for (const auto& v : *views)
      std::printf("%s\n", a.no_trunc ? v.record.id.c_str() : v.record.id.substr(0, 12).c_str());
    return 0;
  }
  if (a.format != "table" && a.format != "json") return print_ps_template(*eng, *views, a);
  if (a.format == "json") {
    for (const auto& v : *views) {
      json j = {{"ID", v.record.id},         {"Names", v.record.name},
                {"Image", v.record.image},   {"Command", join(v.record.args, " ")},
                {"CreatedAt", v.record.created}, {"State", engine::state_name(v.state)},
                {"Status", status_text(v)},  {"Group", v.record.group},
                {"Pid", v.pid}, {"Ports", running(v) ? eng->ports_text(v.record) : ""}};
      std::printf("%s\n", j.dump().c_str());
    }
    return 0;
  }
  std::printf("%-12s  %-24s  %-22s  %-14s  %-28s  %-24s  %s\n", "CONTAINER ID", "IMAGE",
              "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES");
  for (const auto& v : *views) {
    std::string created = "";
    std::tm tm{};
    if (strptime(v.record.created.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
      created = human_duration(std::time(nullptr) - timegm(&tm)) + " ago";
    std::string names = v.record.name;
    if (!v.record.group.empty()) names += " (group " + v.record.group + ")";
    std::string ports = running(v) ? eng->ports_text(v.record) : "";
    std::printf("%-12s  %-24s  %-22s  %-14s  %-28s  %-24s  %s\n",
                v.record.id.substr(0, 12).c_str(), v.record.image.substr(0, 24).c_str(),
                command_text(v.record.args).c_str(), created.c_str(), status_text(v).c_str(),
                ports.c_str(), names.c_str());
  }
  return 0;
}

// Runs ACTION for each name; prints the name on success as docker does; status 1 if any failed.
int for_each_name(const std::vector<std::string>& names,
                  const std::function<Status(const std::string&)>& action, bool echo = true) {
  int status = 0;
  for (const auto& n : names) {
    if (auto r = action(n); !r)
      status = fail(r.error());
    else if (echo)
      std::printf("%s\n", n.c_str());
  }
  return status;
}

struct ExecArgs {
  engine::ExecRequest r;
  std::string user;
};

}  // namespace

void register_container_commands(CLI::App& app, Globals& g, Actions& actions) {
  // run
  auto ra = std::make_shared<RunArgs>();
  CLI::App* run = app.add_subcommand(
      "run", "Run a command in a new container: forker run [OPTIONS] IMAGE|ROOTFS_DIR [COMMAND...]");
  run->set_help_flag("--help", "print this help");  // -h is --hostname, as in docker
  engine::RunOptions& o = ra->o;
  run->add_flag("-d,--detach", o.detach, "run in the background and print the container id");
  run->add_flag("--rm", o.remove, "remove the container when it exits");
  run->add_flag("-i,--interactive", o.interactive, "keep stdin open");
  run->add_flag("-t,--tty", o.tty, "allocate a pseudo-terminal");
  run->add_option("--name", o.name, "container name");
  run->add_option("-e,--env", o.env, "KEY=VALUE or KEY (from this environment)")
      ->allow_extra_args(false);
  run->add_option("--env-file", o.env_files, "file of KEY=VALUE lines")->allow_extra_args(false);
  run->add_option("-w,--workdir", o.workdir, "working directory inside the container");
  run->add_option("-u,--user", o.user, "name|uid[:group|gid]");
  run->add_option("-h,--hostname", o.hostname, "container hostname");
  run->add_option("--entrypoint", ra->entrypoint, "overwrite the image's ENTRYPOINT");
  run->add_option("-m,--memory", o.memory, "memory limit (100m, 1g)");
  run->add_option("--memory-limit", ra->memory_limit, "alias of --memory");
  run->add_option("--memory-swap", o.memory_swap, "memory plus swap limit, -1 unlimited");
  run->add_option("--cpus", o.cpus, "number of CPUs (0.5)");
  run->add_option("--cpu-shares", o.cpu_shares, "relative CPU weight (1024 default)");
  run->add_option("--cpu-quota", o.cpu_quota, "CFS quota in microseconds");
  run->add_option("--cpu-period", o.cpu_period, "CFS period in microseconds");
  run->add_option("--pids-limit", ra->pids_limit, "largest number of processes");
  run->add_option("-v,--volume", o.volumes, "SRC:DST[:ro], NAME:DST or DST")
      ->allow_extra_args(false);
  run->add_option("--tmpfs", o.tmpfs, "DST[:OPTIONS]")->allow_extra_args(false);
  run->add_flag("--read-only", o.read_only, "read-only root filesystem");
  run->add_option("--cap-add", o.cap_add, "add a capability")->allow_extra_args(false);
  run->add_option("--cap-drop", o.cap_drop, "drop a capability")->allow_extra_args(false);
  run->add_flag("--privileged", o.privileged, "every capability, no seccomp, no masked paths");
  run->add_option("--security-opt", o.security_opts,
                  "seccomp=unconfined|PROFILE.json, no-new-privileges")
      ->allow_extra_args(false);
  run->add_option("--ulimit", o.ulimits, "NAME=SOFT[:HARD]")->allow_extra_args(false);
  run->add_flag("--init", o.init, "run a reaper as PID 1 that forwards signals");
  run->add_option("--restart", o.restart, "no, on-failure[:N], always, unless-stopped");
  run->add_option("--network,--net", o.network,
                  "bridge (default), none, host, container:NAME, ns:PATH, or a network's name");
  run->add_option("-p,--publish", o.publish,
                  "[IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp], ranges as 8000-8002:80-82")
      ->allow_extra_args(false);
  run->add_option("--stop-signal", o.stop_signal, "signal that stops the container");
  run->add_option("--stop-timeout", o.stop_timeout, "seconds before stop kills");
  run->add_option("--replicas", o.replicas, "run N copies NAME-1..NAME-N (detached)")
      ->check(CLI::PositiveNumber);
  run->add_flag("--explain", o.explain, "print every kernel step of the start, with timings");
  run->prefix_command();
  actions.add(run, [&g, ra, run] { return run_run(g, *ra, run); });

  // ps
  auto pa = std::make_shared<PsArgs>();
  CLI::App* ps = app.add_subcommand("ps", "List containers");
  ps->add_flag("-a,--all", pa->all, "show all containers (default: running)");
  ps->add_flag("-q,--quiet", pa->quiet, "only ids");
  ps->add_flag("--no-trunc", pa->no_trunc, "full ids");
  ps->add_option("--format", pa->format, "table, json, or a template: '{{.Names}}\\t{{.Status}}'");
  actions.add(ps, [&g, pa] { return run_ps(g, *pa); });

  // stop
  auto stop_names = std::make_shared<std::vector<std::string>>();
  auto stop_time = std::make_shared<std::optional<int>>();
  CLI::App* stop = app.add_subcommand("stop", "Stop containers (stop signal, then SIGKILL)");
  stop->add_option("-t,--time", *stop_time, "seconds to wait before SIGKILL (default 10)");
  stop->add_option("container", *stop_names, "names, ids or replica groups")->required();
  actions.add(stop, [&g, stop_names, stop_time] {
    auto eng = open_engine(g);
    if (!eng) return fail(eng.error());
    return for_each_name(*stop_names, [&](const std::string& n) { return eng->stop(n, *stop_time); });
  });

  // kill
  auto kill_names = std::make_shared<std::vector<std::string>>();
  auto kill_signal = std::make_shared<std::string>("SIGKILL");
  CLI::App* kill = app.add_subcommand("kill", "Send a signal to containers");
  kill->add_option("-s,--signal", *kill_signal, "signal (default SIGKILL)");
  kill->add_option("container", *kill_names, "names or ids")->required();
  actions.add(kill, [&g, kill_names, kill_signal] {
    auto eng = open_engine(g);
    if (!eng) return fail(eng.error());
    return for_each_name(*kill_names,
                         [&](const std::string& n) { return eng->kill(n, *kill_signal); });
  });

  // rm
  auto rm_names = std::make_shared<std::vector<std::string>>();
  auto rm_force = std::make_shared<bool>(false);
  CLI::App* rm = app.add_subcommand("rm", "Remove containers");
  rm->add_flag("-f,--force", *rm_force, "kill a running container first");
  rm->add_option("container", *rm_names, "names, ids or replica groups")->required();
  actions.add(rm, [&g, rm_names, rm_force] {
    auto eng = open_engine(g);
    if (!eng) return fail(eng.error());
    return for_each_name(*rm_names, [&](const std::string& n) { return eng->remove(n, *rm_force); });
  });

  // wait
  auto wait_names = std::make_shared<std::vector<std::string>>();
  CLI::App* wait = app.add_subcommand("wait", "Wait for containers to exit; print their exit codes");
  wait->add_option("container", *wait_names, "names or ids")->required();
  actions.add(wait, [&g, wait_names] {
    auto eng = open_engine(g);
    if (!eng) return fail(eng.error());
    int status = 0;
    for (const auto& n : *wait_names) {
      auto code = eng->wait(n);
      if (!code)
        status = fail(code.error());
      else
        std::printf("%d\n", *code);
    }
    return status;
  });

  // exec
  auto ea = std::make_shared<ExecArgs>();
  CLI::App* exec = app.add_subcommand("exec", "Run a command in a running container");
  exec->add_flag("-i,--interactive", ea->r.interactive, "keep stdin open");
  exec->add_flag("-t,--tty", ea->r.tty, "allocate a pseudo-terminal");
  exec->add_flag("-d,--detach", ea->r.detach, "run in the background");
  exec->add_option("-e,--env", ea->r.env, "KEY=VALUE")->allow_extra_args(false);
  exec->add_option("-u,--user", ea->r.user, "name|uid[:group|gid]");
  exec->add_option("-w,--workdir", ea->r.workdir, "working directory");
  exec->prefix_command();
  actions.add(exec, [&g, ea, exec] {
    std::vector<std::string> rest = exec->remaining();
    if (rest.size() < 2) {
      std::fprintf(stderr, "forker: exec: a CONTAINER and a COMMAND are required\n");
      return engine::kExitEngineFailed;
    }
    auto eng = open_engine(g);
    if (!eng) return fail(eng.error());
    ea->r.args.assign(rest.begin() + 1, rest.end());
    auto result = eng->exec(rest.front(), ea->r);
    if (auto* f = std::get_if<engine::RunFailure>(&result)) return fail_with(*f);
    return std::get<int>(result);
  });

  // inspect
  auto inspect_names = std::make_shared<std::vector<std::string>>();
  CLI::App* inspect = app.add_subcommand("inspect", "Show containers as JSON");
  inspect->add_option("container", *inspect_names, "names or ids")->required();
  actions.add(inspect, [&g, inspect_names] {
    auto eng = open_engine(g);
    if (!eng) return fail(eng.error());
    json all = json::array();
    int status = 0;
    for (const auto& n : *inspect_names) {
      auto j = eng->inspect(n);
      if (!j)
        status = fail(j.error());
      else
        all.push_back(std::move(*j));
    }
    std::printf("%s\n", all.dump(4).c_str());
    return status;
  });

  // logs
  auto la = std::make_shared<engine::LogPrintOptions>();
  auto log_name = std::make_shared<std::string>();
  auto log_tail = std::make_shared<std::string>("all");
  CLI::App* logs = app.add_subcommand("logs", "Show a container's output");
  logs->add_flag("-f,--follow", la->follow, "keep printing new output");
  logs->add_flag("-t,--timestamps", la->timestamps, "show timestamps");
  logs->add_option("-n,--tail", *log_tail, "number of lines from the end, or all");
  logs->add_option("container", *log_name, "name or id")->required();
  actions.add(logs, [&g, la, log_name, log_tail] {
    if (*log_tail != "all") {
      auto n = parse_uint(*log_tail);
      if (!n) {
        std::fprintf(stderr, "forker: --tail '%s': expected a number or all\n", log_tail->c_str());
        return 1;
      }
      la->tail = *n;
    }
    auto eng = open_engine(g);
    if (!eng) return fail(eng.error());
    auto r = eng->logs(*log_name, *la);
    return r ? 0 : fail(r.error());
  });

  // top
  auto top_name = std::make_shared<std::string>();
  CLI::App* top = app.add_subcommand("top", "Show a container's processes");
  top->add_option("container", *top_name, "name or id")->required();
  actions.add(top, [&g, top_name] {
    auto eng = open_engine(g);
    if (!eng) return fail(eng.error());
    auto pids = eng->top(*top_name);
    if (!pids) return fail(pids.error());
    std::printf("%-8s  %s\n", "PID", "CMD");
    for (pid_t pid : *pids) {
      std::string cmd;
      FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/cmdline").c_str(), "r");
      if (f) {
        int ch;
        while ((ch = std::fgetc(f)) != EOF) cmd.push_back(ch ? static_cast<char>(ch) : ' ');
        std::fclose(f);
      }
      std::printf("%-8d  %s\n", pid, std::string(trim(cmd)).c_str());
    }
    return 0;
  });

  // pause / unpause
  for (bool pausing : {true, false}) {
    auto names = std::make_shared<std::vector<std::string>>();
    CLI::App* c = app.add_subcommand(pausing ? "pause" : "unpause",
                                     pausing ? "Freeze every process of containers"
                                             : "Thaw paused containers");
    c->add_option("container", *names, "names, ids or replica groups")->required();
    actions.add(c, [&g, names, pausing] {
      auto eng = open_engine(g);
      if (!eng) return fail(eng.error());
      return for_each_name(*names, [&](const std::string& n) { return eng->pause(n, pausing); });
    });
  }
}

}  // namespace forker::cli
