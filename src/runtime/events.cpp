// events: runc's JSON event stream, stats every interval and OOM kills as the cgroup counts them.
#include <time.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/file.hpp"
#include "linux/cgroup_stats.hpp"
#include "runtime/container.hpp"
#include "runtime/launch.hpp"

namespace forker::runtime {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// How often the OOM counter and the container's life are looked at between stats. runc waits on
// an eventfd (v1) or inotify (v2) instead; a poll keeps one loop for both versions.
constexpr long kPollMs = 100;

void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  ::nanosleep(&ts, nullptr);
}

// {"type":...,"id":...,"data":...} in runc's key order (a json object would sort them).
std::string event(const char* type, const std::string& id, const json* data) {
  std::string line = "{\"type\":" + json(type).dump() + ",\"id\":" + json(id).dump();
  if (data) line += ",\"data\":" + data->dump();
  return line + "}";
}

}  // namespace

Result<long> parse_interval(const std::string& text) {
  struct Unit {
    const char* name;
    double ms;
  };
  // Longest names first, so "ms" is not read as "m".
  static const Unit kUnits[] = {{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"ms", 1},
                                {"s", 1e3},   {"m", 6e4},   {"h", 3.6e6}};
  double total = 0;
  size_t i = 0;
  auto bad = [&] {
    return make_error("invalid interval \"" + text + "\" (a duration like 5s, 500ms, 1m)");
  };
  if (text.empty()) return bad();
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == start) return bad();
    double v = std::strtod(text.substr(start, i - start).c_str(), nullptr);
    const Unit* unit = nullptr;
    for (const auto& u : kUnits) {
      std::string_view name(u.name);
      if (text.compare(i, name.size(), name) == 0 &&
          (!unit || name.size() > std::string_view(unit->name).size()))
        unit = &u;
    }
    if (!unit) return bad();
    total += v * unit->ms;
    i += std::string_view(unit->name).size();
  }
  if (total < 1) return make_error("interval \"" + text + "\" must be at least 1ms");
  return static_cast<long>(total);
}

Status container_events(const GlobalOptions& g, const EventsOptions& o,
                        const std::function<void(const std::string& line)>& emit) {
  const std::string ctx = "events " + o.id;
  auto st = FORKER_TRY(oci::read_state(g.root, o.id).context(ctx));
  std::string dir = g.root + "/" + o.id;
  if (oci::derive_status(dir, st) == oci::ContainerStatus::Stopped)
    return make_error(ctx + ": container is not running");
  if (st.cgroups_path.empty())
    return make_error(ctx + ": the container has no cgroup (rootless, none delegated)");
  auto host = FORKER_TRY(cgroup_host(st).context(ctx));
  auto cg = FORKER_TRY(linux::Cgroup::open(host, st.cgroups_path).context(ctx));
  auto stats = [&] {
    json data = linux::cgroup_stats(cg);
    emit(event("stats", o.id, &data));
  };
  if (o.stats_once) {
    stats();
    return ok();
  }
  uint64_t ooms = linux::cgroup_oom_kills(cg).value_or(0);
  auto next = Clock::now() + std::chrono::milliseconds(o.interval_ms);
  for (;;) {
    // The container's life first, the counter after: an OOM kill that ended it is still told.
    bool gone = !path_exists(dir + "/state.json") ||
                oci::derive_status(dir, st) == oci::ContainerStatus::Stopped;
    if (auto kills = linux::cgroup_oom_kills(cg); kills && *kills > ooms) {
      ooms = *kills;
      emit(event("oom", o.id, nullptr));
    }
    if (gone) return ok();
    auto now = Clock::now();
    if (now >= next) {
      stats();
      next += std::chrono::milliseconds(o.interval_ms);
      if (next < now) next = now + std::chrono::milliseconds(o.interval_ms);
      continue;
    }
    long left = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count();
    sleep_ms(std::max(1L, std::min(kPollMs, left)));
  }
}

}  // namespace forker::runtime
