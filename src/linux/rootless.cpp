#include "linux/rootless.hpp"

#include <unistd.h>

#include <cstdlib>

#include "core/file.hpp"
#include "core/strings.hpp"

namespace forker::linux {

bool in_user_namespace() {
  auto text = read_file("/proc/self/uid_map");
  if (!text) return false;
  auto fields = split(*text, ' ');
  std::erase(fields, std::string());
  // The initial namespace maps every id to itself: "0 0 4294967295".
  return !(fields.size() == 3 && fields[0] == "0" && fields[1] == "0" &&
           fields[2].starts_with("4294967295"));
}

bool running_rootless() { return geteuid() != 0 || in_user_namespace(); }

std::string default_state_root() {
  if (!running_rootless()) return "/run/forker-oci";
  const char* xdg = getenv("XDG_RUNTIME_DIR");
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/forker-oci";
  return "/tmp/forker-oci-" + std::to_string(geteuid());
}

namespace {

// Writable means the container's directory could be made (or joined) here.
bool dir_writable(const std::string& mount, const std::string& path, std::string& reason) {
  std::string dir = mount + path;
  // The deepest existing ancestor decides whether we may make the rest.
  while (!path_exists(dir) && dir.size() > mount.size()) dir = dir.substr(0, dir.rfind('/'));
  std::string check = path_exists(mount + path) ? mount + path + "/cgroup.procs" : dir;
  if (access(check.c_str(), W_OK) == 0) return true;
  reason = check + " is not writable";
  return false;
}

}  // namespace

bool cgroup_writable(const CgroupHost& host, const std::string& path, std::string& reason) {
  if (host.layout != CgroupLayout::kV2)
    for (const auto& m : host.v1)
      if (!dir_writable(m.dir + m.base, path, reason)) return false;
  if (!host.unified.empty() && !dir_writable(host.unified + host.unified_base, path, reason))
    return false;
  return true;
}

std::vector<std::string> cgroup_limits_set(const oci::Resources& r) {
  std::vector<std::string> out;
  auto add = [&out](bool set, const char* name) {
    if (set) out.push_back(name);
  };
  bool allows = false;
  for (const auto& d : r.devices) allows |= d.allow;
  add(allows, "devices");
  if (r.memory) {
    const auto& m = *r.memory;
    add(m.limit.has_value(), "memory.limit");
    add(m.reservation.has_value(), "memory.reservation");
    add(m.swap.has_value(), "memory.swap");
    add(m.kernel.has_value(), "memory.kernel");
    add(m.kernel_tcp.has_value(), "memory.kernelTCP");
    add(m.swappiness.has_value(), "memory.swappiness");
    add(m.disable_oom_killer.value_or(false), "memory.disableOOMKiller");
  }
  if (r.cpu) {
    const auto& c = *r.cpu;
    add(c.shares.has_value(), "cpu.shares");
    add(c.quota.has_value(), "cpu.quota");
    add(c.burst.has_value(), "cpu.burst");
    add(c.period.has_value(), "cpu.period");
    add(c.realtime_runtime.has_value(), "cpu.realtimeRuntime");
    add(c.realtime_period.has_value(), "cpu.realtimePeriod");
    add(!c.cpus.empty(), "cpu.cpus");
    add(!c.mems.empty(), "cpu.mems");
    add(c.idle.has_value(), "cpu.idle");
  }
  add(r.pids_limit.has_value(), "pids.limit");
  if (r.block_io) {
    const auto& b = *r.block_io;
    add(b.weight.has_value() || b.leaf_weight.has_value() || !b.weight_device.empty(),
        "blockIO.weight");
    add(!b.throttle_read_bps.empty() || !b.throttle_write_bps.empty() ||
            !b.throttle_read_iops.empty() || !b.throttle_write_iops.empty(),
        "blockIO.throttle");
  }
  add(!r.hugepage_limits.empty(), "hugepageLimits");
  add(r.network && (r.network->class_id || !r.network->priorities.empty()), "network");
  add(!r.rdma.empty(), "rdma");
  add(!r.unified.empty(), "unified");
  return out;
}

std::string unapplied_limits_warning(const oci::Spec& spec, const std::string& reason) {
  if (!spec.linux.resources) return "";
  std::vector<std::string> names = cgroup_limits_set(*spec.linux.resources);
  if (names.empty()) return "";
  for (auto& n : names) n = "linux.resources." + n;
  return "rootless: no cgroup delegated to uid " + std::to_string(geteuid()) + " (" + reason +
         "): these limits are NOT applied: " + join(names, ", ");
}

}  // namespace forker::linux
