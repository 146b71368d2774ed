// cgroup v1 limit writers (Documentation/admin-guide/cgroup-v1/), one function per controller, in
// runc's order: cpuset, devices, memory, cpu, pids, blkio, hugetlb, net_cls, net_prio, rdma.
#include <time.h>

#include <string>

#include "core/file.hpp"
#include "core/strings.hpp"
#include "linux/cgroup_limits.hpp"

namespace forker::linux::cgroup_internal {
namespace {

std::string num(int64_t v) { return std::to_string(v); }
std::string num(uint64_t v) { return std::to_string(v); }

// The directory of CONTROLLER, or an Error naming FIELD when the host does not mount it.
Result<std::string> dir_for(const V1Dirs& dirs, const std::string& controller,
                            std::string_view field) {
  auto it = dirs.find(controller);
  if (it == dirs.end())
    return make_error(std::string(field) + ": " + controller + " controller not mounted");
  return it->second;
}

std::string device_number(const std::optional<int64_t>& n) {
  return n && *n >= 0 ? std::to_string(*n) : "*";
}

Status apply_devices(const std::string& dir, const std::vector<oci::DeviceRule>& rules) {
  // Start from "deny everything" and add what is allowed, so no rule of the parent leaks in.
  FORKER_TRY(write_knob(dir, "devices.deny", "a", "linux.resources.devices"));
  for (const auto& rule : rules) {
    FORKER_TRY(write_knob(dir, rule.allow ? "devices.allow" : "devices.deny",
                          device_rule_text(rule), "linux.resources.devices"));
  }
  return ok();
}

Result<int64_t> read_int(const std::string& path) {
  std::string text = FORKER_TRY(read_file(path));
  auto v = parse_int(trim(text));
  if (!v) return make_error("parse integer in", path);
  return *v;
}

Status write_memory_and_swap(const std::string& dir, const oci::MemoryResources& m) {
  // 0 means unset for both, as in runc: a zero limit would leave no memory at all.
  std::optional<int64_t> limit = m.limit, swap = m.swap;
  if (limit == 0) limit.reset();
  if (swap == 0) swap.reset();
  const std::string memsw = dir + "/memory.memsw.limit_in_bytes";
  bool has_memsw = path_exists(memsw);
  // An unlimited memory request with no swap value lifts the swap limit too (runc).
  if (limit == -1 && !swap && has_memsw) swap = -1;
  if (swap && !has_memsw) {
    if (*swap == -1)
      swap.reset();  // unlimited is what the host has anyway
    else
      return make_error(
          "linux.resources.memory.swap: memory.memsw.limit_in_bytes missing (swap accounting is "
          "off: boot with swapaccount=1)");
  }
  auto write_limit = [&] {
    return write_knob(dir, "memory.limit_in_bytes", num(*limit), "linux.resources.memory.limit");
  };
  auto write_swap = [&] {
    return write_knob(dir, "memory.memsw.limit_in_bytes", num(*swap),
                      "linux.resources.memory.swap");
  };
  // The kernel keeps memsw >= limit at every step: when raising, memsw goes first.
  if (limit && swap) {
    int64_t current = FORKER_TRY(read_int(dir + "/memory.limit_in_bytes"));
    if (*swap == -1 || current < *swap) {
      FORKER_TRY(write_swap());
      return write_limit();
    }
  }
  if (limit) FORKER_TRY(write_limit());
  if (swap) FORKER_TRY(write_swap());
  return ok();
}

Status apply_memory(const V1Dirs& dirs, const oci::MemoryResources& m) {
  std::string dir = FORKER_TRY(dir_for(dirs, "memory", "linux.resources.memory"));
  // Kernel memory limits: deprecated, and Linux 6.x accepts but ignores the kmem one; written
  // while the files exist, an error where they are gone.
  if (m.kernel)
    FORKER_TRY(write_knob(dir, "memory.kmem.limit_in_bytes", num(*m.kernel),
                          "linux.resources.memory.kernel"));
  if (m.kernel_tcp)
    FORKER_TRY(write_knob(dir, "memory.kmem.tcp.limit_in_bytes", num(*m.kernel_tcp),
                          "linux.resources.memory.kernelTCP"));
  if (m.check_before_update.value_or(false) && m.limit && *m.limit > 0) {
    int64_t usage = FORKER_TRY(read_int(dir + "/memory.usage_in_bytes"));
    if (usage > *m.limit)
      return make_error("linux.resources.memory.limit: " + num(*m.limit) +
                        " is below the current usage " + num(usage));
  }
  FORKER_TRY(write_memory_and_swap(dir, m));
  if (m.reservation)
    FORKER_TRY(write_knob(dir, "memory.soft_limit_in_bytes", num(*m.reservation),
                          "linux.resources.memory.reservation"));
  if (m.swappiness) {
    if (*m.swappiness > 100)
      return make_error("linux.resources.memory.swappiness: " + num(*m.swappiness) +
                        " is outside 0..100");
    FORKER_TRY(write_knob(dir, "memory.swappiness", num(*m.swappiness),
                          "linux.resources.memory.swappiness"));
  }
  if (m.disable_oom_killer.value_or(false))
    FORKER_TRY(
        write_knob(dir, "memory.oom_control", "1", "linux.resources.memory.disableOOMKiller"));
  if (m.use_hierarchy)
    FORKER_TRY(write_knob(dir, "memory.use_hierarchy", *m.use_hierarchy ? "1" : "0",
                          "linux.resources.memory.useHierarchy"));
  return ok();
}

Status apply_cpu(const V1Dirs& dirs, const oci::CpuResources& c) {
  bool wants_cpu = c.shares || c.quota || c.burst || c.period || c.realtime_runtime ||
                   c.realtime_period || c.idle;
  if (!wants_cpu) return ok();
  std::string dir = FORKER_TRY(dir_for(dirs, "cpu", "linux.resources.cpu"));
  if (c.shares && *c.shares != 0) {
    FORKER_TRY(write_knob(dir, "cpu.shares", num(*c.shares), "linux.resources.cpu.shares"));
    // The kernel clamps out-of-range shares silently; read back to report it (runc does).
    int64_t got = FORKER_TRY(read_int(dir + "/cpu.shares"));
    if (static_cast<uint64_t>(got) != *c.shares)
      return make_error("linux.resources.cpu.shares: " + num(*c.shares) +
                        " is out of range, the kernel set " + num(got));
  }
  // Period before quota. Lowering the period can be refused (EINVAL) while the old quota over the
  // new period exceeds the parent's; then write it again once the quota is in (runc).
  bool period_pending = false;
  if (c.period && *c.period != 0) {
    auto st = write_knob(dir, "cpu.cfs_period_us", num(*c.period), "linux.resources.cpu.period");
    if (!st) {
      if (st.error().err != EINVAL || !c.quota || *c.quota == 0) return st;
      period_pending = true;
    }
  }
  if (c.quota && *c.quota != 0) {
    FORKER_TRY(write_knob(dir, "cpu.cfs_quota_us", num(*c.quota), "linux.resources.cpu.quota"));
    if (period_pending)
      FORKER_TRY(
          write_knob(dir, "cpu.cfs_period_us", num(*c.period), "linux.resources.cpu.period"));
  }
  if (c.burst)
    FORKER_TRY(write_knob(dir, "cpu.cfs_burst_us", num(*c.burst), "linux.resources.cpu.burst"));
  if (c.idle) FORKER_TRY(write_knob(dir, "cpu.idle", num(*c.idle), "linux.resources.cpu.idle"));
  // The runtime may only be raised once the period allows it: period first.
  if (c.realtime_period && *c.realtime_period != 0)
    FORKER_TRY(write_knob(dir, "cpu.rt_period_us", num(*c.realtime_period),
                          "linux.resources.cpu.realtimePeriod"));
  if (c.realtime_runtime && *c.realtime_runtime != 0)
    FORKER_TRY(write_knob(dir, "cpu.rt_runtime_us", num(*c.realtime_runtime),
                          "linux.resources.cpu.realtimeRuntime"));
  return ok();
}

Status apply_cpuset(const V1Dirs& dirs, const oci::CpuResources& c) {
  if (c.cpus.empty() && c.mems.empty()) return ok();
  std::string dir = FORKER_TRY(dir_for(dirs, "cpuset", "linux.resources.cpu.cpus/mems"));
  if (!c.cpus.empty())
    FORKER_TRY(write_knob(dir, "cpuset.cpus", c.cpus, "linux.resources.cpu.cpus"));
  if (!c.mems.empty())
    FORKER_TRY(write_knob(dir, "cpuset.mems", c.mems, "linux.resources.cpu.mems"));
  return ok();
}

std::string device_value(int64_t major, int64_t minor, uint64_t value) {
  return std::to_string(major) + ":" + std::to_string(minor) + " " + std::to_string(value);
}

Status apply_blkio(const V1Dirs& dirs, const oci::BlockIoResources& b) {
  std::string dir = FORKER_TRY(dir_for(dirs, "blkio", "linux.resources.blockIO"));
  // Kernels whose CFQ scheduler is gone name the weight files after BFQ (runc picks the same way).
  bool bfq = !path_exists(dir + "/blkio.weight") && path_exists(dir + "/blkio.bfq.weight");
  std::string weight_file = bfq ? "blkio.bfq.weight" : "blkio.weight";
  if (b.weight)
    FORKER_TRY(
        write_knob(dir, weight_file, num(uint64_t{*b.weight}), "linux.resources.blockIO.weight"));
  if (b.leaf_weight)
    FORKER_TRY(write_knob(dir, "blkio.leaf_weight", num(uint64_t{*b.leaf_weight}),
                          "linux.resources.blockIO.leafWeight"));
  for (const auto& d : b.weight_device) {
    if (d.weight)
      FORKER_TRY(write_knob(dir, weight_file + "_device", device_value(d.major, d.minor, *d.weight),
                            "linux.resources.blockIO.weightDevice"));
    if (d.leaf_weight)
      FORKER_TRY(write_knob(dir, "blkio.leaf_weight_device",
                            device_value(d.major, d.minor, *d.leaf_weight),
                            "linux.resources.blockIO.weightDevice.leafWeight"));
  }
  struct Throttle {
    const std::vector<oci::ThrottleDevice>& devices;
    const char* file;
    const char* field;
  };
  const Throttle throttles[] = {
      {b.throttle_read_bps, "blkio.throttle.read_bps_device",
       "linux.resources.blockIO.throttleReadBpsDevice"},
      {b.throttle_write_bps, "blkio.throttle.write_bps_device",
       "linux.resources.blockIO.throttleWriteBpsDevice"},
      {b.throttle_read_iops, "blkio.throttle.read_iops_device",
       "linux.resources.blockIO.throttleReadIOPSDevice"},
      {b.throttle_write_iops, "blkio.throttle.write_iops_device",
       "linux.resources.blockIO.throttleWriteIOPSDevice"},
  };
  for (const auto& t : throttles)
    for (const auto& d : t.devices)
      FORKER_TRY(write_knob(dir, t.file, device_value(d.major, d.minor, d.rate), t.field));
  return ok();
}

Status apply_hugetlb(const V1Dirs& dirs, const std::vector<oci::HugepageLimit>& limits) {
  if (limits.empty()) return ok();
  std::string dir = FORKER_TRY(dir_for(dirs, "hugetlb", "linux.resources.hugepageLimits"));
  for (const auto& l : limits) {
    std::string file = "hugetlb." + l.page_size + ".limit_in_bytes";
    if (l.page_size.find('/') != std::string::npos || !path_exists(dir + "/" + file))
      return make_error("linux.resources.hugepageLimits: page size " + l.page_size +
                        " not supported by the host (no " + file + ")");
    FORKER_TRY(write_knob(dir, file, num(l.limit), "linux.resources.hugepageLimits"));
  }
  return ok();
}

Status apply_network(const V1Dirs& dirs, const oci::NetworkResources& n) {
  if (n.class_id) {
    std::string dir = FORKER_TRY(dir_for(dirs, "net_cls", "linux.resources.network.classID"));
    FORKER_TRY(write_knob(dir, "net_cls.classid", num(uint64_t{*n.class_id}),
                          "linux.resources.network.classID"));
  }
  if (!n.priorities.empty()) {
    std::string dir = FORKER_TRY(dir_for(dirs, "net_prio", "linux.resources.network.priorities"));
    for (const auto& [name, prio] : n.priorities)
      FORKER_TRY(write_knob(dir, "net_prio.ifpriomap", name + " " + num(uint64_t{prio}),
                            "linux.resources.network.priorities"));
  }
  return ok();
}

}  // namespace

std::string device_rule_text(const oci::DeviceRule& rule) {
  std::string type = rule.type.empty() ? "a" : rule.type;
  if (type == "a" && !rule.major && !rule.minor) return "a";
  std::string access = rule.access.empty() ? "rwm" : rule.access;
  return type + " " + device_number(rule.major) + ":" + device_number(rule.minor) + " " + access;
}

Status apply_v1(const V1Dirs& dirs, const oci::Resources& r) {
  if (!r.unified.empty())
    return make_error("linux.resources.unified: needs a cgroup v2 host (this one mounts v1)");
  if (r.cpu) FORKER_TRY(apply_cpuset(dirs, *r.cpu));
  if (!r.devices.empty()) {
    std::string dir = FORKER_TRY(dir_for(dirs, "devices", "linux.resources.devices"));
    FORKER_TRY(apply_devices(dir, r.devices));
  }
  if (r.memory) FORKER_TRY(apply_memory(dirs, *r.memory));
  if (r.cpu) FORKER_TRY(apply_cpu(dirs, *r.cpu));
  if (r.pids_limit) {
    std::string dir = FORKER_TRY(dir_for(dirs, "pids", "linux.resources.pids.limit"));
    // OCI gives -1 (and runc's 0) for "no limit".
    std::string v = *r.pids_limit > 0 ? num(*r.pids_limit) : "max";
    FORKER_TRY(write_knob(dir, "pids.max", v, "linux.resources.pids.limit"));
  }
  if (r.block_io) FORKER_TRY(apply_blkio(dirs, *r.block_io));
  FORKER_TRY(apply_hugetlb(dirs, r.hugepage_limits));
  if (r.network) FORKER_TRY(apply_network(dirs, *r.network));
  if (!r.rdma.empty()) {
    std::string dir = FORKER_TRY(dir_for(dirs, "rdma", "linux.resources.rdma"));
    for (const auto& [device, limit] : r.rdma)
      FORKER_TRY(write_knob(dir, "rdma.max", rdma_line(device, limit), "linux.resources.rdma"));
  }
  return ok();
}

Status copy_cpuset_from_parent(const std::string& dir) {
  std::string parent = dir.substr(0, dir.rfind('/'));
  for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
    std::string mine = FORKER_TRY(read_file(dir + "/" + file));
    if (!trim(mine).empty()) continue;
    std::string theirs = FORKER_TRY(read_file(parent + "/" + file));
    if (trim(theirs).empty()) continue;  // nothing to copy: the parent is empty too
    FORKER_TRY(write_knob(dir, file, trim(theirs), "cpuset copied from parent"));
  }
  return ok();
}

namespace {

std::string freezer_state(const std::string& dir) {
  auto text = read_file(dir + "/freezer.state");
  return text ? std::string(trim(*text)) : std::string();
}

void sleep_ms(long ms) {
  struct timespec ts = {0, ms * 1000000L};
  ::nanosleep(&ts, nullptr);
}

}  // namespace

Status v1_freeze(const std::string& freezer_dir) {
  // FREEZING can stall while tasks fork; writing FROZEN again restarts the walk (runc retries the
  // same way). Give up after about a second and thaw, so nothing stays half frozen.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    FORKER_TRY(write_knob(freezer_dir, "freezer.state", "FROZEN", "freeze"));
    if (freezer_state(freezer_dir) == "FROZEN") return ok();
    sleep_ms(1);
  }
  (void)write_knob(freezer_dir, "freezer.state", "THAWED", "thaw");
  return sys_error_errno(EBUSY, "freeze (timed out)", freezer_dir);
}

Status v1_thaw(const std::string& freezer_dir) {
  return write_knob(freezer_dir, "freezer.state", "THAWED", "thaw");
}

bool v1_frozen(const std::string& freezer_dir) { return freezer_state(freezer_dir) == "FROZEN"; }

}  // namespace forker::linux::cgroup_internal
