// `forker stats [--no-stream] [CONTAINER...]`: docker's live table of CPU %, memory and pids per
// container, read from each container's cgroup (engine/container_stats.hpp). CPU % needs two
// readings: the first table comes a second after the start, then one every two seconds.
#include <time.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli/forker/cli.hpp"
#include "engine/container_stats.hpp"
#include "engine/engine.hpp"
#include "engine/go_template.hpp"

namespace forker::cli {
namespace {

using engine::Engine;
using engine::StatsSample;

constexpr std::string_view kDefaultFormat =
    "table {{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}\\t{{.PIDs}}";
const std::vector<engine::TemplateField> kStatsFields = {
    {"ID", "CONTAINER ID"}, {"Name", "NAME"},
    {"CPUPerc", "CPU %"},   {"MemUsage", "MEM USAGE / LIMIT"},
    {"MemPerc", "MEM %"},   {"PIDs", "PIDS"}};
constexpr long kFirstSampleMs = 1000;  // between the two readings of the first table
constexpr long kRefreshMs = 2000;
// docker's refresh: clear the screen, cursor to the top left.
constexpr const char* kClearScreen = "\033[2J\033[H";

struct StatsArgs {
  bool no_stream = false;
  std::string format = std::string(kDefaultFormat);
  std::vector<std::string> names;
};

struct Target {
  std::string id;
  std::string name;
};

void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  ::nanosleep(&ts, nullptr);
}

// The named containers (a replica group stands for its members), else every running one.
Result<std::vector<Target>> targets(const Engine& eng, const std::vector<std::string>& names) {
  std::vector<Target> out;
  if (names.empty()) {
    for (const auto& v : FORKER_TRY(eng.list(false))) out.push_back({v.record.id, v.record.name});
    return out;
  }
  for (const auto& n : names)
    for (const auto& r : FORKER_TRY(eng.resolve(n))) out.push_back({r.id, r.name});
  return out;
}

// Readings of the containers that have one now; a stopped container has none.
std::map<std::string, StatsSample> sample(const Engine& eng, const std::vector<Target>& ts,
                                          uint64_t host_memory) {
  std::map<std::string, StatsSample> out;
  for (const auto& t : ts)
    if (auto s = engine::read_stats(eng.runtime_options(), t.id, host_memory)) out[t.id] = *s;
  return out;
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", v);
  return buf;
}

engine::TemplateRow stats_row(const Target& t, const std::map<std::string, StatsSample>& before,
                              const std::map<std::string, StatsSample>& after) {
  engine::TemplateRow row{{"ID", t.id.substr(0, 12)}, {"Name", t.name}};
  auto now = after.find(t.id);
  if (now == after.end()) {
    // As docker shows a container it has no figures for.
    row.insert({{"CPUPerc", "--"}, {"MemUsage", "-- / --"}, {"MemPerc", "--"}, {"PIDs", "--"}});
    return row;
  }
  const StatsSample& s = now->second;
  auto then = before.find(t.id);
  row["CPUPerc"] = percent(then == before.end() ? 0 : engine::cpu_percent(then->second, s));
  row["MemUsage"] = engine::binary_size(static_cast<double>(s.memory)) + " / " +
                    engine::binary_size(static_cast<double>(s.memory_limit));
  row["MemPerc"] = percent(engine::memory_percent(s));
  row["PIDs"] = std::to_string(s.pids);
  return row;
}

int run_stats(const Globals& g, const StatsArgs& a) {
  auto tmpl = engine::GoTemplate::parse(a.format, kStatsFields);
  if (!tmpl) return fail(tmpl.error());
  auto store = open_store(g);
  if (!store) return fail(store.error());
  auto eng = Engine::open(std::move(*store));
  if (!eng) return fail(eng.error());
  uint64_t host_memory = engine::host_memory_bytes();
  auto ts = targets(*eng, a.names);
  if (!ts) return fail(ts.error());
  auto before = sample(*eng, *ts, host_memory);
  sleep_ms(kFirstSampleMs);
  for (;;) {
    // Streaming without names follows containers as they start and stop, as docker does.
    if (!a.no_stream && a.names.empty()) {
      ts = targets(*eng, a.names);
      if (!ts) return fail(ts.error());
    }
    auto after = sample(*eng, *ts, host_memory);
    std::vector<engine::TemplateRow> rows;
    for (const auto& t : *ts) rows.push_back(stats_row(t, before, after));
    std::string text = tmpl->render(rows);
    if (a.no_stream) {
      std::fputs(text.c_str(), stdout);
      return 0;
    }
    std::fputs((kClearScreen + text).c_str(), stdout);
    std::fflush(stdout);
    before = std::move(after);
    sleep_ms(kRefreshMs);
  }
}

}  // namespace

void register_stats_commands(CLI::App& app, Globals& g, Actions& actions) {
  auto args = std::make_shared<StatsArgs>();
  CLI::App* stats = app.add_subcommand("stats", "Show containers' CPU, memory and pids usage");
  stats->add_flag("--no-stream", args->no_stream, "print one table and exit");
  stats->add_option("--format", args->format,
                    "a template: {{.ID}} {{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.MemPerc}} "
                    "{{.PIDs}}");
  stats->add_option("container", args->names, "names, ids or replica groups (default: running)");
  actions.add(stats, [&g, args] { return run_stats(g, *args); });
}

}  // namespace forker::cli
