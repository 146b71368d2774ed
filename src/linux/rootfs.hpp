// The container's filesystem tree: a plan built and checked in the parent from config.json,
// applied in the child inside its new mount namespace (mounts, /dev, pivot_root, masks).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "linux/kernel.hpp"
#include "linux/mount_options.hpp"
#include "linux/overlay.hpp"
#include "oci/spec.hpp"

namespace forker::linux {

enum class MountKind { Bind, Proc, Sysfs, Cgroup, Other };

struct MountStep {
  MountKind kind = MountKind::Other;
  std::string source;       // host path for binds (absolute), else the fs source name
  std::string destination;  // absolute path inside the container
  std::string type;
  MountOptions options;
  // Idmapped bind mounts: the mappings, and the user namespace fd made from them by the parent.
  std::vector<oci::IdMapping> uid_mappings, gid_mappings;
  int userns_fd = -1;
};

// One cgroup hierarchy as the container sees it under a "cgroup" mount.
struct CgroupMountEntry {
  std::string name;       // directory under the mount: "memory", "cpu,cpuacct", "unified", ""
  std::string fstype;     // "cgroup" or "cgroup2"
  std::string options;    // "memory", "name=systemd", "" for cgroup2
  std::string host_path;  // the container's cgroup directory on the host (for a bind)
};

struct RootfsPlan {
  std::string rootfs;  // absolute host path
  unsigned long root_propagation = 0;
  bool root_propagation_given = false;  // linux.rootfsPropagation set: applied to "/" again
  bool readonly = false;
  bool no_pivot = false;
  bool new_cgroupns = false;
  bool in_userns = false;
  bool setup_dev = true;  // false when /dev comes from a bind mount
  bool host_mount_ns = false;  // no mount namespace: mount under the rootfs in the host's, chroot
  // A detached mount (fsmount, open_tree) attached on rootfs in place of its self-bind, so the
  // container's root never shows in the host's mount table. Borrowed; needs a mount namespace.
  int root_mount_fd = -1;
  // With no root_mount_fd: an overlay the init makes itself and attaches the same way. A rootless
  // runtime cannot mount one in the host's user namespace; the init can, in its own.
  std::optional<OverlaySpec> root_overlay;
  std::vector<MountStep> mounts;
  std::vector<oci::Device> devices;  // defaults + linux.devices
  std::vector<std::string> masked_paths, readonly_paths;
  std::vector<CgroupMountEntry> cgroup_entries;
  std::string mount_label;
};

Result<RootfsPlan> plan_rootfs(const oci::Spec& spec, const std::string& bundle, bool no_pivot);

// Before pivot_root: propagation, the rootfs bind (or root_mount_fd / root_overlay attached),
// every mount, /dev.
Status prepare_rootfs(Kernel& kernel, const RootfsPlan& plan);
// pivot_root into the rootfs (or MS_MOVE + chroot with no_pivot) and drop the old root.
Status enter_rootfs(Kernel& kernel, const RootfsPlan& plan);
// After pivot_root: masked and read-only paths, a read-only root.
Status finish_rootfs(Kernel& kernel, const RootfsPlan& plan);

// Detaches every mount at or below PATH in our mount namespace, deepest first (the mounts of a
// container without a mount namespace of its own). Best effort: used on delete and rollback.
void unmount_under(const std::string& path);

// The devices every container gets (null, zero, full, random, urandom, tty).
std::vector<oci::Device> default_devices();

}  // namespace forker::linux
