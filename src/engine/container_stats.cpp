// Stats for `forker stats`, the arithmetic of docker's client (cli/command/container/
// stats_helpers.go) over the runtime's cgroup figures.
#include "engine/container_stats.hpp"

#include <cstdio>
#include <iterator>

#include "core/file.hpp"
#include "core/strings.hpp"

namespace forker::engine {
namespace {

using json = nlohmann::json;

uint64_t number(const json& j, std::initializer_list<const char*> path) {
  const json* at = &j;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return 0;
    at = &(*at)[key];
  }
  return at->is_number_unsigned() || at->is_number_integer() ? at->get<uint64_t>() : 0;
}

}  // namespace

StatsSample stats_from_json(const json& data, uint64_t host_memory) {
  StatsSample s;
  s.cpu_ns = number(data, {"cpu", "usage", "total"});
  s.pids = number(data, {"pids", "current"});
  // docker's calculateMemUsageUnixNoCache: the inactive file cache can be reclaimed, so it is
  // not counted (v1 names it total_inactive_file, v2 inactive_file).
  uint64_t usage = number(data, {"memory", "usage", "usage"});
  uint64_t inactive = number(data, {"memory", "raw", "inactive_file"});
  if (data.contains("memory") && data["memory"].contains("raw") &&
      data["memory"]["raw"].contains("total_inactive_file"))
    inactive = number(data, {"memory", "raw", "total_inactive_file"});
  s.memory = inactive < usage ? usage - inactive : usage;
  // No limit reads as a huge number (v1: 2^63 rounded to pages, v2: "max"); docker's daemon
  // reports the machine's memory instead.
  s.memory_limit = number(data, {"memory", "usage", "limit"});
  if (host_memory > 0 && (s.memory_limit == 0 || s.memory_limit > host_memory))
    s.memory_limit = host_memory;
  s.at = std::chrono::steady_clock::now();
  return s;
}

Result<StatsSample> read_stats(const runtime::GlobalOptions& rt, const std::string& id,
                               uint64_t host_memory) {
  std::string line;
  FORKER_TRY(runtime::container_events(rt, {id, /*stats_once=*/true, 0},
                                       [&](const std::string& l) { line = l; }));
  json event = json::parse(line, nullptr, false);
  if (event.is_discarded() || !event.contains("data"))
    return make_error("stats " + id + ": unreadable stats event");
  return stats_from_json(event["data"], host_memory);
}

double cpu_percent(const StatsSample& before, const StatsSample& after) {
  auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(after.at - before.at).count();
  if (elapsed <= 0 || after.cpu_ns < before.cpu_ns) return 0;
  return static_cast<double>(after.cpu_ns - before.cpu_ns) / static_cast<double>(elapsed) * 100.0;
}

double memory_percent(const StatsSample& s) {
  if (s.memory_limit == 0) return 0;
  return static_cast<double>(s.memory) / static_cast<double>(s.memory_limit) * 100.0;
}

uint64_t host_memory_bytes() {
  auto text = read_file("/proc/meminfo");
  if (!text) return 0;
  for (const auto& line : split(*text, '\n')) {
    if (!line.starts_with("MemTotal:")) continue;
    std::string_view v = trim(std::string_view(line).substr(9));
    if (v.ends_with("kB")) v = trim(v.substr(0, v.size() - 2));
    return parse_uint(v).value_or(0) * 1024;
  }
  return 0;
}

std::string binary_size(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  size_t unit = 0;
  while (bytes >= 1024 && unit + 1 < std::size(kUnits)) {
    bytes /= 1024;
    ++unit;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.4g%s", bytes, kUnits[unit]);
  return buf;
}

}  // namespace forker::engine
