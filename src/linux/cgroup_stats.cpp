// cgroup usage figures for `events`: v1 files (cpuacct.*, memory.*, pids.*, blkio.*,
// hugetlb.*) and v2 files (cpu.stat, memory.*, io.stat, ...) mapped onto runc's types.Stats, so
// tools that read runc's event stream read ours.
#include "linux/cgroup_stats.hpp"

#include <dirent.h>
#include <unistd.h>

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/file.hpp"
#include "core/strings.hpp"

namespace forker::linux {
namespace {

using json = nlohmann::json;
constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

// One number; "max" (v2's "no limit") reads as UINT64_MAX, as runc reports it.
std::optional<uint64_t> read_u64(const std::string& path) {
  auto text = read_file(path);
  if (!text) return std::nullopt;
  std::string_view v = trim(*text);
  if (v == "max") return kUnlimited;
  return parse_uint(v);
}

uint64_t u64(const std::string& path) { return read_u64(path).value_or(0); }

// "key value" lines (cpu.stat, memory.stat, memory.events, memory.oom_control).
std::map<std::string, uint64_t> read_keyed(const std::string& path) {
  std::map<std::string, uint64_t> out;
  auto text = read_file(path);
  if (!text) return out;
  for (const auto& line : split(*text, '\n')) {
    auto f = split(trim(line), ' ');
    if (f.size() != 2) continue;
    if (auto v = parse_uint(f[1])) out[f[0]] = *v;
  }
  return out;
}

uint64_t get(const std::map<std::string, uint64_t>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

// Go's omitempty: a zero number is left out.
void put_nonzero(json& j, const char* key, uint64_t v) {
  if (v != 0) j[key] = v;
}

std::vector<uint64_t> read_list(const std::string& path) {
  std::vector<uint64_t> out;
  auto text = read_file(path);
  if (!text) return out;
  for (const auto& f : split(trim(*text), ' '))
    if (auto v = parse_uint(trim(f))) out.push_back(*v);
  return out;
}

// "0-2,4" -> [0, 1, 2, 4]
std::vector<uint64_t> read_cpu_list(const std::string& path) {
  std::vector<uint64_t> out;
  auto text = read_file(path);
  if (!text) return out;
  for (const auto& part : split(trim(*text), ',')) {
    auto range = split(part, '-');
    auto lo = range.empty() ? std::nullopt : parse_uint(range[0]);
    auto hi = range.size() == 2 ? parse_uint(range[1]) : lo;
    if (!lo || !hi || *hi < *lo || *hi - *lo > 4096) continue;
    for (uint64_t c = *lo; c <= *hi; ++c) out.push_back(c);
  }
  return out;
}

json cpu_usage_json(uint64_t total, uint64_t kernel, uint64_t user,
                    const std::vector<uint64_t>& percpu) {
  json usage = {{"kernel", kernel}, {"user", user}};
  put_nonzero(usage, "total", total);
  if (!percpu.empty()) usage["percpu"] = percpu;
  return usage;
}

json throttling_json(uint64_t periods, uint64_t throttled, uint64_t time_ns) {
  json t = json::object();
  put_nonzero(t, "periods", periods);
  put_nonzero(t, "throttledPeriods", throttled);
  put_nonzero(t, "throttledTime", time_ns);
  return t;
}

json memory_entry(uint64_t limit, uint64_t usage, uint64_t max, uint64_t failcnt) {
  json e = {{"limit", limit}, {"failcnt", failcnt}};
  put_nonzero(e, "usage", usage);
  put_nonzero(e, "max", max);
  return e;
}

json pids_json(const std::string& dir) {
  json p = json::object();
  if (dir.empty()) return p;
  put_nonzero(p, "current", u64(dir + "/pids.current"));
  uint64_t limit = u64(dir + "/pids.max");
  put_nonzero(p, "limit", limit == kUnlimited ? 0 : limit);  // runc: 0 for "max"
  return p;
}

json blkio_entry(const std::string& device, const std::string& op, uint64_t value) {
  json e = json::object();
  auto mm = split(device, ':');
  if (mm.size() == 2) {
    put_nonzero(e, "major", parse_uint(mm[0]).value_or(0));
    put_nonzero(e, "minor", parse_uint(mm[1]).value_or(0));
  }
  e["op"] = op;
  put_nonzero(e, "value", value);
  return e;
}

std::vector<std::string> file_names(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = dir.empty() ? nullptr : ::opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) out.emplace_back(e->d_name);
  ::closedir(d);
  return out;
}

// hugetlb.<size>.<suffix> -> <size> ("2MB")
std::vector<std::string> hugetlb_sizes(const std::string& dir, std::string_view suffix) {
  std::vector<std::string> out;
  for (const auto& name : file_names(dir)) {
    if (!starts_with(name, "hugetlb.") || name.size() <= 8 + suffix.size()) continue;
    if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    std::string size = name.substr(8, name.size() - 8 - suffix.size());
    if (size.find('.') == std::string::npos) out.push_back(size);
  }
  return out;
}

// ---- v1 ----

json v1_cpu(const Cgroup& cg) {
  std::string acct = cg.controller_dir("cpuacct");
  json cpu;
  uint64_t kernel = 0, user = 0;
  std::vector<uint64_t> percpu;
  if (!acct.empty()) {
    // cpuacct.stat counts USER_HZ ticks.
    auto stat = read_keyed(acct + "/cpuacct.stat");
    uint64_t ns_per_tick = 1000000000ULL / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
    kernel = get(stat, "system") * ns_per_tick;
    user = get(stat, "user") * ns_per_tick;
    percpu = read_list(acct + "/cpuacct.usage_percpu");
  }
  cpu["usage"] =
      cpu_usage_json(acct.empty() ? 0 : u64(acct + "/cpuacct.usage"), kernel, user, percpu);
  std::string cpu_dir = cg.controller_dir("cpu");
  auto stat =
      cpu_dir.empty() ? std::map<std::string, uint64_t>{} : read_keyed(cpu_dir + "/cpu.stat");
  cpu["throttling"] = throttling_json(get(stat, "nr_periods"), get(stat, "nr_throttled"),
                                      get(stat, "throttled_time"));
  return cpu;
}

json v1_memory(const std::string& dir) {
  json mem = json::object();
  if (dir.empty()) return mem;
  auto entry = [&](const std::string& prefix) {
    return memory_entry(
        u64(dir + "/" + prefix + "limit_in_bytes"), u64(dir + "/" + prefix + "usage_in_bytes"),
        u64(dir + "/" + prefix + "max_usage_in_bytes"), u64(dir + "/" + prefix + "failcnt"));
  };
  mem["usage"] = entry("memory.");
  mem["swap"] = entry("memory.memsw.");
  mem["kernel"] = entry("memory.kmem.");
  mem["kernelTCP"] = entry("memory.kmem.tcp.");
  auto raw = read_keyed(dir + "/memory.stat");
  put_nonzero(mem, "cache", get(raw, "cache"));
  if (!raw.empty()) mem["raw"] = raw;
  return mem;
}

json v1_blkio(const std::string& dir) {
  json b = json::object();
  if (dir.empty()) return b;
  auto entries = [&](const char* cfq_file, const char* throttle_file) {
    // The CFQ files are empty (or gone) with blk-mq schedulers; the throttle ones always count.
    auto text = read_file(dir + "/" + cfq_file);
    if (!text || trim(*text).empty() || trim(*text) == "Total 0")
      text = read_file(dir + "/" + throttle_file);
    json arr = json::array();
    if (!text) return arr;
    for (const auto& line : split(*text, '\n')) {
      auto f = split(trim(line), ' ');
      if (f.size() != 3) continue;  // "Total N" has two fields
      arr.push_back(blkio_entry(f[0], f[1], parse_uint(f[2]).value_or(0)));
    }
    return arr;
  };
  auto bytes =
      entries("blkio.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive");
  auto ios = entries("blkio.io_serviced_recursive", "blkio.throttle.io_serviced_recursive");
  if (!bytes.empty()) b["ioServiceBytesRecursive"] = bytes;
  if (!ios.empty()) b["ioServicedRecursive"] = ios;
  return b;
}

json v1_hugetlb(const std::string& dir) {
  json h = json::object();
  for (const auto& size : hugetlb_sizes(dir, ".usage_in_bytes")) {
    std::string p = dir + "/hugetlb." + size + ".";
    json e = {{"failcnt", u64(p + "failcnt")}};
    put_nonzero(e, "usage", u64(p + "usage_in_bytes"));
    put_nonzero(e, "max", u64(p + "max_usage_in_bytes"));
    h[size] = e;
  }
  return h;
}

// ---- v2 ----

json v2_cpu(const std::string& dir) {
  auto stat = read_keyed(dir + "/cpu.stat");  // microseconds
  json cpu;
  cpu["usage"] = cpu_usage_json(get(stat, "usage_usec") * 1000, get(stat, "system_usec") * 1000,
                                get(stat, "user_usec") * 1000, {});
  cpu["throttling"] = throttling_json(get(stat, "nr_periods"), get(stat, "nr_throttled"),
                                      get(stat, "throttled_usec") * 1000);
  return cpu;
}

json v2_memory(const std::string& dir) {
  json mem = json::object();
  if (!path_exists(dir + "/memory.current")) return mem;
  uint64_t usage = u64(dir + "/memory.current");
  uint64_t limit = read_u64(dir + "/memory.max").value_or(kUnlimited);
  auto events = read_keyed(dir + "/memory.events");
  mem["usage"] = memory_entry(limit, usage, u64(dir + "/memory.peak"), get(events, "max"));
  // runc reports v2 swap as memory+swap, the v1 meaning, so figures compare across hosts.
  if (path_exists(dir + "/memory.swap.current")) {
    uint64_t swap_limit = read_u64(dir + "/memory.swap.max").value_or(kUnlimited);
    uint64_t both =
        swap_limit == kUnlimited || limit == kUnlimited ? kUnlimited : swap_limit + limit;
    auto swap_events = read_keyed(dir + "/memory.swap.events");
    mem["swap"] =
        memory_entry(both, usage + u64(dir + "/memory.swap.current"), 0, get(swap_events, "max"));
  } else {
    mem["swap"] = memory_entry(0, 0, 0, 0);
  }
  mem["kernel"] = memory_entry(0, 0, 0, 0);
  mem["kernelTCP"] = memory_entry(0, 0, 0, 0);
  auto raw = read_keyed(dir + "/memory.stat");
  put_nonzero(mem, "cache", get(raw, "file"));
  if (!raw.empty()) mem["raw"] = raw;
  return mem;
}

json v2_io(const std::string& dir) {
  json b = json::object();
  auto text = read_file(dir + "/io.stat");  // "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ..."
  if (!text) return b;
  json bytes = json::array(), ios = json::array();
  for (const auto& line : split(*text, '\n')) {
    auto f = split(trim(line), ' ');
    if (f.size() < 2) continue;
    std::map<std::string, uint64_t> kv;
    for (size_t i = 1; i < f.size(); ++i) {
      auto eq = f[i].find('=');
      if (eq != std::string::npos)
        kv[f[i].substr(0, eq)] = parse_uint(f[i].substr(eq + 1)).value_or(0);
    }
    bytes.push_back(blkio_entry(f[0], "Read", get(kv, "rbytes")));
    bytes.push_back(blkio_entry(f[0], "Write", get(kv, "wbytes")));
    ios.push_back(blkio_entry(f[0], "Read", get(kv, "rios")));
    ios.push_back(blkio_entry(f[0], "Write", get(kv, "wios")));
  }
  if (!bytes.empty()) b["ioServiceBytesRecursive"] = bytes;
  if (!ios.empty()) b["ioServicedRecursive"] = ios;
  return b;
}

json v2_hugetlb(const std::string& dir) {
  json h = json::object();
  for (const auto& size : hugetlb_sizes(dir, ".current")) {
    std::string p = dir + "/hugetlb." + size + ".";
    json e = {{"failcnt", get(read_keyed(p + "events"), "max")}};
    put_nonzero(e, "usage", u64(p + "current"));
    h[size] = e;
  }
  return h;
}

json cpuset_json(const std::string& dir, bool v2) {
  json c = json::object();
  if (dir.empty()) return c;
  auto cpus = read_cpu_list(dir + (v2 ? "/cpuset.cpus.effective" : "/cpuset.cpus"));
  auto mems = read_cpu_list(dir + (v2 ? "/cpuset.mems.effective" : "/cpuset.mems"));
  if (!cpus.empty()) c["cpus"] = cpus;
  if (!mems.empty()) c["mems"] = mems;
  return c;
}

}  // namespace

json cgroup_stats(const Cgroup& cg) {
  json data;
  bool v2 = cg.host().layout == CgroupLayout::kV2;
  std::string dir = cg.controller_dir("memory");
  if (v2) {
    data["cpu"] = v2_cpu(dir);
    data["cpuset"] = cpuset_json(dir, true);
    data["memory"] = v2_memory(dir);
    data["pids"] = pids_json(path_exists(dir + "/pids.current") ? dir : "");
    data["blkio"] = v2_io(dir);
    data["hugetlb"] = v2_hugetlb(dir);
  } else {
    data["cpu"] = v1_cpu(cg);
    data["cpuset"] = cpuset_json(cg.controller_dir("cpuset"), false);
    data["memory"] = v1_memory(dir);
    data["pids"] = pids_json(cg.controller_dir("pids"));
    data["blkio"] = v1_blkio(cg.controller_dir("blkio"));
    data["hugetlb"] = v1_hugetlb(cg.controller_dir("hugetlb"));
  }
  data["intel_rdt"] = json::object();
  data["network_interfaces"] = nullptr;
  return data;
}

std::optional<uint64_t> cgroup_oom_kills(const Cgroup& cg) {
  std::string dir = cg.controller_dir("memory");
  if (dir.empty()) return std::nullopt;
  bool v2 = cg.host().layout == CgroupLayout::kV2;
  std::string file = dir + (v2 ? "/memory.events" : "/memory.oom_control");
  if (!path_exists(file)) return std::nullopt;
  auto counters = read_keyed(file);
  if (counters.empty()) return std::nullopt;
  return get(counters, "oom_kill");
}

}  // namespace forker::linux
