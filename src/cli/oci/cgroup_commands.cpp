#include "cli/oci/cgroup_commands.hpp"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>

#include "core/file.hpp"
#include "core/log.hpp"

namespace forker::cli {

struct CgroupCommands {
  CLI::App *pause = nullptr, *resume = nullptr, *update = nullptr, *events = nullptr;
  std::string id;
  runtime::UpdateFlags flags;
  std::string resources_file;
  bool stats = false;
  std::string interval = "5s";
};

namespace {

int report(const Globals& g, const Error& e) {
  log::error(e.message());
  // With --log the error also goes to stderr, where a person (and conmon) reads it.
  if (!g.log_file.empty()) std::fprintf(stderr, "forker-oci: %s\n", e.message().c_str());
  return 1;
}

int status_of(const Globals& g, const Status& st) { return st ? 0 : report(g, st.error()); }

Result<std::string> read_resources(const std::string& file) {
  if (file != "-") return read_file(file);
  std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  if (text.empty()) return make_error("-r -: nothing on stdin");
  return text;
}

int update(const CgroupCommands& c, const Globals& g) {
  std::string text;
  if (!c.resources_file.empty()) {
    auto r = read_resources(c.resources_file);
    if (!r) return report(g, r.error().add_context("update " + c.id));
    text = std::move(*r);
  }
  auto req = runtime::parse_update(c.flags, text);
  if (!req) return report(g, req.error().add_context("update " + c.id));
  return status_of(g, runtime::update_container(g.options, c.id, *req));
}

int events(const CgroupCommands& c, const Globals& g) {
  auto interval = runtime::parse_interval(c.interval);
  if (!interval) return report(g, interval.error().add_context("events " + c.id));
  runtime::EventsOptions o{c.id, c.stats, *interval};
  auto st = runtime::container_events(g.options, o, [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  });
  return status_of(g, st);
}

}  // namespace

std::shared_ptr<CgroupCommands> register_cgroup_commands(CLI::App& app) {
  auto c = std::make_shared<CgroupCommands>();
  c->pause = app.add_subcommand("pause", "suspend every process in the container");
  c->pause->add_option("id", c->id)->required();
  c->resume = app.add_subcommand("resume", "resume every process of a paused container");
  c->resume->add_option("id", c->id)->required();

  c->update = app.add_subcommand("update", "change the cgroup limits of a container");
  auto* u = c->update;
  auto& f = c->flags;
  u->add_option("-r,--resources", c->resources_file,
                "JSON of linux.resources to apply, or - for stdin");
  u->add_option("--memory", f.memory, "memory limit (bytes, or with k, m, g: 64m)");
  u->add_option("--memory-swap", f.memory_swap, "memory+swap limit; -1 for unlimited swap");
  u->add_option("--memory-reservation", f.memory_reservation, "soft memory limit");
  u->add_option("--kernel-memory", f.kernel_memory, "refused: kernel memory limits are gone");
  u->add_option("--kernel-memory-tcp", f.kernel_memory_tcp, "refused, as --kernel-memory");
  u->add_option("--cpu-share,--cpu-shares", f.cpu_shares, "CPU shares (relative weight)");
  u->add_option("--cpu-quota", f.cpu_quota, "CFS quota in microseconds per period");
  u->add_option("--cpu-period", f.cpu_period, "CFS period in microseconds");
  u->add_option("--cpu-rt-runtime", f.cpu_rt_runtime, "realtime runtime in microseconds");
  u->add_option("--cpu-rt-period", f.cpu_rt_period, "realtime period in microseconds");
  u->add_option("--cpuset-cpus", f.cpuset_cpus, "CPUs to run on (0-3,5)");
  u->add_option("--cpuset-mems", f.cpuset_mems, "memory nodes to use");
  u->add_option("--pids-limit", f.pids_limit, "maximum number of processes; -1 for none");
  u->add_option("--blkio-weight", f.blkio_weight, "block IO weight, 10..1000");
  u->add_option("id", c->id)->required();

  c->events = app.add_subcommand("events", "show the container's stats and OOM events");
  c->events->add_flag("--stats", c->stats, "show the stats once, then exit");
  c->events->add_option("--interval", c->interval, "stats interval (default 5s)");
  c->events->add_option("id", c->id)->required();
  return c;
}

int run_cgroup_command(const CgroupCommands& c, const Globals& g) {
  if (c.pause->parsed()) return status_of(g, runtime::pause_container(g.options, c.id));
  if (c.resume->parsed()) return status_of(g, runtime::resume_container(g.options, c.id));
  if (c.update->parsed()) return update(c, g);
  if (c.events->parsed()) return events(c, g);
  return -1;
}

}  // namespace forker::cli
