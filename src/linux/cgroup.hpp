// Control groups for one container: detect how the host mounts cgroups (v1, v2 or hybrid), resolve
// linux.cgroupsPath, create the directories, write every limit before any process joins, and later
// join, list, signal, freeze and remove. Everything takes its directories from CgroupHost, so unit
// tests run the same code on a temp dir of fixture files (as youki's libcgroups tests do).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/unique_fd.hpp"
#include "oci/spec.hpp"

namespace forker::linux {

enum class CgroupLayout {
  kV1,      // only cgroup v1 hierarchies
  kV2,      // cgroup2 alone (at /sys/fs/cgroup on systemd hosts); no v1 controller mounted
  kHybrid,  // v1 controllers plus a cgroup2 mount (systemd's /sys/fs/cgroup/unified) for tracking
};
std::string_view cgroup_layout_name(CgroupLayout layout);  // "v1", "v2", "hybrid"

// One mounted v1 hierarchy.
struct CgroupMount {
  std::string dir;                       // mount point: /sys/fs/cgroup/memory
  std::string root;                      // mount root (mountinfo field 4); "/" unless bind-mounted
  std::vector<std::string> controllers;  // "cpu", "cpuacct"; a named hierarchy: "name=systemd"
  // The cgroup (below dir) that container paths are joined to: "" for absolute cgroupsPaths; the
  // runtime's own cgroup in this hierarchy for relative ones (runc's rule).
  std::string base;
};

// The two calls a plain directory cannot mimic: the kernel fills a new cgroup directory with its
// control files and lets rmdir remove it with them. Unit tests swap these to work in a temp dir.
struct CgroupFsOps {
  std::function<Status(const std::string& dir)> make_dir;  // default: mkdir(dir, 0755)
  std::function<int(const std::string& dir)> remove_dir;   // default: rmdir; 0 or an errno
};
CgroupFsOps real_cgroup_fs_ops();

struct CgroupHost {
  CgroupLayout layout = CgroupLayout::kV2;
  std::vector<CgroupMount> v1;  // one entry per v1 hierarchy; empty on a V2 host
  std::string unified;          // the cgroup2 mount point; empty on a V1 host
  std::string unified_base;     // as CgroupMount::base, for the unified hierarchy
  CgroupFsOps fs = real_cgroup_fs_ops();

  // The hierarchy holding CONTROLLER ("memory", "cpuacct", "name=systemd"); null if not mounted.
  const CgroupMount* find_v1(std::string_view controller) const;
};

// Reads the layout from the text of /proc/self/mountinfo.
Result<CgroupHost> parse_cgroup_host(std::string_view mountinfo);
// Same, from this process's /proc/self/mountinfo.
Result<CgroupHost> detect_cgroup_host();

// A relative linux.cgroupsPath ("a/b") sits under the runtime's own cgroup in each hierarchy,
// which may differ per hierarchy (here memory is /process_api/..., the rest /).
bool is_relative_cgroups_path(std::string_view cgroups_path);
// Sets every hierarchy's base from the text of /proc/self/cgroup ("4:memory:/x", "0::/y").
Status place_under_own_cgroups(CgroupHost& host, std::string_view proc_self_cgroup);
// The bases to keep in the container's state (mount dir -> base; empty when all are "") and to
// put back into a freshly detected host by later commands.
std::map<std::string, std::string> cgroup_bases(const CgroupHost& host);
void apply_cgroup_bases(CgroupHost& host, const std::map<std::string, std::string>& bases);

// Where a container's cgroup goes when config.json gives no linux.cgroupsPath: /forker/<id>.
inline constexpr std::string_view kDefaultCgroupParent = "/forker";

// linux.cgroupsPath -> the clean path below each hierarchy's root ("/forker/c1"). Absolute and
// relative paths both sit under the hierarchy root; ".." cannot climb above it. The systemd form
// "slice:prefix:name" is refused: it needs the systemd driver.
Result<std::string> resolve_cgroup_path(std::string_view cgroups_path,
                                        std::string_view container_id);

// A container's cgroup in every hierarchy it uses. Made by create() it is armed: destroying it
// removes the directories create() made, unless commit() was called first (create keeps it as a
// local during setup and commits on success). Made by open() it is never armed.
class [[nodiscard]] Cgroup {
 public:
  // Makes the directories (v1: every mounted controller and name=systemd; v2 or hybrid: the
  // unified one) and writes RESOURCES (may be null) before any process joins. On failure every
  // directory it made is removed again, and only those.
  static Result<Cgroup> create(const CgroupHost& host, const std::string& path,
                               const oci::Resources* resources);
  // Reattaches to an existing cgroup (kill, delete, update, pause from another invocation).
  // CREATED, as create_dirs() listed it then, lets destroy() remove the parents create() made.
  static Result<Cgroup> open(const CgroupHost& host, const std::string& path,
                             std::vector<std::string> created = {});

  Cgroup(Cgroup&& other) noexcept;
  Cgroup& operator=(Cgroup&& other) noexcept;
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;
  ~Cgroup();

  // Keeps the directories past this object's life.
  void commit() { armed_ = false; }

  // Writes limits (also used by `update`).
  Status apply(const oci::Resources& resources);
  // Writes PID to cgroup.procs in every hierarchy.
  Status add_process(pid_t pid);
  // Every process in the cgroup and in cgroups nested below it.
  Result<std::vector<pid_t>> pids() const;
  // Signals every process. v2 SIGKILL uses cgroup.kill when the kernel has it (5.14); otherwise
  // the cgroup is frozen while each pid is signalled, so nothing forks past the list, then thawed
  // (unless it was frozen before: a paused container stays paused).
  Status kill_all(int signal);
  // v1 freezer.state / v2 cgroup.freeze, waiting until the kernel reports the state reached.
  Status freeze();
  Status thaw();
  bool frozen() const;
  // Removes the leaf directories (and cgroups nested in them), retrying briefly while exiting
  // processes still hold them (EBUSY), then the parents create() made, each only if empty.
  // forker's default parent (/forker) is kept, like docker's /docker. Does not kill: call
  // kill_all first.
  Status destroy();

  // An fd on the v2 directory for clone3(CLONE_INTO_CGROUP); -1 unless the host is pure v2 (on a
  // hybrid host the v1 hierarchies still need add_process).
  int unified_dir_fd() const { return unified_fd_.get(); }
  const std::string& path() const { return path_; }
  const CgroupHost& host() const { return host_; }
  // Every leaf directory, v1 ones first, the unified one last.
  std::vector<std::string> dirs() const;
  // The directory holding CONTROLLER's files ("memory", "cpuacct"): the unified one on a v2
  // host, the controller's v1 hierarchy otherwise; "" when the host does not mount it.
  std::string controller_dir(std::string_view controller) const;
  // The file that says whether the cgroup is frozen: v1 freezer.state ("FROZEN"), v2
  // cgroup.freeze ("1"); "" without a freezer.
  std::string freezer_file() const;
  // The directories create() made (leaves and parents), for the container's state.
  const std::vector<std::string>& created_dirs() const { return created_; }

 private:
  Cgroup(const CgroupHost& host, std::string path);
  Status make_dirs();
  Status make_path(const std::string& mount, bool is_cpuset, bool enable_controllers);
  Status make_path_once(const std::string& mount, bool is_cpuset, bool enable_controllers);
  Status remove_created();
  const std::string& pids_dir() const;

  CgroupHost host_;
  std::string path_;
  std::map<std::string, std::string> v1_dirs_;  // controller -> leaf dir; joined mounts share one
  std::vector<std::string> v1_leaves_;          // one leaf per hierarchy
  std::string unified_dir_;                     // empty on V1
  std::vector<std::string> created_;            // dirs create() made, in the order made
  UniqueFd unified_fd_;
  bool armed_ = false;
};

}  // namespace forker::linux
