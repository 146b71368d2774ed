// The `forker` container records beside the store's snapshots (containers.hpp): container.json,
// exit.json, and names/<name> symlinks that make names unique without a lock.
#include "engine/containers.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <ctime>

#include "core/file.hpp"
#include "core/log.hpp"
#include "core/random.hpp"
#include "core/unique_fd.hpp"

namespace forker::engine {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxNameLength = 128;
// A name whose container directory exists without container.json is being created; after a
// minute its creator is taken to have died between reserve_name and save.
constexpr time_t kStaleNameSeconds = 60;

// Reads the fields of one JSON object, remembering the first error; the error names the file
// and the field ("container.json: field 'id': expected a string").
class FieldReader {
 public:
  FieldReader(const json& obj, const char* file) : obj_(obj), file_(file) {}
  std::optional<Error> error;

  void get(const char* key, std::string& out) {
    if (const json* v = find(key)) {
      if (!v->is_string()) return fail(key, "expected a string");
      out = v->get<std::string>();
    }
  }
  void get(const char* key, bool& out) {
    if (const json* v = find(key)) {
      if (!v->is_boolean()) return fail(key, "expected a boolean");
      out = v->get<bool>();
    }
  }
  void get(const char* key, int& out) {
    if (const json* v = find(key)) {
      if (!v->is_number_integer()) return fail(key, "expected an integer");
      if (v->is_number_unsigned() ? v->get<uint64_t>() > INT_MAX
                                  : (v->get<int64_t>() > INT_MAX || v->get<int64_t>() < INT_MIN))
        return fail(key, "value out of range");
      out = v->get<int>();
    }
  }
  void get(const char* key, std::vector<std::string>& out) {
    if (const json* v = find(key)) {
      if (!v->is_array()) return fail(key, "expected an array of strings");
      for (const json& s : *v) {
        if (!s.is_string()) return fail(key, "expected an array of strings");
        out.push_back(s.get<std::string>());
      }
    }
  }
  void require(const char* key) {
    if (!find(key)) fail(key, "missing");
  }
  void fail(const char* key, const std::string& what) {
    if (!error) error = make_error(std::string(file_) + ": field '" + key + "': " + what);
  }

 private:
  const json* find(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  const json& obj_;
  const char* file_;
};

// Parses TEXT as a JSON object; errors start with FILE.
Result<json> parse_object(std::string_view text, const char* file) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(std::string(file) + ": not valid JSON");
  if (!j.is_object()) return make_error(std::string(file) + ": expected a JSON object");
  return j;
}

// Ids become path components: the store's rule for snapshot ids.
bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxNameLength) return false;
  auto ok_char = [](char c, bool first) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return !first && (c == '_' || c == '.' || c == '-');
  };
  for (size_t i = 0; i < id.size(); ++i)
    if (!ok_char(id[i], i == 0)) return false;
  return true;
}

Result<std::string> read_link(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  if (n < 0) return sys_error("readlink", path);
  return std::string(buf, static_cast<size_t>(n));
}

Error name_in_use(const std::string& name, const std::string& id) {
  return make_error("the container name \"/" + name + "\" is already in use by container \"" + id +
                    "\". You have to remove (or rename) that container to be able to reuse that "
                    "name.");
}

// Serialises the replacement of stale names/ entries (the check, the unlink and the new link)
// among reservers; plain symlink() needs no lock.
Result<UniqueFd> lock_names(const std::string& names_dir) {
  std::string path = names_dir + "/.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return sys_error("open", path);
  while (::flock(fd.get(), LOCK_EX) < 0) {
    if (errno != EINTR) return sys_error("flock", path);
  }
  return fd;
}

}  // namespace

json record_json(const ContainerRecord& r) {
  return json{{"id", r.id},
              {"name", r.name},
              {"image", r.image},
              {"image_id", r.image_id},
              {"rootfs_dir", r.rootfs_dir},
              {"args", r.args},
              {"created", r.created},
              {"group", r.group},
              {"replica", r.replica},
              {"auto_remove", r.auto_remove},
              {"detached", r.detached},
              {"tty", r.tty},
              {"restart_policy", r.restart_policy},
              {"restart_max", r.restart_max},
              {"stop_signal", r.stop_signal},
              {"stop_timeout", r.stop_timeout},
              {"run_options", r.run_options},
              {"network", r.network}};
}

Result<ContainerRecord> parse_record(std::string_view text) {
  json j = FORKER_TRY(parse_object(text, "container.json"));
  ContainerRecord r;
  FieldReader f(j, "container.json");
  f.require("id");
  f.get("id", r.id);
  if (!f.error && !valid_id(r.id)) f.fail("id", "invalid container id '" + r.id + "'");
  f.get("name", r.name);
  f.get("image", r.image);
  f.get("image_id", r.image_id);
  f.get("rootfs_dir", r.rootfs_dir);
  f.get("args", r.args);
  f.get("created", r.created);
  f.get("group", r.group);
  f.get("replica", r.replica);
  f.get("auto_remove", r.auto_remove);
  f.get("detached", r.detached);
  f.get("tty", r.tty);
  f.get("restart_policy", r.restart_policy);
  f.get("restart_max", r.restart_max);
  f.get("stop_signal", r.stop_signal);
  f.get("stop_timeout", r.stop_timeout);
  if (auto it = j.find("run_options"); it != j.end()) r.run_options = *it;
  if (auto it = j.find("network"); it != j.end()) r.network = *it;
  if (f.error) return *f.error;
  return r;
}

json exit_json(const ExitRecord& e) {
  return json{{"exit_code", e.exit_code},
              {"started", e.started},
              {"finished", e.finished},
              {"oom_killed", e.oom_killed},
              {"stopped_by_user", e.stopped_by_user},
              {"ignored_sigterm", e.ignored_sigterm},
              {"restart_count", e.restart_count},
              {"error", e.error}};
}

Result<ExitRecord> parse_exit(std::string_view text) {
  json j = FORKER_TRY(parse_object(text, "exit.json"));
  ExitRecord e;
  FieldReader f(j, "exit.json");
  f.require("exit_code");
  f.get("exit_code", e.exit_code);
  f.get("started", e.started);
  f.get("finished", e.finished);
  f.get("oom_killed", e.oom_killed);
  f.get("stopped_by_user", e.stopped_by_user);
  f.get("ignored_sigterm", e.ignored_sigterm);
  f.get("restart_count", e.restart_count);
  f.get("error", e.error);
  if (f.error) return *f.error;
  return e;
}

std::string new_container_id() { return random_hex(32); }

std::string generated_name(std::string_view id) {
  static constexpr std::array<std::string_view, 40> kAdjectives = {
      "agile",  "bashful", "brave",   "bright",  "calm",      "candid",  "curious", "daring",
      "earnest", "fearless", "frank", "gentle",  "glad",      "hardy",   "humble",  "jaunty",
      "lively", "lucky",   "mellow",  "merry",   "nimble",    "noble",   "patient", "plucky",
      "polite", "proud",   "quiet",   "rapid",   "rosy",      "steady",  "sturdy",  "sunny",
      "swift",  "thoughtful", "tidy", "valiant", "vivid",     "warm",    "wise",    "witty"};
  static constexpr std::array<std::string_view, 40> kSurnames = {
      "babbage", "bohr",     "boole",   "curie",    "darwin",   "dijkstra", "dirac",   "euler",
      "faraday", "fermi",    "feynman", "franklin", "galileo",  "gauss",    "goodall", "hamilton",
      "hamming", "hodgkin",  "hopper",  "johnson",  "kepler",   "knuth",    "lamarr",  "liskov",
      "lovelace", "maxwell", "meitner", "mendel",   "newton",   "noether",  "pasteur", "planck",
      "riemann", "ritchie",  "shannon", "tesla",    "thompson", "torvalds", "turing",  "wozniak"};
  // FNV-1a over the id: any id (not only hex) picks a pair, and the same id the same pair.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : id) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return std::string(kAdjectives[h % kAdjectives.size()]) + "_" +
         std::string(kSurnames[(h >> 32) % kSurnames.size()]);
}

Status validate_name(std::string_view name) {
  std::string shown(name);
  if (name.size() > kMaxNameLength)
    return make_error("invalid container name '" + shown + "': at most " +
                      std::to_string(kMaxNameLength) + " characters are allowed");
  if (!valid_id(name))
    return make_error("invalid container name '" + shown +
                      "': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
  return ok();
}

ContainerStore::ContainerStore(std::string store_root) : root_(std::move(store_root)) {}

std::string ContainerStore::dir(const std::string& id) const {
  return root_ + "/containers/" + id;
}

namespace {

// What a names/ entry pointing at TARGET means for a new reservation.
enum class NameState { kLive, kStale };

NameState classify_name(const std::string& link, const std::string& container_dir) {
  if (path_exists(container_dir + "/container.json")) return NameState::kLive;
  struct stat st;
  if (::stat(container_dir.c_str(), &st) < 0 && errno == ENOENT) return NameState::kStale;
  // The directory exists without container.json: a create in progress, unless it is old.
  struct stat lst;
  if (::lstat(link.c_str(), &lst) < 0) return NameState::kStale;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return now.tv_sec - lst.st_mtim.tv_sec > kStaleNameSeconds ? NameState::kStale
                                                              : NameState::kLive;
}

}  // namespace

Status ContainerStore::reserve_name(const std::string& name, const std::string& id) {
  FORKER_TRY(validate_name(name));
  if (!valid_id(id)) return make_error("reserve name " + name + ": invalid container id", id);
  std::string names = root_ + "/names";
  if (::mkdir(names.c_str(), 0700) < 0 && errno != EEXIST) return sys_error("mkdir", names);
  std::string link = names + "/" + name;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (::symlink(id.c_str(), link.c_str()) == 0) return ok();
    if (errno != EEXIST) return sys_error("symlink " + id + " to", link);
    auto target = read_link(link);
    if (!target) {
      if (target.error().err == ENOENT) continue;  // released meanwhile: try again
      return std::move(target).error();
    }
    if (*target == id) return ok();
    if (!valid_id(*target) || classify_name(link, dir(*target)) == NameState::kLive)
      return name_in_use(name, *target);
    // Stale. Under the lock, check again that the link is the one judged stale before removing
    // it, so that two reservers cannot each remove the other's fresh link.
    UniqueFd lock = FORKER_TRY(lock_names(names));
    auto again = read_link(link);
    if (again && *again == *target && classify_name(link, dir(*target)) == NameState::kStale) {
      log::debug("container name " + name + ": replacing stale entry for " + *target);
      if (::unlink(link.c_str()) < 0 && errno != ENOENT) return sys_error("unlink", link);
      if (::symlink(id.c_str(), link.c_str()) == 0) return ok();
      if (errno != EEXIST) return sys_error("symlink " + id + " to", link);
    }
  }
  // Someone else took the name while we looked: report whoever holds it now.
  auto holder = read_link(link);
  return name_in_use(name, holder ? *holder : std::string("?"));
}

Status ContainerStore::release_name(const std::string& name) {
  FORKER_TRY(validate_name(name));
  std::string link = root_ + "/names/" + name;
  if (::unlink(link.c_str()) < 0 && errno != ENOENT) return sys_error("unlink", link);
  return ok();
}

Status ContainerStore::save(const ContainerRecord& r) const {
  if (!valid_id(r.id)) return make_error("save container: invalid container id", r.id);
  // A --rm container's record does not outlive it: no need to wait for the disk.
  return write_file_replace(dir(r.id) + "/container.json", record_json(r).dump(2) + "\n", 0600,
                            !r.auto_remove);
}

Status ContainerStore::save_exit(const std::string& id, const ExitRecord& e) const {
  if (!valid_id(id)) return make_error("save exit: invalid container id", id);
  return write_file_atomic(dir(id) + "/exit.json", exit_json(e).dump(2) + "\n", 0600);
}

std::optional<ExitRecord> ContainerStore::load_exit(const std::string& id) const {
  if (!valid_id(id)) return std::nullopt;
  std::string path = dir(id) + "/exit.json";
  auto text = read_file(path);
  if (!text) {
    if (text.error().err != ENOENT) log::warn(text.error().message());
    return std::nullopt;
  }
  auto e = parse_exit(*text);
  if (!e) {
    log::warn(path + ": " + e.error().message());
    return std::nullopt;
  }
  return std::move(*e);
}

namespace {

Result<ContainerRecord> load_record(const std::string& container_dir, const std::string& id) {
  std::string path = container_dir + "/container.json";
  std::string text = FORKER_TRY(read_file(path));
  ContainerRecord r = FORKER_TRY(parse_record(text).context(path));
  // A record copied into another directory would answer for the wrong snapshot.
  if (r.id != id)
    return make_error(path + ": container.json: field 'id': '" + r.id +
                      "' does not match the directory");
  return r;
}

// Ids of containers/* holding a container.json, sorted.
Result<std::vector<std::string>> record_ids(const std::string& containers) {
  std::vector<std::string> ids;
  DIR* d = ::opendir(containers.c_str());
  if (!d) {
    if (errno == ENOENT) return ids;
    return sys_error("opendir", containers);
  }
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    if (::faccessat(::dirfd(d), (n + "/container.json").c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0)
      ids.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

Result<ContainerRecord> ContainerStore::find(std::string_view name_or_id) const {
  std::string key(name_or_id);
  if (validate_name(key)) {
    // A name wins over an id prefix (docker's order).
    auto target = read_link(root_ + "/names/" + key);
    if (target && valid_id(*target) && path_exists(dir(*target) + "/container.json"))
      return load_record(dir(*target), *target);
    if (path_exists(dir(key) + "/container.json")) return load_record(dir(key), key);
  }
  if (!key.empty()) {
    auto ids = FORKER_TRY(record_ids(root_ + "/containers"));
    std::vector<std::string> matches;
    for (const auto& id : ids)
      if (id.starts_with(key)) matches.push_back(id);
    if (matches.size() > 1) return make_error("multiple containers match '" + key + "'");
    if (matches.size() == 1) return load_record(dir(matches[0]), matches[0]);
  }
  return make_error("no such container: " + key);
}

Result<std::vector<ContainerRecord>> ContainerStore::list() const {
  auto ids = FORKER_TRY(record_ids(root_ + "/containers"));
  std::vector<ContainerRecord> out;
  for (const auto& id : ids) {
    auto r = load_record(dir(id), id);
    if (!r) {
      log::warn("skipping container " + dir(id) + ": " + r.error().message());
      continue;
    }
    out.push_back(std::move(*r));
  }
  std::sort(out.begin(), out.end(), [](const ContainerRecord& a, const ContainerRecord& b) {
    return a.created != b.created ? a.created < b.created : a.id < b.id;
  });
  return out;
}

Result<std::vector<ContainerRecord>> ContainerStore::group(std::string_view name) const {
  std::vector<ContainerRecord> out;
  if (name.empty()) return out;
  auto all = FORKER_TRY(list());
  for (auto& r : all)
    if (r.group == name) out.push_back(std::move(r));
  std::stable_sort(out.begin(), out.end(), [](const ContainerRecord& a, const ContainerRecord& b) {
    return a.replica < b.replica;
  });
  return out;
}

}  // namespace forker::engine
