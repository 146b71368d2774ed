// The parsers behind `forker run`'s flags and the image config (container_config.hpp), each
// with docker's rules and an error that names the flag and the value as typed.
#include <linux/capability.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <set>

#include "core/strings.hpp"
#include "engine/container_config.hpp"
#include "linux/capabilities.hpp"

namespace forker::engine {
namespace {

using json = nlohmann::json;

Error flag_error(std::string_view flag, std::string_view value, std::string_view what) {
  return make_error(std::string(flag) + " '" + std::string(value) + "': " + std::string(what));
}

// Every capability name this build's headers and libcap know: "CAP_CHOWN", ...
const std::vector<std::string>& known_capabilities() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
      std::string name = linux::capability_name(cap);
      if (starts_with(name, "CAP_")) out.push_back(std::move(name));
    }
    return out;
  }();
  return names;
}

Result<std::vector<std::string>> string_list(const json& j, const std::string& field) {
  std::vector<std::string> out;
  if (j.is_null()) return out;
  if (!j.is_array()) return make_error("image config " + field + ": expected an array of strings");
  for (const json& s : j) {
    if (!s.is_string())
      return make_error("image config " + field + ": expected an array of strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

Result<std::string> string_field(const json& config, const char* key) {
  const json& v = config.value(key, json());
  if (v.is_null()) return std::string();
  if (!v.is_string())
    return make_error(std::string("image config config.") + key + ": expected a string");
  return v.get<std::string>();
}

// The keys of {"80/tcp": {}, ...}, the form docker uses for sets.
Result<std::vector<std::string>> key_set(const json& j, const std::string& field) {
  std::vector<std::string> out;
  if (j.is_null()) return out;
  if (!j.is_object()) return make_error("image config " + field + ": expected an object");
  for (const auto& [key, unused] : j.items()) out.push_back(key);
  return out;
}

bool valid_volume_name(std::string_view name) {
  // docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]+
  if (name.size() < 2 || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

bool is_propagation(std::string_view s) {
  return s == "private" || s == "rprivate" || s == "shared" || s == "rshared" || s == "slave" ||
         s == "rslave";
}

// Lexical clean of an absolute path, as Go's filepath.Clean: "//a/./b/../c/" -> "/a/c".
std::string clean_path(std::string_view path) {
  std::vector<std::string> parts;
  for (const std::string& p : split(path, '/')) {
    if (p.empty() || p == ".") continue;
    if (p == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(p);
  }
  return "/" + join(parts, "/");
}

// The tmpfs flags --tmpfs takes, each with the kernel flag it sets or clears: the last of a
// pair wins, as in moby's MergeTmpfsOptions.
const char* tmpfs_flag_group(std::string_view opt) {
  struct Entry {
    std::string_view name;
    const char* group;
  };
  // clang-format off
  static constexpr Entry kFlags[] = {
      {"rw", "ro"}, {"ro", "ro"}, {"exec", "exec"}, {"noexec", "exec"},
      {"suid", "suid"}, {"nosuid", "suid"}, {"dev", "dev"}, {"nodev", "dev"},
      {"atime", "atime"}, {"noatime", "atime"}, {"diratime", "diratime"},
      {"nodiratime", "diratime"}, {"relatime", "relatime"}, {"norelatime", "relatime"},
      {"strictatime", "strictatime"}, {"nostrictatime", "strictatime"}, {"sync", "sync"},
      {"async", "sync"}, {"dirsync", "dirsync"}, {"mand", "mand"}, {"nomand", "mand"},
      {"private", "propagation"}, {"rprivate", "propagation"}, {"shared", "propagation"},
      {"rshared", "propagation"}, {"slave", "propagation"}, {"rslave", "propagation"},
      {"tmpcopyup", "tmpcopyup"},
  };
  // clang-format on
  for (const Entry& e : kFlags)
    if (e.name == opt) return e.group;
  return nullptr;
}

bool is_tmpfs_data_key(std::string_view key) {
  return key == "size" || key == "mode" || key == "uid" || key == "gid" || key == "nr_inodes" ||
         key == "nr_blocks" || key == "mpol" || key == "huge";
}

}  // namespace

Result<ImageDefaults> parse_image_defaults(std::string_view image_config_json) {
  const json doc = json::parse(image_config_json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return make_error("image config: not a JSON object");
  ImageDefaults d;
  const json& c = doc.value("config", json());
  if (c.is_null()) return d;
  if (!c.is_object()) return make_error("image config config: expected an object");
  d.env = FORKER_TRY(string_list(c.value("Env", json()), "config.Env"));
  d.entrypoint = FORKER_TRY(string_list(c.value("Entrypoint", json()), "config.Entrypoint"));
  d.cmd = FORKER_TRY(string_list(c.value("Cmd", json()), "config.Cmd"));
  d.working_dir = FORKER_TRY(string_field(c, "WorkingDir"));
  d.user = FORKER_TRY(string_field(c, "User"));
  d.stop_signal = FORKER_TRY(string_field(c, "StopSignal"));
  d.exposed_ports = FORKER_TRY(key_set(c.value("ExposedPorts", json()), "config.ExposedPorts"));
  d.volumes = FORKER_TRY(key_set(c.value("Volumes", json()), "config.Volumes"));
  const json& labels = c.value("Labels", json());
  if (!labels.is_null()) {
    if (!labels.is_object()) return make_error("image config config.Labels: expected an object");
    for (const auto& [key, value] : labels.items()) {
      if (!value.is_string())
        return make_error("image config config.Labels " + key + ": expected a string");
      d.labels[key] = value.get<std::string>();
    }
  }
  return d;
}

const std::vector<std::string>& default_capabilities() {
  // moby's oci/caps/defaults.go.
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  return caps;
}

std::vector<std::string> all_capabilities() {
  std::vector<std::string> out = known_capabilities();
  // Only what the running kernel has, as docker's GetAllCapabilities: a newer name would make
  // the runtime warn on every start.
  if (auto last = linux::read_last_cap(); last && *last + 1 < static_cast<int>(out.size()))
    out.resize(static_cast<size_t>(*last + 1));
  // And only what we hold in our bounding set: a capability dropped from it (CAP_SYS_RESOURCE
  // on some hosts) cannot be given to a container, and asking makes capset fail.
  std::vector<std::string> held;
  for (size_t cap = 0; cap < out.size(); ++cap)
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 0) held.push_back(out[cap]);
  return held;
}

Result<std::string> normalize_capability(std::string_view name) {
  std::string up(name);
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (up == "ALL") return up;
  if (!starts_with(up, "CAP_")) up = "CAP_" + up;
  const auto& known = known_capabilities();
  if (std::find(known.begin(), known.end(), up) == known.end())
    return make_error("unknown capability '" + std::string(name) + "'");
  return up;
}

Result<CpuQuota> parse_cpus(std::string_view text) {
  // Decimal only, at most 9 fractional digits (docker's NanoCPUs), in integers so that "0.3"
  // is exactly 30000.
  const size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  auto digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if ((whole.empty() && frac.empty()) || !digits(whole) || !digits(frac) ||
      (dot != std::string_view::npos && frac.empty()))
    return flag_error("--cpus", text, "not a number");
  if (frac.size() > 9) return flag_error("--cpus", text, "too precise (at most 9 decimals)");
  const std::optional<uint64_t> w = whole.empty() ? 0 : parse_uint(whole);
  if (!w || *w > 1000000) return flag_error("--cpus", text, "too large");
  std::string f(frac);
  f.resize(9, '0');
  const uint64_t nano = *w * 1000000000ULL + *parse_uint(f);
  CpuQuota q;
  q.period = 100000;  // docker's fixed period for --cpus, in microseconds
  q.quota = static_cast<int64_t>(nano / 10000);
  if (nano != 0 && q.quota < 1000)
    return flag_error("--cpus", text, "must be at least 0.01 (the kernel's 1ms quota)");
  return q;
}

Result<oci::Rlimit> parse_ulimit(std::string_view text) {
  static const std::set<std::string, std::less<>> kNames = {
      "core",   "cpu",   "data", "fsize",  "locks",  "memlock",    "msgqueue", "nice",
      "nofile", "nproc", "rss",  "rtprio", "rttime", "sigpending", "stack"};
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0)
    return flag_error("--ulimit", text, "expected NAME=SOFT[:HARD]");
  const std::string_view name = text.substr(0, eq);
  if (!kNames.count(name)) return flag_error("--ulimit", text, "unknown resource");
  const std::vector<std::string> values = split(text.substr(eq + 1), ':');
  if (values.size() > 2) return flag_error("--ulimit", text, "expected NAME=SOFT[:HARD]");
  uint64_t limits[2] = {0, 0};
  for (size_t i = 0; i < values.size(); ++i) {
    const std::optional<int64_t> v = parse_int(values[i]);
    if (!v || *v < -1) return flag_error("--ulimit", text, "'" + values[i] + "' is not a number");
    // -1: unlimited (RLIM_INFINITY).
    limits[i] = *v == -1 ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(*v);
  }
  if (values.size() == 1) limits[1] = limits[0];
  if (limits[0] > limits[1])
    return flag_error("--ulimit", text, "the soft limit must not exceed the hard limit");
  std::string type = "RLIMIT_";
  for (char c : name) type += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return oci::Rlimit{type, limits[1], limits[0]};
}

Result<VolumeSpec> parse_volume(std::string_view text) {
  const std::vector<std::string> parts = split(text, ':');
  VolumeSpec v;
  std::string mode;
  switch (parts.size()) {
    case 1:
      v.kind = VolumeSpec::Kind::kAnonymous;
      v.destination = parts[0];
      break;
    case 2:
    case 3:
      v.source = parts[0];
      v.destination = parts[1];
      if (parts.size() == 3) mode = parts[2];
      break;
    default:
      return flag_error("-v", text, "expected [SOURCE:]DESTINATION[:MODE]");
  }
  if (v.destination.empty() || v.destination[0] != '/')
    return flag_error("-v", text, "the container path must be absolute");
  v.destination = clean_path(v.destination);
  if (v.destination == "/") return flag_error("-v", text, "the container path must not be /");
  if (v.kind != VolumeSpec::Kind::kAnonymous) {
    if (v.source.empty()) return flag_error("-v", text, "the source must not be empty");
    if (v.source[0] == '/') {
      v.kind = VolumeSpec::Kind::kBind;
      v.source = clean_path(v.source);
    } else if (v.source[0] == '.' || v.source.find('/') != std::string::npos) {
      return flag_error("-v", text, "the host path must be absolute");
    } else if (!valid_volume_name(v.source)) {
      return flag_error("-v", text,
                        "invalid volume name '" + v.source + "' ([a-zA-Z0-9][a-zA-Z0-9_.-]+)");
    } else {
      v.kind = VolumeSpec::Kind::kNamed;
    }
  }
  bool rw_seen = false;
  for (const std::string& m : mode.empty() ? std::vector<std::string>{} : split(mode, ',')) {
    if (m == "ro" || m == "rw") {
      if (rw_seen) return flag_error("-v", text, "ro and rw given twice");
      rw_seen = true;
      v.read_only = m == "ro";
    } else if (is_propagation(m)) {
      if (!v.propagation.empty()) return flag_error("-v", text, "two propagation modes");
      v.propagation = m;
    } else if (m == "z" || m == "Z" || m == "nocopy") {
      // SELinux relabelling (no SELinux here) and "do not copy the image's content", which
      // forker never does: accepted for compatibility.
    } else {
      return flag_error("-v", text, "invalid mode '" + m + "'");
    }
  }
  return v;
}

Result<oci::Mount> parse_tmpfs(std::string_view text) {
  const size_t colon = text.find(':');
  const std::string dest(text.substr(0, colon));
  if (dest.empty() || dest[0] != '/')
    return flag_error("--tmpfs", text, "the container path must be absolute");
  oci::Mount m;
  m.destination = clean_path(dest);
  if (m.destination == "/") return flag_error("--tmpfs", text, "the container path must not be /");
  m.type = "tmpfs";
  m.source = "tmpfs";
  std::vector<std::string> opts = {"noexec", "nosuid", "nodev"};  // moby's defaults for --tmpfs
  if (colon != std::string_view::npos)
    for (const std::string& o : split(text.substr(colon + 1), ','))
      if (!o.empty() && o != "defaults") opts.push_back(o);
  // From the end, keeping the first of each flag pair or data key seen: the last one given wins.
  std::set<std::string> seen;
  std::vector<std::string> merged;
  for (auto it = opts.rbegin(); it != opts.rend(); ++it) {
    std::string key;
    if (const char* group = tmpfs_flag_group(*it)) {
      key = group;
    } else {
      const size_t eq = it->find('=');
      if (eq == std::string::npos || !is_tmpfs_data_key(it->substr(0, eq)))
        return flag_error("--tmpfs", text, "invalid option '" + *it + "'");
      key = "=" + it->substr(0, eq);
    }
    if (seen.insert(key).second) merged.insert(merged.begin(), *it);
  }
  m.options = std::move(merged);
  return m;
}

Result<std::vector<std::string>> parse_env_file(std::string_view text,
                                                const std::vector<std::string>& host_env) {
  std::vector<std::string> out;
  std::vector<std::string> lines = split(text, '\n');
  if (!lines.empty() && starts_with(lines[0], "\xEF\xBB\xBF")) lines[0].erase(0, 3);  // UTF-8 BOM
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front())))
      line.remove_prefix(1);
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    const std::string_view key = line.substr(0, eq);
    const std::string where = "line " + std::to_string(i + 1) + ": ";
    if (key.empty()) return make_error(where + "no variable name in '" + std::string(line) + "'");
    if (std::any_of(key.begin(), key.end(),
                    [](char c) { return std::isspace(static_cast<unsigned char>(c)); }))
      return make_error(where + "variable '" + std::string(key) + "' contains whitespace");
    if (eq != std::string_view::npos) {
      out.emplace_back(line);
      continue;
    }
    // KEY alone: its value here, or nothing when we have none (docker's rule).
    const std::string prefix = std::string(key) + "=";
    for (const std::string& e : host_env)
      if (starts_with(e, prefix)) {
        out.push_back(e);
        break;
      }
  }
  return out;
}

}  // namespace forker::engine
