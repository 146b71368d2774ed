#include "runtime/container_cgroup.hpp"

#include "core/log.hpp"
#include "linux/rootless.hpp"

namespace forker::runtime {

Result<std::optional<linux::Cgroup>> make_container_cgroup(const linux::CgroupHost& host,
                                                           const std::string& path,
                                                           const oci::Resources* resources,
                                                           const oci::Spec& spec) {
  std::string reason;
  if (linux::running_rootless() && !linux::cgroup_writable(host, path, reason)) {
    // runc and podman drop such limits silently; say which ones, once.
    std::string warning = linux::unapplied_limits_warning(spec, reason);
    if (!warning.empty()) log::warn(warning);
    return std::optional<linux::Cgroup>();
  }
  auto cg = FORKER_TRY(linux::Cgroup::create(host, path, resources).context("cgroup " + path));
  return std::optional<linux::Cgroup>(std::move(cg));
}

}  // namespace forker::runtime
