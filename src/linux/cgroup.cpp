// Host layout detection, cgroupsPath resolution and the Cgroup owner; the limits themselves are in
// cgroup_v1.cpp and cgroup_v2.cpp.
#include "linux/cgroup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "core/file.hpp"
#include "core/strings.hpp"
#include "core/trace.hpp"
#include "linux/cgroup_limits.hpp"

namespace forker::linux {

using cgroup_internal::V1Dirs;

namespace cgroup_internal {

Status write_knob(const std::string& dir, std::string_view file, std::string_view value,
                  std::string_view field) {
  std::string path = dir + "/" + std::string(file);
  trace::Scope step([&] { return "write " + path + " " + std::string(value); });
  return step.status(write_file(path, value)).context(std::string(field));
}

std::string rdma_line(const std::string& device, const oci::RdmaLimit& limit) {
  std::string line = device;
  if (limit.hca_handles) line += " hca_handle=" + std::to_string(*limit.hca_handles);
  if (limit.hca_objects) line += " hca_object=" + std::to_string(*limit.hca_objects);
  return line;
}

}  // namespace cgroup_internal

namespace {

// The v1 controllers the kernel knows (Documentation/admin-guide/cgroup-v1/); any other mount
// option of a cgroup mount (rw, xattr, clone_children, ...) is not a controller.
const std::set<std::string, std::less<>> kV1Controllers = {
    "blkio",   "cpu",      "cpuacct",    "cpuset", "devices", "freezer", "hugetlb", "memory",
    "net_cls", "net_prio", "perf_event", "pids",   "rdma",    "misc",    "debug"};
constexpr std::string_view kSystemdHierarchy = "name=systemd";

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_octal(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    bool escape = s[i] == '\\' && i + 3 < s.size() &&
                  std::all_of(s.begin() + i + 1, s.begin() + i + 4,
                              [](char c) { return c >= '0' && c <= '7'; });
    if (escape) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct MountLine {
  std::string device;  // maj:min, one per hierarchy
  std::string root, dir, fstype, super_options;
};

std::optional<MountLine> parse_mount_line(std::string_view line) {
  auto fields = split(line, ' ');
  auto dash = std::find(fields.begin(), fields.end(), "-");
  if (fields.size() < 6 || dash == fields.end() || fields.end() - dash < 4) return std::nullopt;
  return MountLine{fields[2], unescape_octal(fields[3]), unescape_octal(fields[4]), dash[1],
                   dash[3]};
}

// When a hierarchy is mounted more than once, the mount of its real root sees every cgroup.
bool better_mount(const std::string& root, const std::string& than) {
  return root.size() < than.size();
}

int cgroup2_rank(const MountLine& m) {
  if (m.dir == "/sys/fs/cgroup") return 0;
  if (m.dir == "/sys/fs/cgroup/unified") return 1;
  return m.root == "/" ? 2 : 3;
}

bool used_hierarchy(const CgroupMount& m) {
  return std::any_of(m.controllers.begin(), m.controllers.end(), [](const std::string& c) {
    return kV1Controllers.count(c) || c == kSystemdHierarchy;
  });
}

bool has_controller(const CgroupMount& m, std::string_view c) {
  return std::find(m.controllers.begin(), m.controllers.end(), c) != m.controllers.end();
}

void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  ::nanosleep(&ts, nullptr);
}

std::vector<std::string> subdirs(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir = ::stat((dir + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir) out.push_back(dir + "/" + name);
  }
  ::closedir(d);
  return out;
}

bool is_dir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Removes DIR and the cgroups a container nested in it, deepest first. Exiting tasks keep a
// cgroup busy for a moment after they die: retry EBUSY for about a second (runc retries too).
int remove_cgroup_tree(const CgroupFsOps& fs, const std::string& dir) {
  for (const auto& sub : subdirs(dir)) {
    int err = remove_cgroup_tree(fs, sub);
    if (err != 0 && err != ENOENT) return err;
  }
  int err = 0;
  for (long delay = 10; delay <= 640; delay *= 2) {
    err = fs.remove_dir(dir);
    if (err != EBUSY) break;
    sleep_ms(delay);
  }
  return err == ENOENT ? 0 : err;
}

Status read_pids(const std::string& dir, std::vector<pid_t>& out) {
  std::string text = FORKER_TRY(read_file(dir + "/cgroup.procs"));
  for (const auto& line : split(text, '\n')) {
    if (trim(line).empty()) continue;
    auto pid = parse_int(trim(line));
    if (!pid || *pid <= 0)
      return make_error("parse pid \"" + line + "\" in", dir + "/cgroup.procs");
    out.push_back(static_cast<pid_t>(*pid));
  }
  for (const auto& sub : subdirs(dir)) FORKER_TRY(read_pids(sub, out));
  return ok();
}

// Cgroup takes the output of resolve_cgroup_path; anything else could point outside the hierarchy
// or at its root, which destroy() would then try to remove.
Status check_resolved(const std::string& path) {
  auto resolved = resolve_cgroup_path(path, "unused");
  if (path.empty() || path[0] != '/' || !resolved || *resolved != path)
    return make_error("cgroup path \"" + path + "\" is not resolved (use resolve_cgroup_path)");
  return ok();
}

}  // namespace

std::string_view cgroup_layout_name(CgroupLayout layout) {
  switch (layout) {
    case CgroupLayout::kV1:
      return "v1";
    case CgroupLayout::kV2:
      return "v2";
    case CgroupLayout::kHybrid:
      return "hybrid";
  }
  return "?";
}

CgroupFsOps real_cgroup_fs_ops() {
  return CgroupFsOps{
      [](const std::string& dir) -> Status {
        trace::Scope step([&] { return "mkdir " + dir; });
        if (step.result(::mkdir(dir.c_str(), 0755)) < 0) return sys_error("mkdir", dir);
        return ok();
      },
      [](const std::string& dir) { return ::rmdir(dir.c_str()) < 0 ? errno : 0; },
  };
}

const CgroupMount* CgroupHost::find_v1(std::string_view controller) const {
  for (const auto& m : v1)
    if (has_controller(m, controller)) return &m;
  return nullptr;
}

Result<CgroupHost> parse_cgroup_host(std::string_view mountinfo) {
  std::map<std::string, CgroupMount> v1;  // by device: one entry per hierarchy
  std::vector<std::string> v1_order;
  std::optional<MountLine> unified;
  for (const auto& line : split(mountinfo, '\n')) {
    auto m = parse_mount_line(line);
    if (!m) continue;
    if (m->fstype == "cgroup2") {
      if (!unified || cgroup2_rank(*m) < cgroup2_rank(*unified)) unified = m;
    } else if (m->fstype == "cgroup") {
      CgroupMount mount{m->dir, m->root, {}};
      for (const auto& opt : split(m->super_options, ','))
        if (kV1Controllers.count(opt) || starts_with(opt, "name="))
          mount.controllers.push_back(opt);
      if (mount.controllers.empty()) continue;
      auto it = v1.find(m->device);
      if (it == v1.end()) {
        v1_order.push_back(m->device);
        v1.emplace(m->device, std::move(mount));
      } else if (better_mount(mount.root, it->second.root)) {
        it->second = std::move(mount);
      }
    }
  }
  CgroupHost host;
  for (const auto& dev : v1_order) host.v1.push_back(std::move(v1[dev]));
  bool has_v1_controllers = std::any_of(host.v1.begin(), host.v1.end(), [](const CgroupMount& m) {
    return std::any_of(m.controllers.begin(), m.controllers.end(),
                       [](const std::string& c) { return kV1Controllers.count(c) > 0; });
  });
  if (unified) host.unified = unified->dir;
  if (has_v1_controllers) {
    host.layout = unified ? CgroupLayout::kHybrid : CgroupLayout::kV1;
  } else if (unified) {
    // A named v1 hierarchy next to cgroup2 (name=systemd for old systemd in containers) is not
    // ours to use: the host is v2.
    host.layout = CgroupLayout::kV2;
    host.v1.clear();
  } else {
    return make_error("detect cgroups: no cgroup controller mounted (see /proc/self/mountinfo)");
  }
  return host;
}

Result<CgroupHost> detect_cgroup_host() {
  std::string text = FORKER_TRY(read_file("/proc/self/mountinfo"));
  return parse_cgroup_host(text);
}

Result<std::string> resolve_cgroup_path(std::string_view cgroups_path,
                                        std::string_view container_id) {
  if (cgroups_path.empty()) {
    if (container_id.empty() || container_id.find('/') != std::string_view::npos ||
        container_id == "." || container_id == "..")
      return make_error("cgroup path: invalid container id \"" + std::string(container_id) + "\"");
    return std::string(kDefaultCgroupParent) + "/" + std::string(container_id);
  }
  if (cgroups_path[0] != '/' && cgroups_path.find(':') != std::string_view::npos)
    return make_error("cgroupsPath slice:prefix:name needs --systemd-cgroup (got \"" +
                      std::string(cgroups_path) + "\")");
  // Clean lexically against "/" so ".." stops at the hierarchy root (runc's CleanPath).
  std::vector<std::string> parts;
  for (const auto& part : split(cgroups_path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  if (parts.empty())
    return make_error("cgroupsPath \"" + std::string(cgroups_path) +
                      "\" names the root cgroup, which a container cannot own");
  return "/" + join(parts, "/");
}

bool is_relative_cgroups_path(std::string_view cgroups_path) {
  return !cgroups_path.empty() && cgroups_path[0] != '/';
}

Status place_under_own_cgroups(CgroupHost& host, std::string_view proc_self_cgroup) {
  std::map<std::string, std::string> by_controllers;  // "cpu,cpuacct" or "" (v2) -> path
  for (const auto& line : split(proc_self_cgroup, '\n')) {
    auto first = line.find(':');
    auto second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    by_controllers[line.substr(first + 1, second - first - 1)] = line.substr(second + 1);
  }
  // The path /proc shows is relative to the hierarchy's root; a mount of a subtree (mount root
  // "/a") shows the same cgroup at dir + (path minus "/a").
  auto below_mount = [](const std::string& path, const std::string& mount_root) {
    std::string base = path;
    if (mount_root != "/" && base.starts_with(mount_root)) base = base.substr(mount_root.size());
    return base == "/" ? std::string() : base;
  };
  for (auto& m : host.v1) {
    auto it = by_controllers.find(join(m.controllers, ","));
    if (it == by_controllers.end()) {
      // /proc lists a hierarchy's controllers in the kernel's order; match as a set.
      auto same = [&m](const std::string& listed) {
        auto parts = split(listed, ',');
        return parts.size() == m.controllers.size() &&
               std::all_of(parts.begin(), parts.end(), [&m](const std::string& c) {
                 return std::find(m.controllers.begin(), m.controllers.end(), c) !=
                        m.controllers.end();
               });
      };
      it = std::find_if(by_controllers.begin(), by_controllers.end(),
                        [&same](const auto& kv) { return same(kv.first); });
    }
    if (it == by_controllers.end())
      return make_error("find own cgroup", join(m.controllers, ",") + " (not in /proc/self/cgroup)");
    m.base = below_mount(it->second, m.root);
  }
  if (!host.unified.empty()) {
    auto it = by_controllers.find("");
    if (it == by_controllers.end())
      return make_error("find own cgroup", "cgroup2 (no 0:: line in /proc/self/cgroup)");
    host.unified_base = below_mount(it->second, "/");
  }
  return ok();
}

std::map<std::string, std::string> cgroup_bases(const CgroupHost& host) {
  std::map<std::string, std::string> out;
  for (const auto& m : host.v1)
    if (!m.base.empty()) out[m.dir] = m.base;
  if (!host.unified_base.empty()) out[host.unified] = host.unified_base;
  return out;
}

void apply_cgroup_bases(CgroupHost& host, const std::map<std::string, std::string>& bases) {
  for (auto& m : host.v1)
    if (auto it = bases.find(m.dir); it != bases.end()) m.base = it->second;
  if (auto it = bases.find(host.unified); it != bases.end() && !host.unified.empty())
    host.unified_base = it->second;
}

// ---- Cgroup ----

Cgroup::Cgroup(const CgroupHost& host, std::string path) : host_(host), path_(std::move(path)) {
  if (host_.layout != CgroupLayout::kV2) {
    for (const auto& m : host_.v1) {
      if (!used_hierarchy(m)) continue;
      std::string leaf = m.dir + m.base + path_;
      v1_leaves_.push_back(leaf);
      for (const auto& c : m.controllers) v1_dirs_.emplace(c, leaf);
    }
  }
  if (!host_.unified.empty()) unified_dir_ = host_.unified + host_.unified_base + path_;
}

Cgroup::Cgroup(Cgroup&& other) noexcept
    : host_(std::move(other.host_)),
      path_(std::move(other.path_)),
      v1_dirs_(std::move(other.v1_dirs_)),
      v1_leaves_(std::move(other.v1_leaves_)),
      unified_dir_(std::move(other.unified_dir_)),
      created_(std::move(other.created_)),
      unified_fd_(std::move(other.unified_fd_)),
      armed_(std::exchange(other.armed_, false)) {}

Cgroup& Cgroup::operator=(Cgroup&& other) noexcept {
  if (this != &other) {
    if (armed_) (void)remove_created();
    host_ = std::move(other.host_);
    path_ = std::move(other.path_);
    v1_dirs_ = std::move(other.v1_dirs_);
    v1_leaves_ = std::move(other.v1_leaves_);
    unified_dir_ = std::move(other.unified_dir_);
    created_ = std::move(other.created_);
    unified_fd_ = std::move(other.unified_fd_);
    armed_ = std::exchange(other.armed_, false);
  }
  return *this;
}

Cgroup::~Cgroup() {
  // Nobody to report to here; a caller who cares calls destroy() and reads its Status.
  if (armed_) (void)remove_created();
}

std::vector<std::string> Cgroup::dirs() const {
  std::vector<std::string> out = v1_leaves_;
  if (!unified_dir_.empty()) out.push_back(unified_dir_);
  return out;
}

std::string Cgroup::controller_dir(std::string_view controller) const {
  if (host_.layout == CgroupLayout::kV2) return unified_dir_;
  auto it = v1_dirs_.find(std::string(controller));
  return it == v1_dirs_.end() ? std::string() : it->second;
}

std::string Cgroup::freezer_file() const {
  if (host_.layout == CgroupLayout::kV2) return unified_dir_ + "/cgroup.freeze";
  std::string dir = controller_dir("freezer");
  return dir.empty() ? dir : dir + "/freezer.state";
}

Result<Cgroup> Cgroup::create(const CgroupHost& host, const std::string& path,
                              const oci::Resources* resources) {
  FORKER_TRY(check_resolved(path));
  Cgroup cg(host, path);
  cg.armed_ = true;
  Status st = cg.make_dirs();
  if (st && resources) st = cg.apply(*resources);
  if (st && host.layout == CgroupLayout::kV2) {
    cg.unified_fd_.reset(::open(cg.unified_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg.unified_fd_) st = sys_error("open", cg.unified_dir_);
  }
  if (st) return cg;
  // Undo now rather than in the destructor, so an undo failure travels with the cause.
  Error err = std::move(st).error();
  if (auto undo = cg.remove_created(); !undo)
    err.add_context("(cleanup also failed: " + undo.error().message() + ")");
  cg.armed_ = false;
  return err.add_context("create cgroup " + path);
}

Result<Cgroup> Cgroup::open(const CgroupHost& host, const std::string& path,
                            std::vector<std::string> created) {
  FORKER_TRY(check_resolved(path));
  Cgroup cg(host, path);
  cg.created_ = std::move(created);
  const std::string& probe = cg.pids_dir();
  if (!is_dir(probe)) return sys_error_errno(ENOENT, "open cgroup", probe);
  if (host.layout == CgroupLayout::kV2) {
    cg.unified_fd_.reset(::open(cg.unified_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg.unified_fd_) return sys_error("open", cg.unified_dir_);
  }
  return cg;
}

Status Cgroup::make_dirs() {
  for (const auto& m : host_.v1) {
    if (host_.layout == CgroupLayout::kV2 || !used_hierarchy(m)) continue;
    FORKER_TRY(make_path(m.dir + m.base, has_controller(m, "cpuset"), false));
  }
  // On a hybrid host the unified tree only tracks processes (as runc and systemd use it): no
  // controllers are enabled there.
  if (!host_.unified.empty())
    FORKER_TRY(make_path(host_.unified + host_.unified_base, false,
                         host_.layout == CgroupLayout::kV2));
  return ok();
}

Status Cgroup::make_path(const std::string& mount, bool is_cpuset, bool enable_controllers) {
  // A concurrent delete may remove an empty shared parent (/forker) between our check and the
  // mkdir below it: the mkdir then fails with ENOENT, and the walk starts again.
  for (int attempt = 0;; ++attempt) {
    Status st = make_path_once(mount, is_cpuset, enable_controllers);
    if (st || st.error().err != ENOENT || attempt == 4) return st;
  }
}

Status Cgroup::make_path_once(const std::string& mount, bool is_cpuset, bool enable_controllers) {
  std::string dir = mount;
  for (const auto& part : split(path_, '/')) {
    if (part.empty()) continue;
    // A v2 child can only use what its parent enables in cgroup.subtree_control.
    if (enable_controllers) FORKER_TRY(cgroup_internal::enable_v2_controllers(dir));
    dir += "/" + part;
    if (!is_dir(dir)) {
      Status st = host_.fs.make_dir(dir);
      if (st) {
        created_.push_back(dir);
      } else if (st.error().err != EEXIST) {  // EEXIST: made by someone else just now; not ours
        return st;
      }
    }
    if (is_cpuset) FORKER_TRY(cgroup_internal::copy_cpuset_from_parent(dir));
  }
  return ok();
}

// Removes what create() made, in reverse: a leaf with everything nested in it, a parent only
// when empty (another container may share it).
Status Cgroup::remove_created() {
  std::vector<std::string> leaves = dirs();
  Status result;
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
    bool leaf = std::find(leaves.begin(), leaves.end(), *it) != leaves.end();
    int err = leaf ? remove_cgroup_tree(host_.fs, *it) : host_.fs.remove_dir(*it);
    if (err == 0 || err == ENOENT || (!leaf && (err == EBUSY || err == ENOTEMPTY))) continue;
    if (result) result = sys_error_errno(err, "rmdir", *it);
  }
  created_.clear();
  return result;
}

Status Cgroup::destroy() {
  armed_ = false;
  unified_fd_.reset();
  Status result;
  std::vector<std::string> leaves = dirs();
  for (const auto& leaf : leaves) {
    int err = remove_cgroup_tree(host_.fs, leaf);
    if (err != 0 && result) result = sys_error_errno(err, "rmdir", leaf);
  }
  // Leaves are gone (or reported); what is left of created_ are parents, removed only if empty.
  // forker's own default parent stays, as docker's /docker does: removing it with the last
  // container and making it again with the next one doubled the cgroup mkdir/rmdir work of every
  // run (a v1 cgroup's teardown is deferred kernel work that the next start then waits behind).
  std::vector<std::string> default_parents;
  if (starts_with(path_, std::string(kDefaultCgroupParent) + "/"))
    for (const auto& leaf : leaves)
      default_parents.push_back(leaf.substr(0, leaf.size() - path_.size()) +
                                std::string(kDefaultCgroupParent));
  std::erase_if(created_, [&](const std::string& dir) {
    return std::find(default_parents.begin(), default_parents.end(), dir) != default_parents.end();
  });
  if (auto st = remove_created(); !st && result) result = std::move(st);
  return result;
}

Status Cgroup::apply(const oci::Resources& resources) {
  if (host_.layout == CgroupLayout::kV2) return cgroup_internal::apply_v2(unified_dir_, resources);
  return cgroup_internal::apply_v1(v1_dirs_, resources);
}

Status Cgroup::add_process(pid_t pid) {
  for (const auto& dir : dirs()) {
    std::string path = dir + "/cgroup.procs";
    trace::Scope step([&] { return "write " + path + " " + std::to_string(pid); });
    FORKER_TRY(step.status(write_file(path, std::to_string(pid))).context("join cgroup " + path_));
  }
  return ok();
}

// The directory whose cgroup.procs lists the container: the unified one where it exists (one
// tree holds every process), else a v1 hierarchy every task must be in.
const std::string& Cgroup::pids_dir() const {
  if (!unified_dir_.empty()) return unified_dir_;
  for (const char* c : {"pids", "freezer", "memory", "devices", "cpu"}) {
    auto it = v1_dirs_.find(c);
    if (it != v1_dirs_.end()) return it->second;
  }
  return v1_leaves_.empty() ? unified_dir_ : v1_leaves_.front();
}

Result<std::vector<pid_t>> Cgroup::pids() const {
  std::vector<pid_t> out;
  FORKER_TRY(read_pids(pids_dir(), out).context("list cgroup " + path_));
  return out;
}

Status Cgroup::freeze() {
  if (host_.layout == CgroupLayout::kV2) return cgroup_internal::v2_freeze(unified_dir_);
  auto it = v1_dirs_.find("freezer");
  if (it == v1_dirs_.end()) return make_error("freeze cgroup " + path_, "(freezer not mounted)");
  return cgroup_internal::v1_freeze(it->second);
}

Status Cgroup::thaw() {
  if (host_.layout == CgroupLayout::kV2) return cgroup_internal::v2_thaw(unified_dir_);
  auto it = v1_dirs_.find("freezer");
  if (it == v1_dirs_.end()) return make_error("thaw cgroup " + path_, "(freezer not mounted)");
  return cgroup_internal::v1_thaw(it->second);
}

bool Cgroup::frozen() const {
  if (host_.layout == CgroupLayout::kV2) return cgroup_internal::v2_frozen(unified_dir_);
  auto it = v1_dirs_.find("freezer");
  return it != v1_dirs_.end() && cgroup_internal::v1_frozen(it->second);
}

Status Cgroup::kill_all(int signal) {
  // cgroup.kill (Linux 5.14) kills the whole subtree atomically, forks included.
  if (host_.layout == CgroupLayout::kV2 && signal == SIGKILL &&
      path_exists(unified_dir_ + "/cgroup.kill"))
    return write_file(unified_dir_ + "/cgroup.kill", "1").context("kill cgroup " + path_);
  // Otherwise freeze, so no task forks between reading the list and signalling it. Best effort:
  // without a freezer we still signal (runc only warns too).
  bool was_frozen = frozen();
  bool froze = !was_frozen && freeze().has_value();
  auto list = pids();
  Status result;
  if (!list) {
    result = std::move(list).error();
  } else {
    for (pid_t pid : *list) {
      if (::kill(pid, signal) < 0 && errno != ESRCH && result)
        result = sys_error(
            "kill " + std::to_string(pid) + " with signal " + std::to_string(signal) + " in cgroup",
            path_);
    }
  }
  // Thaw what we froze; a paused container stays paused, except that SIGKILLed tasks must run to
  // die (a v1-frozen task does not act on SIGKILL).
  if (froze || (was_frozen && signal == SIGKILL)) {
    if (auto st = thaw(); !st && result) result = std::move(st);
  }
  return result;
}

}  // namespace forker::linux
