// pause, resume and update: the commands that act on a live container's cgroup.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/strings.hpp"
#include "linux/cgroup.hpp"
#include "runtime/container.hpp"
#include "runtime/launch.hpp"

namespace forker::runtime {
namespace {

using json = nlohmann::json;

struct Opened {
  oci::StateDir dir;
  oci::ContainerState state;
  oci::ContainerStatus status;
};

// Locks ROOT/ID for the whole command, as every command that changes a container does.
Result<Opened> open_locked(const GlobalOptions& g, const std::string& id) {
  auto dir = FORKER_TRY(oci::StateDir::open(g.root, id));
  auto st = FORKER_TRY(dir.load());
  auto status = oci::derive_status(dir.path(), st);
  return Opened{std::move(dir), std::move(st), status};
}

Result<linux::Cgroup> open_cgroup(const oci::ContainerState& st) {
  if (st.cgroups_path.empty())
    return make_error("the container has no cgroup (rootless, and no cgroup was delegated)");
  auto host = FORKER_TRY(cgroup_host(st));
  return linux::Cgroup::open(host, st.cgroups_path, st.cgroup_dirs_created);
}

// ROOT/ID/freezer -> the kernel's freezer file, made atomically (a symlink renamed into place),
// so `state` reads the freezer itself: a cgroup thawed behind our back shows as running.
Status link_freezer(const std::string& container_dir, const std::string& freezer_file) {
  std::string link = container_dir + "/" + oci::kFreezerLink;
  std::string tmp = link + ".tmp";
  ::unlink(tmp.c_str());
  if (::symlink(freezer_file.c_str(), tmp.c_str()) < 0) return sys_error("symlink", tmp);
  if (::rename(tmp.c_str(), link.c_str()) < 0) {
    Error err = sys_error("rename", tmp);
    ::unlink(tmp.c_str());
    return err;
  }
  return ok();
}

// ---- update: flags and -r ----

// The keys of linux.resources that update knows, by object; arrays list their elements' keys.
// Anything else is refused, so a misspelt key does not pass as a no-op.
const std::map<std::string, std::set<std::string>>& known_keys() {
  static const std::map<std::string, std::set<std::string>> keys = {
      {"",
       {"devices", "memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma",
        "unified"}},
      {"memory",
       {"limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness", "disableOOMKiller",
        "useHierarchy", "checkBeforeUpdate"}},
      {"cpu",
       {"shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems",
        "idle"}},
      {"pids", {"limit"}},
      {"blockIO",
       {"weight", "leafWeight", "weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice",
        "throttleReadIOPSDevice", "throttleWriteIOPSDevice"}},
      {"blockIO.weightDevice", {"major", "minor", "weight", "leafWeight"}},
      {"blockIO.throttle", {"major", "minor", "rate"}},
      {"hugepageLimits", {"pageSize", "limit"}},
      {"network", {"classID", "priorities"}},
      {"network.priorities", {"name", "priority"}},
  };
  return keys;
}

Status check_keys(const json& obj, const std::string& kind, const std::string& path) {
  if (!obj.is_object()) return make_error(path + ": expected an object");
  const auto& allowed = known_keys().at(kind);
  for (const auto& [key, value] : obj.items()) {
    std::string p = path + "." + key;
    if (!allowed.count(key)) return make_error(p + ": unknown key");
    std::string sub = kind.empty() ? key : kind + "." + key;
    if (starts_with(key, "throttle")) sub = "blockIO.throttle";
    if (known_keys().count(sub) && value.is_object()) FORKER_TRY(check_keys(value, sub, p));
    if (known_keys().count(sub) && value.is_array())
      for (size_t i = 0; i < value.size(); ++i)
        FORKER_TRY(check_keys(value[i], sub, p + "[" + std::to_string(i) + "]"));
  }
  return ok();
}

Result<int64_t> flag_int(const char* flag, const std::string& text) {
  auto v = parse_int(trim(text));
  if (!v) return make_error(std::string(flag) + " " + text + ": not an integer");
  return *v;
}

Result<json> json_from_flags(const UpdateFlags& f) {
  if (!f.kernel_memory.empty() || !f.kernel_memory_tcp.empty())
    return make_error(
        "--kernel-memory/--kernel-memory-tcp: not supported (kernel memory limits are "
        "deprecated and ignored by Linux 6)");
  json r = json::object();
  // 0 leaves a value as it is, as in runc.
  auto memory = [&](const char* flag, const std::string& text, const char* key) -> Status {
    if (text.empty()) return ok();
    int64_t v = FORKER_TRY(parse_memory_size(text).context(flag));
    if (v != 0) r["memory"][key] = v;
    return ok();
  };
  FORKER_TRY(memory("--memory", f.memory, "limit"));
  FORKER_TRY(memory("--memory-swap", f.memory_swap, "swap"));
  FORKER_TRY(memory("--memory-reservation", f.memory_reservation, "reservation"));
  auto number = [&](const char* flag, const std::string& text, const char* obj,
                    const char* key) -> Status {
    if (text.empty()) return ok();
    int64_t v = FORKER_TRY(flag_int(flag, text));
    if (v != 0) r[obj][key] = v;
    return ok();
  };
  FORKER_TRY(number("--cpu-shares", f.cpu_shares, "cpu", "shares"));
  FORKER_TRY(number("--cpu-quota", f.cpu_quota, "cpu", "quota"));
  FORKER_TRY(number("--cpu-period", f.cpu_period, "cpu", "period"));
  FORKER_TRY(number("--cpu-rt-runtime", f.cpu_rt_runtime, "cpu", "realtimeRuntime"));
  FORKER_TRY(number("--cpu-rt-period", f.cpu_rt_period, "cpu", "realtimePeriod"));
  FORKER_TRY(number("--pids-limit", f.pids_limit, "pids", "limit"));
  FORKER_TRY(number("--blkio-weight", f.blkio_weight, "blockIO", "weight"));
  if (!f.cpuset_cpus.empty()) r["cpu"]["cpus"] = f.cpuset_cpus;
  if (!f.cpuset_mems.empty()) r["cpu"]["mems"] = f.cpuset_mems;
  return r;
}

struct RangeCheck {
  const char* field;  // below linux.resources
  const char* flag;
  std::optional<int64_t> value;
  int64_t lo, hi;
  bool minus_one_ok;  // -1: unlimited
};

std::optional<int64_t> as_signed(const std::optional<uint64_t>& v) {
  if (!v) return std::nullopt;
  return *v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(*v);
}

// The limits the kernel would refuse or silently clamp, checked before any write so that a bad
// request changes nothing.
Status check_ranges(const oci::Resources& r, bool from_flags) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  std::vector<RangeCheck> checks;
  if (r.memory) {
    checks.push_back({"memory.limit", "--memory", r.memory->limit, 1, kMax, true});
    checks.push_back({"memory.swap", "--memory-swap", r.memory->swap, 1, kMax, true});
    checks.push_back(
        {"memory.reservation", "--memory-reservation", r.memory->reservation, 1, kMax, true});
  }
  if (r.cpu) {
    checks.push_back({"cpu.shares", "--cpu-shares", as_signed(r.cpu->shares), 2, 262144, false});
    checks.push_back({"cpu.quota", "--cpu-quota", r.cpu->quota, 1000, kMax, true});
    checks.push_back(
        {"cpu.period", "--cpu-period", as_signed(r.cpu->period), 1000, 1000000, false});
    checks.push_back(
        {"cpu.realtimeRuntime", "--cpu-rt-runtime", r.cpu->realtime_runtime, 1, kMax, true});
    checks.push_back({"cpu.realtimePeriod", "--cpu-rt-period", as_signed(r.cpu->realtime_period), 1,
                      1000000, false});
  }
  checks.push_back({"pids.limit", "--pids-limit", r.pids_limit, 1, kMax, true});
  if (r.block_io && r.block_io->weight)
    checks.push_back(
        {"blockIO.weight", "--blkio-weight", int64_t{*r.block_io->weight}, 10, 1000, false});
  for (const auto& c : checks) {
    if (!c.value || *c.value == 0 || (c.minus_one_ok && *c.value == -1)) continue;
    if (*c.value >= c.lo && *c.value <= c.hi) continue;
    std::string name = from_flags ? std::string(c.flag) : "linux.resources." + std::string(c.field);
    std::string range = std::to_string(c.lo) + ".." +
                        (c.hi == kMax ? std::string("") : std::to_string(c.hi)) +
                        (c.minus_one_ok ? " or -1" : "");
    return make_error(name + ": " + std::to_string(*c.value) + " is out of range (" + range + ")");
  }
  if (r.memory && r.memory->limit && r.memory->swap && *r.memory->limit > 0 &&
      *r.memory->swap > 0 && *r.memory->swap < *r.memory->limit)
    return make_error(std::string(from_flags ? "--memory-swap" : "linux.resources.memory.swap") +
                      ": " + std::to_string(*r.memory->swap) +
                      " (memory+swap) is below the memory limit " +
                      std::to_string(*r.memory->limit));
  // Rewriting the device rules of a live container would open a window with none (v1) or stack
  // a second filter (v2); runc does not update them either.
  if (!r.devices.empty()) return make_error("linux.resources.devices: cannot be changed by update");
  return ok();
}

}  // namespace

bool UpdateFlags::any() const {
  for (const auto* s : {&memory, &memory_swap, &memory_reservation, &kernel_memory,
                        &kernel_memory_tcp, &cpu_shares, &cpu_quota, &cpu_period, &cpu_rt_runtime,
                        &cpu_rt_period, &cpuset_cpus, &cpuset_mems, &pids_limit, &blkio_weight})
    if (!s->empty()) return true;
  return false;
}

Result<int64_t> parse_memory_size(const std::string& text) {
  std::string_view s = trim(text);
  if (s == "-1") return -1;
  size_t i = 0;
  while (i < s.size() && (isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  std::string number(s.substr(0, i));
  std::string_view unit = s.substr(i);
  if (!unit.empty() && unit[0] == ' ') unit.remove_prefix(1);
  static const std::string kUnits = "kmgtp";
  double mult = 1;
  if (!unit.empty()) {
    size_t u = kUnits.find(static_cast<char>(tolower(static_cast<unsigned char>(unit[0]))));
    if (u != std::string::npos) {
      mult = std::pow(1024.0, static_cast<double>(u + 1));
      unit.remove_prefix(1);
      if (!unit.empty() && (unit[0] == 'i' || unit[0] == 'I')) unit.remove_prefix(1);
    }
  }
  if (!unit.empty() && (unit[0] == 'b' || unit[0] == 'B')) unit.remove_prefix(1);
  char* end = nullptr;
  double v = number.empty() || number[0] == '.' ? -1 : std::strtod(number.c_str(), &end);
  if (!unit.empty() || v < 0 || !end || *end != '\0' || v * mult >= 9.2e18)
    return make_error("invalid size \"" + text + "\" (bytes, or a number with k, m, g, t, p)");
  return static_cast<int64_t>(v * mult);
}

Result<UpdateRequest> parse_update(const UpdateFlags& flags, const std::string& resources_text) {
  bool from_flags = resources_text.empty();
  if (!from_flags && flags.any())
    return make_error("give either -r/--resources or the limit flags, not both");
  json patch;
  if (from_flags) {
    patch = FORKER_TRY(json_from_flags(flags));
    if (patch.empty()) return make_error("nothing to update: give -r FILE or a limit flag");
  } else {
    try {
      patch = json::parse(resources_text);
    } catch (const json::exception& e) {
      return make_error(std::string("parse resources: ") + e.what());
    }
    FORKER_TRY(check_keys(patch, "", "linux.resources"));
  }
  // The config parser reads the object, so types and messages are those of create.
  json config = {{"ociVersion", "1.0.0"}, {"linux", {{"resources", patch}}}};
  auto spec = FORKER_TRY(oci::parse_spec(config.dump()));
  UpdateRequest req;
  req.resources = spec.linux.resources.value_or(oci::Resources{});
  req.resources_json = patch.dump();
  FORKER_TRY(check_ranges(req.resources, from_flags));
  return req;
}

Status pause_container(const GlobalOptions& g, const std::string& id) {
  auto c = FORKER_TRY(open_locked(g, id).context("pause " + id));
  if (c.status != oci::ContainerStatus::Running)
    return make_error("pause " + id + ": container is " + oci::status_name(c.status) +
                      ", not running");
  auto cg = FORKER_TRY(open_cgroup(c.state).context("pause " + id));
  std::string file = cg.freezer_file();
  if (file.empty()) return make_error("pause " + id + ": the host mounts no freezer cgroup");
  // The link first: if the freeze fails, the kernel's file still says "thawed".
  FORKER_TRY(link_freezer(c.dir.path(), file).context("pause " + id));
  return cg.freeze().context("pause " + id);
}

Status resume_container(const GlobalOptions& g, const std::string& id) {
  auto c = FORKER_TRY(open_locked(g, id).context("resume " + id));
  if (c.status != oci::ContainerStatus::Paused)
    return make_error("resume " + id + ": container is " + oci::status_name(c.status) +
                      ", not paused");
  auto cg = FORKER_TRY(open_cgroup(c.state).context("resume " + id));
  return cg.thaw().context("resume " + id);
}

Status update_container(const GlobalOptions& g, const std::string& id, const UpdateRequest& r) {
  auto c = FORKER_TRY(open_locked(g, id).context("update " + id));
  if (c.status == oci::ContainerStatus::Stopped)
    return make_error("update " + id + ": container is stopped");
  auto cg = FORKER_TRY(open_cgroup(c.state).context("update " + id));
  FORKER_TRY(cg.apply(r.resources).context("update " + id));
  // Keep the config in the state in step with the cgroup, as runc does, so nothing reads a
  // stale limit from it later. The limits are written already: a failure here is reported.
  try {
    json config = json::parse(c.state.config_json);
    config["linux"]["resources"].merge_patch(json::parse(r.resources_json));
    c.state.config_json = config.dump();
  } catch (const json::exception& e) {
    return make_error("update " + id + ": record the new limits in the state: " + e.what());
  }
  return c.dir.save(c.state).context("update " + id + ": record the new limits in the state");
}

}  // namespace forker::runtime
