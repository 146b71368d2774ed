// cgroup v2 limit writers (Documentation/admin-guide/cgroup-v2.rst): the OCI fields, written in
// v1 terms, converted to the unified interface the way runc and crun convert them.
#include <fcntl.h>
#include <time.h>

#include <algorithm>
#include <set>
#include <string>

#include "core/file.hpp"
#include "core/strings.hpp"
#include "core/trace.hpp"
#include "core/unique_fd.hpp"
#include "linux/cgroup_bpf.hpp"
#include "linux/cgroup_limits.hpp"

namespace forker::linux::cgroup_internal {
namespace {

std::string num(int64_t v) { return std::to_string(v); }
std::string num(uint64_t v) { return std::to_string(v); }
// v2 spells "no limit" as "max"; OCI spells it -1.
std::string limit_text(int64_t v) { return v < 0 ? "max" : std::to_string(v); }

Result<int64_t> read_int(const std::string& path) {
  std::string text = FORKER_TRY(read_file(path));
  auto v = parse_int(trim(text));
  if (!v) return make_error("parse integer in", path);
  return *v;
}

Status apply_memory(const std::string& dir, const oci::MemoryResources& m) {
  if (m.kernel) return make_error("linux.resources.memory.kernel: not supported");
  if (m.kernel_tcp) return make_error("linux.resources.memory.kernelTCP: not supported");
  // v2 has no per-cgroup swappiness and no switch for the OOM killer; accepting them would promise
  // a behaviour the kernel does not give.
  if (m.swappiness)
    return make_error("linux.resources.memory.swappiness: not supported on cgroup v2");
  if (m.disable_oom_killer.value_or(false))
    return make_error("linux.resources.memory.disableOOMKiller: not supported on cgroup v2");
  if (m.use_hierarchy && !*m.use_hierarchy)
    return make_error("linux.resources.memory.useHierarchy: cgroup v2 is always hierarchical");
  if (m.check_before_update.value_or(false) && m.limit && *m.limit > 0) {
    int64_t usage = FORKER_TRY(read_int(dir + "/memory.current"));
    if (usage > *m.limit)
      return make_error("linux.resources.memory.limit: " + num(*m.limit) +
                        " is below the current usage " + num(usage));
  }
  // Swap first, as runc: lowering memory.max never conflicts with it, unlike v1.
  std::string swap = FORKER_TRY(v2_swap_max(m));
  if (!swap.empty()) {
    auto st = write_knob(dir, "memory.swap.max", swap, "linux.resources.memory.swap");
    // Without swap accounting the file is absent; "max" and "0" ask for nothing it could do.
    if (!st && !(st.error().err == ENOENT && (swap == "max" || swap == "0"))) return st;
  }
  if (m.limit && *m.limit != 0)
    FORKER_TRY(write_knob(dir, "memory.max", limit_text(*m.limit), "linux.resources.memory.limit"));
  if (m.reservation && *m.reservation != 0)
    FORKER_TRY(write_knob(dir, "memory.low", limit_text(*m.reservation),
                          "linux.resources.memory.reservation"));
  return ok();
}

Status apply_cpu(const std::string& dir, const oci::CpuResources& c) {
  if ((c.realtime_runtime && *c.realtime_runtime != 0) ||
      (c.realtime_period && *c.realtime_period != 0))
    return make_error(
        "linux.resources.cpu.realtimeRuntime/realtimePeriod: not supported on "
        "cgroup v2");
  if (c.idle) FORKER_TRY(write_knob(dir, "cpu.idle", num(*c.idle), "linux.resources.cpu.idle"));
  if (c.shares && *c.shares != 0)
    FORKER_TRY(write_knob(dir, "cpu.weight", num(cpu_shares_to_weight(*c.shares)),
                          "linux.resources.cpu.shares"));
  bool has_quota = c.quota && *c.quota != 0;
  bool has_period = c.period && *c.period != 0;
  if (has_quota || has_period) {
    std::string quota = has_quota && *c.quota > 0 ? num(*c.quota) : "max";
    uint64_t period = has_period ? *c.period : 100000;
    FORKER_TRY(
        write_knob(dir, "cpu.max", quota + " " + num(period), "linux.resources.cpu.quota/period"));
  }
  if (c.burst)
    FORKER_TRY(write_knob(dir, "cpu.max.burst", num(*c.burst), "linux.resources.cpu.burst"));
  if (!c.cpus.empty())
    FORKER_TRY(write_knob(dir, "cpuset.cpus", c.cpus, "linux.resources.cpu.cpus"));
  if (!c.mems.empty())
    FORKER_TRY(write_knob(dir, "cpuset.mems", c.mems, "linux.resources.cpu.mems"));
  return ok();
}

std::string device(int64_t major, int64_t minor) {
  return std::to_string(major) + ":" + std::to_string(minor);
}

Status apply_io(const std::string& dir, const oci::BlockIoResources& b) {
  if (b.leaf_weight)
    return make_error("linux.resources.blockIO.leafWeight: not supported on cgroup v2");
  // BFQ takes blkio's 1..1000 scale as is; io.weight needs converting (crun picks the same way).
  bool bfq = path_exists(dir + "/io.bfq.weight");
  auto weight_text = [&](uint64_t w) { return num(bfq ? w : blkio_weight_to_io_weight(w)); };
  std::string weight_file = bfq ? "io.bfq.weight" : "io.weight";
  if (b.weight)
    FORKER_TRY(
        write_knob(dir, weight_file, weight_text(*b.weight), "linux.resources.blockIO.weight"));
  for (const auto& d : b.weight_device) {
    if (d.leaf_weight)
      return make_error(
          "linux.resources.blockIO.weightDevice.leafWeight: not supported on "
          "cgroup v2");
    if (d.weight)
      FORKER_TRY(write_knob(dir, weight_file,
                            device(d.major, d.minor) + " " + weight_text(*d.weight),
                            "linux.resources.blockIO.weightDevice"));
  }
  struct Throttle {
    const std::vector<oci::ThrottleDevice>& devices;
    const char* key;
    const char* field;
  };
  const Throttle throttles[] = {
      {b.throttle_read_bps, "rbps", "linux.resources.blockIO.throttleReadBpsDevice"},
      {b.throttle_write_bps, "wbps", "linux.resources.blockIO.throttleWriteBpsDevice"},
      {b.throttle_read_iops, "riops", "linux.resources.blockIO.throttleReadIOPSDevice"},
      {b.throttle_write_iops, "wiops", "linux.resources.blockIO.throttleWriteIOPSDevice"},
  };
  for (const auto& t : throttles)
    for (const auto& d : t.devices)
      FORKER_TRY(write_knob(dir, "io.max",
                            device(d.major, d.minor) + " " + t.key + "=" + num(d.rate), t.field));
  return ok();
}

Status apply_hugetlb(const std::string& dir, const std::vector<oci::HugepageLimit>& limits) {
  for (const auto& l : limits) {
    std::string file = "hugetlb." + l.page_size + ".max";
    if (l.page_size.find('/') != std::string::npos || !path_exists(dir + "/" + file))
      return make_error("linux.resources.hugepageLimits: page size " + l.page_size +
                        " not supported by the host (no " + file + ")");
    FORKER_TRY(write_knob(dir, file, num(l.limit), "linux.resources.hugepageLimits"));
  }
  return ok();
}

// linux.resources.unified: raw "controller.key" files, written last so they win over the fields
// above, as runc orders them.
Status apply_unified(const std::string& dir, const std::map<std::string, std::string>& unified) {
  for (const auto& [key, value] : unified) {
    bool bad_name = key.empty() || key.find('/') != std::string::npos || key == "." ||
                    key == ".." || key.find('.') == std::string::npos;
    if (bad_name) return make_error("linux.resources.unified: invalid key \"" + key + "\"");
    if (!path_exists(dir + "/" + key))
      return make_error("linux.resources.unified: " + key +
                        ": no such cgroup file (controller not available?)");
    FORKER_TRY(write_knob(dir, key, value, "linux.resources.unified." + key));
  }
  return ok();
}

void sleep_ms(long ms) {
  struct timespec ts = {0, ms * 1000000L};
  ::nanosleep(&ts, nullptr);
}

// The "frozen" line of cgroup.events, or -1 when the kernel does not report it.
int events_frozen(const std::string& dir) {
  auto text = read_file(dir + "/cgroup.events");
  if (!text) return -1;
  for (const auto& line : split(*text, '\n')) {
    if (starts_with(line, "frozen ")) return trim(line.substr(7)) == "1" ? 1 : 0;
  }
  return -1;
}

}  // namespace

uint64_t cpu_shares_to_weight(uint64_t shares) {
  if (shares == 0) return 0;
  shares = std::clamp<uint64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t blkio_weight_to_io_weight(uint64_t weight) {
  if (weight == 0) return 0;
  weight = std::clamp<uint64_t>(weight, 10, 1000);
  return 1 + ((weight - 10) * 9999) / 990;
}

Result<std::string> v2_swap_max(const oci::MemoryResources& m) {
  int64_t limit = m.limit.value_or(0);
  int64_t swap = m.swap.value_or(0);
  // Unlimited memory with no swap value lifts the swap limit too, as on v1.
  if (limit == -1 && swap == 0) return std::string("max");
  if (swap == 0) return std::string();  // unset
  if (swap == -1) return std::string("max");
  if (limit == 0 || limit == -1)
    return make_error("linux.resources.memory.swap: a swap limit needs a memory limit");
  if (swap < limit)
    return make_error("linux.resources.memory.swap: " + num(swap) +
                      " (memory+swap) is below the memory limit " + num(limit));
  return num(swap - limit);
}

Status apply_v2(const std::string& dir, const oci::Resources& r) {
  // v2 enforces device rules with an eBPF program attached to the cgroup.
  if (!r.devices.empty()) {
    auto program = FORKER_TRY(device_filter_program(r.devices));
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return sys_error("open", dir);
    FORKER_TRY(attach_device_filter(fd.get(), program, dir).context("linux.resources.devices"));
  }
  if (r.network)
    return make_error("linux.resources.network: net_cls/net_prio do not exist on cgroup v2");
  if (r.memory) FORKER_TRY(apply_memory(dir, *r.memory));
  if (r.cpu) FORKER_TRY(apply_cpu(dir, *r.cpu));
  if (r.pids_limit)
    FORKER_TRY(write_knob(dir, "pids.max", *r.pids_limit > 0 ? num(*r.pids_limit) : "max",
                          "linux.resources.pids.limit"));
  if (r.block_io) FORKER_TRY(apply_io(dir, *r.block_io));
  FORKER_TRY(apply_hugetlb(dir, r.hugepage_limits));
  for (const auto& [device_name, limit] : r.rdma)
    FORKER_TRY(write_knob(dir, "rdma.max", rdma_line(device_name, limit), "linux.resources.rdma"));
  return apply_unified(dir, r.unified);
}

Status enable_v2_controllers(const std::string& dir) {
  std::string available = FORKER_TRY(read_file(dir + "/cgroup.controllers"));
  std::string enabled = FORKER_TRY(read_file(dir + "/cgroup.subtree_control"));
  std::set<std::string> have;
  for (const auto& c : split(trim(enabled), ' '))
    if (!c.empty()) have.insert(c);
  std::vector<std::string> wanted;
  for (const auto& c : split(trim(available), ' '))
    if (!c.empty() && !have.count(c)) wanted.push_back("+" + c);
  if (wanted.empty()) return ok();
  std::string path = dir + "/cgroup.subtree_control";
  {
    trace::Scope step([&] { return "write " + path + " " + join(wanted, " "); });
    if (step.status(write_file(path, join(wanted, " ")))) return ok();
  }
  // One refused controller fails the whole write: enable the others one by one.
  for (const auto& c : wanted) {
    trace::Scope step([&] { return "write " + path + " " + c; });
    (void)step.status(write_file(path, c));
  }
  return ok();
}

Status v2_freeze(const std::string& dir) {
  FORKER_TRY(write_knob(dir, "cgroup.freeze", "1", "freeze"));
  // The write only asks; cgroup.events says "frozen 1" once every task has stopped.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    if (events_frozen(dir) != 0) return ok();
    sleep_ms(1);
  }
  (void)write_knob(dir, "cgroup.freeze", "0", "thaw");
  return sys_error_errno(EBUSY, "freeze (timed out)", dir);
}

Status v2_thaw(const std::string& dir) { return write_knob(dir, "cgroup.freeze", "0", "thaw"); }

bool v2_frozen(const std::string& dir) {
  auto text = read_file(dir + "/cgroup.freeze");
  return text && trim(*text) == "1";
}

}  // namespace forker::linux::cgroup_internal
