#include "oci/state.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/file.hpp"
#include "core/strings.hpp"

namespace forker::oci {

using json = nlohmann::json;

const char* status_name(ContainerStatus s) {
  switch (s) {
    case ContainerStatus::Creating: return "creating";
    case ContainerStatus::Created: return "created";
    case ContainerStatus::Running: return "running";
    case ContainerStatus::Paused: return "paused";
    case ContainerStatus::Stopped: return "stopped";
  }
  return "unknown";
}

std::string state_json(const ContainerState& st, ContainerStatus status, bool runc_fields) {
  json j = {{"ociVersion", "1.1.0"}, {"id", st.id}, {"status", status_name(status)}};
  // The spec: pid is required while created or running.
  if (status != ContainerStatus::Stopped) j["pid"] = st.pid;
  else j["pid"] = 0;
  j["bundle"] = st.bundle;
  if (runc_fields) {
    j["rootfs"] = st.rootfs;
    j["created"] = st.created;
    j["owner"] = st.owner;
  }
  j["annotations"] = st.annotations;
  return j.dump(2);
}

std::string rfc3339_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  snprintf(buf + n, sizeof buf - n, ".%09ldZ", ts.tv_nsec);
  return buf;
}

namespace {

// Parses /proc/PID/stat: state letter and start time (field 22). The comm field may hold
// spaces and parentheses, so fields are counted from the last ')'.
std::optional<std::pair<char, uint64_t>> read_proc_stat(pid_t pid) {
  auto text = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  size_t close = text->rfind(')');
  if (close == std::string::npos || close + 2 >= text->size()) return std::nullopt;
  auto fields = split(std::string_view(*text).substr(close + 2), ' ');
  if (fields.size() < 20) return std::nullopt;
  auto start = parse_uint(fields[19]);  // field 22 overall; fields[0] is field 3
  if (!start || fields[0].empty()) return std::nullopt;
  return std::make_pair(fields[0][0], *start);
}

}  // namespace

std::optional<uint64_t> process_start_time(pid_t pid) {
  auto st = read_proc_stat(pid);
  if (!st) return std::nullopt;
  return st->second;
}

ContainerStatus derive_status(const std::string& container_dir, const ContainerState& st) {
  if (st.pid <= 0) return ContainerStatus::Stopped;
  auto stat = read_proc_stat(st.pid);
  if (!stat || stat->second != st.pid_start_time) return ContainerStatus::Stopped;
  if (stat->first == 'Z' || stat->first == 'X') return ContainerStatus::Stopped;
  if (path_exists(container_dir + "/exec.fifo")) return ContainerStatus::Created;
  // v1 "FROZEN" (not "FREEZING": runc counts only a finished freeze), v2 "1".
  if (auto freezer = read_file(container_dir + "/" + kFreezerLink)) {
    std::string_view v = trim(*freezer);
    if (v == "FROZEN" || v == "1") return ContainerStatus::Paused;
  }
  return ContainerStatus::Running;
}

namespace {

json to_json(const ContainerState& st) {
  return json{{"id", st.id},
              {"pid", st.pid},
              {"pid_start_time", st.pid_start_time},
              {"bundle", st.bundle},
              {"rootfs", st.rootfs},
              {"created", st.created},
              {"owner", st.owner},
              {"cgroups_path", st.cgroups_path},
              {"cgroup_dirs_created", st.cgroup_dirs_created},
              {"cgroup_bases", st.cgroup_bases},
              {"systemd_cgroup", st.systemd_cgroup},
              {"annotations", st.annotations},
              {"config", st.config_json}};
}

Result<ContainerState> from_json(const std::string& text, const std::string& path) {
  try {
    json j = json::parse(text);
    ContainerState st;
    st.id = j.at("id").get<std::string>();
    st.pid = j.at("pid").get<pid_t>();
    st.pid_start_time = j.at("pid_start_time").get<uint64_t>();
    st.bundle = j.at("bundle").get<std::string>();
    st.rootfs = j.at("rootfs").get<std::string>();
    st.created = j.at("created").get<std::string>();
    st.owner = j.value("owner", "");
    st.cgroups_path = j.value("cgroups_path", "");
    st.cgroup_dirs_created = j.value("cgroup_dirs_created", std::vector<std::string>{});
    st.cgroup_bases =
        j.value("cgroup_bases", std::map<std::string, std::string>{});
    st.systemd_cgroup = j.value("systemd_cgroup", false);
    st.annotations = j.value("annotations", std::map<std::string, std::string>{});
    st.config_json = j.value("config", "");
    return st;
  } catch (const json::exception& e) {
    return make_error("parse " + path + ": " + e.what());
  }
}

Status lock_dir(int fd, const std::string& path) {
  if (flock(fd, LOCK_EX) < 0) return sys_error("flock", path);
  return ok();
}

Status remove_tree_at(int parent_fd, const std::string& name, const std::string& shown) {
  int fd = openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    DIR* d = fdopendir(fd);
    if (!d) {
      close(fd);
      return sys_error("fdopendir", shown);
    }
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      if (unlinkat(dirfd(d), n.c_str(), 0) < 0) {
        if (errno == EISDIR) {
          auto st = remove_tree_at(dirfd(d), n, shown + "/" + n);
          if (!st) {
            closedir(d);
            return st;
          }
        } else if (errno != ENOENT) {
          Error err = sys_error("unlink", shown + "/" + n);
          closedir(d);
          return err;
        }
      }
    }
    closedir(d);
  }
  if (unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT)
    return sys_error("rmdir", shown);
  return ok();
}

}  // namespace

Result<StateDir> StateDir::create(const std::string& root, const std::string& id) {
  if (mkdir(root.c_str(), 0711) < 0 && errno != EEXIST) FORKER_TRY(mkdir_all(root, 0711));
  std::string path = root + "/" + id;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (mkdir(path.c_str(), 0711) == 0) {
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!fd) return sys_error("open", path);
      FORKER_TRY(lock_dir(fd.get(), path));
      return StateDir(path, std::move(fd));
    }
    if (errno != EEXIST) return sys_error("mkdir", path);
    // Left by a create that was killed? Only if nobody holds its lock and it has no state.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd || flock(fd.get(), LOCK_EX | LOCK_NB) < 0 ||
        faccessat(fd.get(), "state.json", F_OK, 0) == 0)
      return make_error("container " + id + " already exists");
    FORKER_TRY(remove_tree_at(AT_FDCWD, path, path));
  }
  return make_error("container " + id + " already exists");
}

Result<StateDir> StateDir::open(const std::string& root, const std::string& id) {
  std::string path = root + "/" + id;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return make_error("container " + id + " does not exist");
    return sys_error("open", path);
  }
  FORKER_TRY(lock_dir(fd.get(), path));
  if (faccessat(fd.get(), "state.json", F_OK, 0) < 0)
    return make_error("container " + id + " does not exist");
  return StateDir(path, std::move(fd));
}

Status StateDir::save(const ContainerState& st) const {
  return write_file_atomic(path_ + "/state.json", to_json(st).dump(), 0600);
}

Result<ContainerState> StateDir::load() const {
  std::string p = path_ + "/state.json";
  std::string text = FORKER_TRY(read_file(p));
  return from_json(text, p);
}

Status StateDir::remove() {
  auto st = remove_tree_at(AT_FDCWD, path_, path_);
  dir_.reset();
  return st;
}

Result<std::vector<std::string>> list_containers(const std::string& root) {
  std::vector<std::string> ids;
  DIR* d = opendir(root.c_str());
  if (!d) {
    if (errno == ENOENT) return ids;
    return sys_error("opendir", root);
  }
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    if (faccessat(dirfd(d), (n + "/state.json").c_str(), F_OK, 0) == 0) ids.push_back(n);
  }
  closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<ContainerState> read_state(const std::string& root, const std::string& id) {
  std::string p = root + "/" + id + "/state.json";
  auto text = read_file(p);
  if (!text) {
    if (text.error().err == ENOENT) return make_error("container " + id + " does not exist");
    return std::move(text).error();
  }
  return from_json(*text, p);
}

}  // namespace forker::oci
