#include "cli/oci/commands.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/oci/cgroup_commands.hpp"
#include "core/file.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "oci/default_spec.hpp"
#include "oci/seccomp_profile.hpp"
#include "oci/state.hpp"

namespace forker::cli {

struct Commands {
  CLI::App *create, *start, *run, *state, *kill, *del, *list, *exec, *spec, *features, *ps;
  runtime::CreateOptions create_opts;
  bool detach = false;
  std::string id;
  std::string signal = "SIGTERM";
  bool all = false;
  bool force = false;
  std::string list_format = "table";
  std::string ps_format = "table";
  bool quiet = false;
  runtime::ExecOptions exec_opts;
  std::vector<std::string> exec_env, exec_caps, exec_gids;
  bool spec_rootless = false;
  bool spec_seccomp_default = false;
  std::string spec_bundle;
  std::string exec_process_label, exec_apparmor;  // accepted as runc does; no LSM support yet
  std::shared_ptr<CgroupCommands> cgroup;  // pause, resume, update, events
  std::vector<std::string> ps_args;        // ps ID -- ARGS
};

namespace {

void add_create_flags(CLI::App* c, runtime::CreateOptions& o) {
  c->add_option("-b,--bundle", o.bundle, "path to the bundle directory");
  c->add_option("--pid-file", o.pid_file, "file to write the init's pid to");
  c->add_option("--console-socket", o.console_socket, "unix socket to send the pty master to");
  c->add_flag("--no-pivot", o.no_pivot, "do not use pivot_root (for ramfs roots)");
  c->add_flag("--no-new-keyring", o.no_new_keyring, "keep the caller's session keyring");
  c->add_option("--preserve-fds", o.preserve_fds, "pass N extra fds (3..3+N-1)");
  c->add_option("id", o.id, "container id")->required();
}

int fail(const Error& e) {
  std::string msg = e.message();
  log::error(msg);
  return 1;
}

int print_list(Globals& g, Commands& c) {
  auto entries = runtime::list_containers(g.options);
  if (!entries) return fail(entries.error());
  if (c.quiet) {
    for (const auto& e : *entries) std::printf("%s\n", e.state.id.c_str());
    return 0;
  }
  if (c.list_format == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& e : *entries) {
      bool alive = e.status != oci::ContainerStatus::Stopped;
      arr.push_back({{"ociVersion", "1.1.0"},
                     {"id", e.state.id},
                     {"pid", alive ? e.state.pid : 0},
                     {"status", oci::status_name(e.status)},
                     {"bundle", e.state.bundle},
                     {"rootfs", e.state.rootfs},
                     {"created", e.state.created},
                     {"owner", e.state.owner},
                     {"annotations", e.state.annotations}});
    }
    std::printf("%s\n", arr.dump().c_str());
    return 0;
  }
  std::printf("%-12s %-8s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
              "OWNER");
  for (const auto& e : *entries) {
    bool alive = e.status != oci::ContainerStatus::Stopped;
    std::printf("%-12s %-8d %-10s %-40s %-30s %s\n", e.state.id.c_str(), alive ? e.state.pid : 0,
                oci::status_name(e.status), e.state.bundle.c_str(), e.state.created.c_str(),
                e.state.owner.empty() ? "root" : e.state.owner.c_str());
  }
  return 0;
}

// runc ps: the container's pids as a JSON array, or the lines of ps(1) (default `ps -ef`)
// whose PID column holds one of them.
int print_ps(Globals& g, Commands& c) {
  auto pids = runtime::container_pids(g.options, c.id);
  if (!pids) return fail(pids.error());
  if (c.ps_format == "json") {
    std::printf("%s\n", nlohmann::json(*pids).dump().c_str());
    return 0;
  }
  std::string cmd = "ps";
  // ps ID -- ARGS: all in ps_args, in order. ps ID -o pid,comm: CLI11 parts the options
  // (remaining) from the words (ps_args); options first puts each before its value.
  std::vector<std::string> args;
  for (const auto& a : c.ps->remaining())
    if (a != "--") args.push_back(a);
  args.insert(args.end(), c.ps_args.begin(), c.ps_args.end());
  if (args.empty()) args = {"-ef"};
  for (const auto& a : args) {
    cmd += " '";
    for (char ch : a) cmd += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    cmd += "'";
  }
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return fail(sys_error("ps", cmd));
  std::string text;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  if (pclose(f) != 0) return fail(make_error("ps: " + cmd + " failed"));
  auto lines = split(text, '\n');
  if (lines.empty()) return 0;
  auto header = split(lines[0], ' ');
  std::erase(header, std::string());
  auto col = std::find(header.begin(), header.end(), "PID");
  if (col == header.end()) return fail(make_error("ps: no PID column in: " + lines[0]));
  size_t idx = static_cast<size_t>(col - header.begin());
  std::printf("%s\n", lines[0].c_str());
  for (size_t i = 1; i < lines.size(); ++i) {
    auto fields = split(lines[i], ' ');
    std::erase(fields, std::string());
    if (fields.size() <= idx) continue;
    auto pid = parse_uint(fields[idx]);
    if (pid && std::find(pids->begin(), pids->end(), static_cast<pid_t>(*pid)) != pids->end())
      std::printf("%s\n", lines[i].c_str());
  }
  return 0;
}

int write_spec(Commands& c) {
  std::string dir = c.spec_bundle.empty() ? "." : c.spec_bundle;
  std::string path = dir + "/config.json";
  if (path_exists(path)) {
    log::error("spec: " + path + " exists; remove it first");
    return 1;
  }
  std::string text = oci::default_spec_json(c.spec_rootless, getuid(), getgid());
  if (c.spec_seccomp_default) {
    auto with = oci::with_default_seccomp(text);
    if (!with) return fail(with.error().add_context("spec"));
    text = std::move(*with);
  }
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) return fail(sys_error("spec: create", path));
  bool okw = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!okw) return fail(sys_error("spec: write", path));
  return 0;
}

}  // namespace

std::shared_ptr<Commands> register_commands(CLI::App& app, Globals&) {
  auto c = std::make_shared<Commands>();
  c->create = app.add_subcommand("create", "create a container");
  add_create_flags(c->create, c->create_opts);
  c->run = app.add_subcommand("run", "create and start a container");
  add_create_flags(c->run, c->create_opts);
  c->run->add_flag("-d,--detach", c->detach, "detach from the container's process");
  c->start = app.add_subcommand("start", "start a created container");
  c->start->add_option("id", c->id)->required();
  c->state = app.add_subcommand("state", "output the state of a container");
  c->state->add_option("id", c->id)->required();
  c->kill = app.add_subcommand("kill", "send a signal to the container's init");
  c->kill->add_flag("-a,--all", c->all, "signal every process in the container");
  c->kill->add_option("id", c->id)->required();
  c->kill->add_option("signal", c->signal, "signal name or number (default SIGTERM)");
  c->del = app.add_subcommand("delete", "delete a container");
  c->del->add_flag("-f,--force", c->force, "kill the container if it runs");
  c->del->add_option("id", c->id)->required();
  c->list = app.add_subcommand("list", "list containers");
  c->list->add_option("-f,--format", c->list_format)->check(CLI::IsMember({"table", "json"}));
  c->list->add_flag("-q,--quiet", c->quiet, "only ids");
  c->exec = app.add_subcommand("exec", "run a process in a running container");
  auto& e = c->exec_opts;
  c->exec->add_option("-p,--process", e.process_file, "process.json");
  c->exec->add_flag("-t,--tty", e.tty, "allocate a pty");
  c->exec->add_option("--console-socket", e.console_socket);
  c->exec->add_option("--cwd", e.cwd);
  c->exec->add_option("-e,--env", c->exec_env)->allow_extra_args(false);
  c->exec->add_option("-u,--user", e.user, "uid[:gid]");
  c->exec->add_option("-g,--additional-gids", c->exec_gids)->allow_extra_args(false);
  c->exec->add_option("-c,--cap", c->exec_caps)->allow_extra_args(false);
  c->exec->add_flag("--no-new-privs", e.no_new_privs);
  c->exec->add_flag("-d,--detach", e.detach);
  c->exec->add_option("--pid-file", e.pid_file);
  c->exec->add_option("--preserve-fds", e.preserve_fds);
  c->exec->add_option("--process-label", c->exec_process_label, "SELinux label (refused if set)");
  c->exec->add_option("--apparmor", c->exec_apparmor, "AppArmor profile (refused if set)");
  c->exec->add_option("id", e.id)->required();
  c->exec->prefix_command();
  c->spec = app.add_subcommand("spec", "write a default config.json");
  c->spec->add_flag("--rootless", c->spec_rootless);
  c->spec->add_flag("--seccomp-default", c->spec_seccomp_default,
                    "linux.seccomp: the default profile (docker's) for the spec's capabilities");
  c->spec->add_option("-b,--bundle", c->spec_bundle);
  c->features = app.add_subcommand("features", "show the runtime's features");
  c->ps = app.add_subcommand("ps", "list the processes in a container");
  c->ps->add_option("-f,--format", c->ps_format)->check(CLI::IsMember({"table", "json"}));
  c->ps->add_option("id", c->id)->required();
  c->ps->add_option("ps-args", c->ps_args, "arguments for ps(1), after --");
  c->ps->prefix_command();
  c->cgroup = register_cgroup_commands(app);
  return c;
}

int run_selected(CLI::App& app, Globals& g, const std::shared_ptr<Commands>& cp) {
  Commands& c = *cp;
  int log_fd = STDERR_FILENO;
  if (!g.log_file.empty()) {
    log_fd = open(g.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      std::fprintf(stderr, "forker-oci: open log %s: %s\n", g.log_file.c_str(), strerror(errno));
      return 1;
    }
  }
  log::configure(log_fd, g.log_format == "json" ? log::Format::kJson : log::Format::kText,
                 g.options.debug, "forker-oci");
  auto report = [&](const Error& e) {
    fail(e);
    // With --log the error also goes to stderr, where a person (and conmon) reads it.
    if (log_fd != STDERR_FILENO) std::fprintf(stderr, "forker-oci: %s\n", e.message().c_str());
    return 1;
  };
  if (c.create->parsed()) {
    auto st = runtime::create_container(g.options, c.create_opts);
    return st ? 0 : report(st.error());
  }
  if (c.run->parsed()) {
    auto code = runtime::run_container(g.options, c.create_opts, c.detach);
    return code ? *code : report(code.error());
  }
  if (c.start->parsed()) {
    auto st = runtime::start_container(g.options, c.id);
    return st ? 0 : report(st.error());
  }
  if (c.state->parsed()) {
    auto js = runtime::container_state(g.options, c.id);
    if (!js) return report(js.error());
    std::printf("%s\n", js->c_str());
    return 0;
  }
  if (c.kill->parsed()) {
    auto sig = runtime::parse_signal(c.signal);
    if (!sig) return report(sig.error().add_context("kill " + c.id));
    auto st = runtime::kill_container(g.options, c.id, *sig, c.all);
    return st ? 0 : report(st.error());
  }
  if (c.del->parsed()) {
    auto st = runtime::delete_container(g.options, c.id, c.force);
    return st ? 0 : report(st.error());
  }
  if (c.list->parsed()) return print_list(g, c);
  if (c.exec->parsed()) {
    auto& e = c.exec_opts;
    if (!c.exec_process_label.empty() || !c.exec_apparmor.empty())
      return report(make_error("exec --process-label/--apparmor: no SELinux or AppArmor support"));
    e.args = c.exec->remaining();
    e.env = c.exec_env;
    e.caps = c.exec_caps;
    for (const auto& gid : c.exec_gids) {
      for (const auto& part : split(gid, ',')) {
        auto n = parse_uint(part);
        if (!n) return report(make_error("exec --additional-gids " + gid + ": not a number"));
        e.additional_gids.push_back(static_cast<uint32_t>(*n));
      }
    }
    auto code = runtime::exec_container(g.options, e);
    return code ? *code : report(code.error());
  }
  if (c.spec->parsed()) return write_spec(c);
  if (c.ps->parsed()) return print_ps(g, c);
  if (c.features->parsed()) {
    std::printf("%s", oci::features_json().c_str());
    return 0;
  }
  if (int code = run_cgroup_command(*c.cgroup, g); code >= 0) return code;
  (void)app;
  return 1;
}

}  // namespace forker::cli
