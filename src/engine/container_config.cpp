// build_config: `forker run`'s options and the image's defaults -> config.json, following what
// moby's daemon/oci_linux.go and oci/defaults.go put in the spec they hand to runc.
#include "engine/container_config.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <set>

#include "core/file.hpp"
#include "core/strings.hpp"
#include "oci/seccomp_profile.hpp"
#include "runtime/container.hpp"

namespace forker::engine {
namespace {

using json = nlohmann::json;

constexpr char kDefaultPath[] =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr int64_t kMinMemory = 6 << 20;  // docker refuses less: the runtime itself needs some

Error flag_error(std::string_view flag, std::string_view value, std::string_view what) {
  return make_error(std::string(flag) + " '" + std::string(value) + "': " + std::string(what));
}

// ---- process ----

std::string env_key(std::string_view entry) {
  return std::string(entry.substr(0, entry.find('=')));
}

// docker's ReplaceOrAppendEnvValues: a known key keeps its place and takes the new value; a bare
// "KEY" removes it.
void set_env(std::vector<std::string>& env, std::string_view entry) {
  const std::string key = env_key(entry);
  auto it =
      std::find_if(env.begin(), env.end(), [&](const std::string& e) { return env_key(e) == key; });
  if (entry.find('=') == std::string_view::npos) {
    if (it != env.end()) env.erase(it);
  } else if (it != env.end()) {
    *it = entry;
  } else {
    env.emplace_back(entry);
  }
}

bool has_env(const std::vector<std::string>& env, std::string_view key) {
  return std::any_of(env.begin(), env.end(),
                     [&](const std::string& e) { return env_key(e) == key; });
}

// PATH, HOSTNAME and TERM first, then the image's, --env-file's and -e's, later ones winning.
Result<std::vector<std::string>> build_env(const RunOptions& o, const ImageDefaults& image,
                                           const ConfigContext& ctx, const std::string& hostname) {
  std::vector<std::string> env = {kDefaultPath, "HOSTNAME=" + hostname};
  if (o.tty) env.emplace_back("TERM=xterm");
  for (const std::string& e : image.env) set_env(env, e);
  for (const std::string& path : o.env_files) {
    const std::string text = FORKER_TRY(read_file(path).context("--env-file '" + path + "'"));
    const auto entries =
        FORKER_TRY(parse_env_file(text, ctx.host_env).context("--env-file '" + path + "'"));
    for (const std::string& e : entries) set_env(env, e);
  }
  for (const std::string& e : o.env) {
    const size_t eq = e.find('=');
    if (eq == 0 || e.empty()) return flag_error("-e", e, "invalid environment variable");
    if (eq != std::string::npos) {
      set_env(env, e);
      continue;
    }
    // "-e KEY": our value, or unset in the container when we have none (docker's rule).
    auto it = std::find_if(ctx.host_env.begin(), ctx.host_env.end(),
                           [&](const std::string& h) { return env_key(h) == e; });
    set_env(env, it != ctx.host_env.end() ? std::string_view(*it) : std::string_view(e));
  }
  return env;
}

// Entrypoint then command. A given command replaces the image's Cmd; --entrypoint (even "")
// replaces the Entrypoint and drops the image's Cmd, as docker does.
Result<std::vector<std::string>> build_args(const RunOptions& o, const ImageDefaults& image) {
  std::vector<std::string> args;
  if (o.entrypoint) {
    if (!o.entrypoint->empty()) args.push_back(*o.entrypoint);
  } else {
    args = image.entrypoint;
  }
  const std::vector<std::string>& cmd = !o.command.empty() ? o.command
                                        : o.entrypoint     ? std::vector<std::string>{}
                                                           : image.cmd;
  args.insert(args.end(), cmd.begin(), cmd.end());
  if (args.empty()) return make_error("no command specified");
  return args;
}

Result<std::string> build_cwd(const RunOptions& o, const ImageDefaults& image) {
  if (!o.workdir.empty()) {
    if (o.workdir[0] != '/')
      return flag_error("-w", o.workdir, "the working directory must be absolute");
    return o.workdir;
  }
  if (image.working_dir.empty()) return std::string("/");
  // Old builders wrote relative WorkingDirs; docker reads them from the root.
  return image.working_dir[0] == '/' ? image.working_dir : "/" + image.working_dir;
}

Result<std::string> build_hostname(const RunOptions& o, const ConfigContext& ctx) {
  if (o.hostname.empty()) {
    // The container's name, as a hostname ('_' and the like become '-'): replicas web-1,
    // web-2... each answer with their own. A name with nothing usable: the id's first 12 digits.
    std::string h;
    for (char c : ctx.name) {
      bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-';
      h.push_back(keep ? c : '-');
    }
    while (!h.empty() && (h.front() == '-' || h.front() == '.')) h.erase(h.begin());
    if (h.size() > 63) h.resize(63);
    return h.empty() ? ctx.id.substr(0, 12) : h;
  }
  // RFC 1123 labels, within the kernel's HOST_NAME_MAX.
  const bool valid = o.hostname.size() <= 64 && o.hostname.front() != '-' &&
                     o.hostname.front() != '.' &&
                     std::all_of(o.hostname.begin(), o.hostname.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
                     });
  if (!valid) return flag_error("--hostname", o.hostname, "invalid hostname");
  return o.hostname;
}

// ---- security ----

struct SecurityOpts {
  bool no_new_privileges = false;
  bool seccomp_unconfined = false;
  std::string seccomp_profile;  // path of a profile file; empty: the default
  bool systempaths_unconfined = false;
};

Result<SecurityOpts> parse_security_opts(const std::vector<std::string>& opts) {
  SecurityOpts s;
  for (const std::string& opt : opts) {
    // "key=value", or docker's older "key:value".
    size_t sep = opt.find('=');
    if (sep == std::string::npos) sep = opt.find(':');
    const std::string key = opt.substr(0, sep);
    const std::string value = sep == std::string::npos ? "" : opt.substr(sep + 1);
    if (key == "no-new-privileges") {
      if (value.empty() || value == "true")
        s.no_new_privileges = true;
      else if (value == "false")
        s.no_new_privileges = false;
      else
        return flag_error("--security-opt", opt, "expected no-new-privileges[=true|false]");
    } else if (key == "seccomp" && !value.empty()) {
      s.seccomp_unconfined = value == "unconfined";
      s.seccomp_profile = s.seccomp_unconfined ? "" : value;
    } else if (key == "systempaths" && value == "unconfined") {
      s.systempaths_unconfined = true;
    } else if ((key == "apparmor" && value == "unconfined") ||
               (key == "label" && value == "disable")) {
      // Neither AppArmor nor SELinux is applied by forker: already the case.
    } else {
      return flag_error("--security-opt", opt, "unsupported option");
    }
  }
  return s;
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

void add_unique(std::vector<std::string>& set, const std::string& s) {
  if (!contains(set, s)) set.push_back(s);
}

// moby's TweakCapabilities: ALL in --cap-add gives everything but the drops; ALL in --cap-drop
// gives only the adds; otherwise the defaults minus the drops plus the adds.
Result<std::vector<std::string>> build_capabilities(const RunOptions& o) {
  if (o.privileged) return all_capabilities();
  auto normalize = [](const std::vector<std::string>& names,
                      const char* flag) -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    for (const std::string& n : names) {
      auto cap = normalize_capability(n);
      if (!cap) return flag_error(flag, n, "unknown capability");
      add_unique(out, *cap);
    }
    return out;
  };
  const auto adds = FORKER_TRY(normalize(o.cap_add, "--cap-add"));
  const auto drops = FORKER_TRY(normalize(o.cap_drop, "--cap-drop"));
  std::vector<std::string> caps;
  if (contains(adds, "ALL")) {
    for (const std::string& c : all_capabilities())
      if (!contains(drops, c)) caps.push_back(c);
  } else if (contains(drops, "ALL")) {
    caps = adds;
  } else {
    for (const std::string& c : default_capabilities())
      if (!contains(drops, c)) caps.push_back(c);
    for (const std::string& c : adds) add_unique(caps, c);
  }
  return caps;
}

Result<json> build_seccomp(const SecurityOpts& s, const std::vector<std::string>& caps) {
  if (s.seccomp_profile.empty())
    return oci::resolve_seccomp_profile(oci::default_seccomp_profile(),
                                        oci::host_seccomp_target(caps))
        .context("default seccomp profile");
  const std::string where = "--security-opt 'seccomp=" + s.seccomp_profile + "'";
  const std::string text = FORKER_TRY(read_file(s.seccomp_profile).context(where));
  return oci::resolve_seccomp_profile(text, oci::host_seccomp_target(caps)).context(where);
}

// ---- mounts ----

json mount_json(const std::string& dest, const std::string& type, const std::string& source,
                const std::vector<std::string>& options) {
  json m = {{"destination", dest}, {"type", type}, {"source", source}};
  if (!options.empty()) m["options"] = options;
  return m;
}

// moby's oci/defaults.go mounts. --privileged leaves /sys and the cgroup tree writable. Rootless:
// /sys is bound from the host (sysfs belongs to the host's network namespace's owner), devpts
// has no gid=5 (unmapped), and there is no cgroup mount, as in `forker-oci spec --rootless`.
std::vector<json> default_mounts(bool rootless, bool privileged) {
  const std::vector<std::string> ro =
      privileged ? std::vector<std::string>{} : std::vector<std::string>{"ro"};
  auto with = [](std::vector<std::string> opts, const std::vector<std::string>& more) {
    opts.insert(opts.end(), more.begin(), more.end());
    return opts;
  };
  std::vector<std::string> devpts = {"nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                     "mode=0620"};
  if (!rootless) devpts.emplace_back("gid=5");
  std::vector<json> out = {
      mount_json("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      mount_json("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mount_json("/dev/pts", "devpts", "devpts", devpts),
      mount_json("/sys", rootless ? "none" : "sysfs", rootless ? "/sys" : "sysfs",
                 with(rootless ? std::vector<std::string>{"rbind", "nosuid", "noexec", "nodev"}
                               : std::vector<std::string>{"nosuid", "noexec", "nodev"},
                      ro)),
  };
  if (!rootless)
    out.push_back(mount_json("/sys/fs/cgroup", "cgroup", "cgroup",
                             with({"nosuid", "noexec", "nodev", "relatime"}, ro)));
  out.push_back(mount_json("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  out.push_back(mount_json("/dev/shm", "tmpfs", "shm",
                           {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  return out;
}

Result<std::string> random_hex() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("getrandom", "anonymous volume name");
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

struct UserMounts {
  std::vector<json> mounts;
  std::set<std::string> destinations;
  std::string rootfs_propagation;  // "rshared"/"rslave" when a volume asks for it
};

Status add_volume(UserMounts& um, BuiltConfig& out, const ConfigContext& ctx, VolumeSpec v,
                  const std::string& as_typed) {
  if (!um.destinations.insert(v.destination).second)
    return flag_error("-v", as_typed, "duplicate mount point " + v.destination);
  if (v.kind == VolumeSpec::Kind::kAnonymous) {
    v.source = FORKER_TRY(random_hex());
    out.anonymous_volumes.push_back(v.source);
  }
  std::string source = v.source;
  if (v.kind != VolumeSpec::Kind::kBind) {
    add_unique(out.named_volumes, v.source);
    source = ctx.volumes_dir + "/" + v.source + "/_data";
  }
  std::vector<std::string> opts = {"rbind", v.propagation.empty() ? "rprivate" : v.propagation};
  if (v.read_only) opts.emplace_back("ro");
  // A shared or slave volume needs the root's propagation to match (moby's ensureShared).
  if (v.propagation == "shared" || v.propagation == "rshared")
    um.rootfs_propagation = "rshared";
  else if ((v.propagation == "slave" || v.propagation == "rslave") && um.rootfs_propagation.empty())
    um.rootfs_propagation = "rslave";
  um.mounts.push_back(mount_json(v.destination, "bind", source, opts));
  return ok();
}

// -v, then the image's Volumes not covered (fresh anonymous volumes, as docker makes), then
// --tmpfs.
Result<UserMounts> build_user_mounts(const RunOptions& o, const ImageDefaults& image,
                                     const ConfigContext& ctx, BuiltConfig& out) {
  UserMounts um;
  std::vector<std::string> tmpfs_dests;
  std::vector<oci::Mount> tmpfs;
  for (const std::string& t : o.tmpfs) {
    tmpfs.push_back(FORKER_TRY(parse_tmpfs(t)));
    tmpfs_dests.push_back(tmpfs.back().destination);
  }
  for (const std::string& text : o.volumes) {
    const VolumeSpec v = FORKER_TRY(parse_volume(text));
    FORKER_TRY(add_volume(um, out, ctx, v, text));
  }
  for (const std::string& dest : image.volumes) {
    auto v = parse_volume(dest);
    if (!v) return std::move(v.error()).add_context("image volume");
    if (um.destinations.count(v->destination) ||
        std::find(tmpfs_dests.begin(), tmpfs_dests.end(), v->destination) != tmpfs_dests.end())
      continue;
    FORKER_TRY(add_volume(um, out, ctx, *v, dest));
  }
  for (size_t i = 0; i < tmpfs.size(); ++i) {
    if (!um.destinations.insert(tmpfs[i].destination).second)
      return flag_error("--tmpfs", o.tmpfs[i], "duplicate mount point " + tmpfs[i].destination);
    um.mounts.push_back(mount_json(tmpfs[i].destination, "tmpfs", "tmpfs", tmpfs[i].options));
  }
  return um;
}

Result<std::vector<json>> build_mounts(const RunOptions& o, const ImageDefaults& image,
                                       const ConfigContext& ctx, BuiltConfig& out,
                                       std::string& rootfs_propagation) {
  UserMounts um = FORKER_TRY(build_user_mounts(o, image, ctx, out));
  rootfs_propagation = um.rootfs_propagation;
  std::vector<json> mounts;
  // A user mount on a default destination (--tmpfs /dev/shm) replaces the default, as in docker.
  for (json& m : default_mounts(ctx.rootless, o.privileged))
    if (!um.destinations.count(m["destination"].get<std::string>())) mounts.push_back(std::move(m));
  for (const char* file : {"hostname", "hosts", "resolv.conf"}) {
    const std::string dest = std::string("/etc/") + file;
    if (um.destinations.count(dest)) continue;
    std::vector<std::string> opts = {"rbind", "rprivate"};
    if (o.read_only) opts.emplace_back("ro");
    mounts.push_back(mount_json(dest, "bind", ctx.container_dir + "/" + file, opts));
  }
  mounts.insert(mounts.end(), um.mounts.begin(), um.mounts.end());
  return mounts;
}

// ---- resources ----

Result<int64_t> memory_flag(const char* flag, const std::string& value) {
  auto v = runtime::parse_memory_size(value);
  if (!v) return flag_error(flag, value, "invalid size (bytes, or a number with k, m, g, t)");
  return *v;
}

Status add_memory(const RunOptions& o, const ConfigContext& ctx, json& res) {
  int64_t memory = 0, swap = 0;  // 0: not given
  if (!o.memory.empty()) {
    memory = FORKER_TRY(memory_flag("--memory", o.memory));
    if (memory < 0) return flag_error("--memory", o.memory, "must not be negative");
    if (memory > 0 && memory < kMinMemory)
      return flag_error("--memory", o.memory, "the minimum memory limit is 6MB");
  }
  if (!o.memory_swap.empty()) {
    swap = FORKER_TRY(memory_flag("--memory-swap", o.memory_swap));
    if (swap < -1) return flag_error("--memory-swap", o.memory_swap, "must be -1 or a size");
    if (swap > 0 && memory == 0)
      return flag_error("--memory-swap", o.memory_swap,
                        "needs --memory (the value is memory plus swap)");
    if (swap > 0 && swap < memory)
      return flag_error("--memory-swap", o.memory_swap,
                        "must be at least --memory (the value is memory plus swap)");
    if (swap > 0 && !ctx.swap_accounting)
      return flag_error("--memory-swap", o.memory_swap, "this host does not account swap");
  }
  // docker: -m alone allows as much swap again, where the host can limit swap.
  if (memory > 0 && swap == 0 && ctx.swap_accounting) swap = 2 * memory;
  if (memory == 0 && swap == 0) return ok();
  json& m = res["memory"];
  if (memory > 0) m["limit"] = memory;
  if (swap != 0) m["swap"] = swap;
  return ok();
}

Status add_cpu(const RunOptions& o, json& res) {
  json cpu = json::object();
  if (o.cpu_shares && *o.cpu_shares > 0) cpu["shares"] = *o.cpu_shares;
  if (!o.cpus.empty()) {
    if (o.cpu_quota)
      return flag_error("--cpus", o.cpus, "conflicts with --cpu-quota (give one of them)");
    if (o.cpu_period)
      return flag_error("--cpus", o.cpus, "conflicts with --cpu-period (give one of them)");
    const CpuQuota q = FORKER_TRY(parse_cpus(o.cpus));
    if (q.quota > 0) {
      cpu["quota"] = q.quota;
      cpu["period"] = q.period;
    }
  }
  if (o.cpu_quota && *o.cpu_quota != 0) {
    if (*o.cpu_quota != -1 && *o.cpu_quota < 1000)
      return flag_error("--cpu-quota", std::to_string(*o.cpu_quota),
                        "must be -1 or at least 1000 (1ms)");
    cpu["quota"] = *o.cpu_quota;
  }
  if (o.cpu_period && *o.cpu_period != 0) {
    if (*o.cpu_period < 1000 || *o.cpu_period > 1000000)
      return flag_error("--cpu-period", std::to_string(*o.cpu_period),
                        "must be within 1000..1000000 (1ms to 1s)");
    cpu["period"] = *o.cpu_period;
  }
  if (!cpu.empty()) res["cpu"] = cpu;
  return ok();
}

// The first limit flag given, for the error when there is no cgroup to apply it to.
const char* first_limit_flag(const RunOptions& o) {
  if (!o.memory.empty()) return "--memory";
  if (!o.memory_swap.empty()) return "--memory-swap";
  if (!o.cpus.empty()) return "--cpus";
  if (o.cpu_shares) return "--cpu-shares";
  if (o.cpu_quota) return "--cpu-quota";
  if (o.cpu_period) return "--cpu-period";
  if (o.pids_limit && *o.pids_limit > 0) return "--pids-limit";
  return nullptr;
}

Result<std::optional<json>> build_resources(const RunOptions& o, const ConfigContext& ctx) {
  if (ctx.cgroups_path.empty()) {
    if (const char* flag = first_limit_flag(o))
      return make_error(std::string(flag) +
                        ": no cgroup available (rootless without a delegated cgroup)");
    return std::optional<json>();
  }
  json res = json::object();
  // Deny every device but the runtime's defaults (it appends those); --privileged allows all,
  // though unlike docker it does not bind the host's devices into /dev (only the defaults).
  // Rootless has no device controller to program.
  if (!ctx.rootless) res["devices"] = json::array({{{"allow", o.privileged}, {"access", "rwm"}}});
  FORKER_TRY(add_memory(o, ctx, res));
  FORKER_TRY(add_cpu(o, res));
  if (o.pids_limit && *o.pids_limit > 0) res["pids"] = {{"limit", *o.pids_limit}};
  return std::optional<json>(std::move(res));
}

// ---- linux ----

json build_namespaces(const ConfigContext& ctx) {
  json ns = json::array({{{"type", "pid"}},
                         {{"type", "ipc"}},
                         {{"type", "uts"}},
                         {{"type", "mount"}},
                         {{"type", "cgroup"}}});
  if (ctx.network_mode != "host") {
    json net = {{"type", "network"}};
    if (!ctx.netns_path.empty()) net["path"] = ctx.netns_path;  // container:NAME, ns:PATH
    ns.push_back(std::move(net));
  }
  if (ctx.rootless) ns.push_back({{"type", "user"}});
  return ns;
}

Result<json> build_rlimits(const RunOptions& o) {
  std::vector<oci::Rlimit> limits;
  for (const std::string& u : o.ulimits) {
    oci::Rlimit r = FORKER_TRY(parse_ulimit(u));
    // Given twice: the last one counts, as docker's map of ulimits does.
    auto it = std::find_if(limits.begin(), limits.end(),
                           [&](const oci::Rlimit& l) { return l.type == r.type; });
    if (it != limits.end())
      *it = r;
    else
      limits.push_back(r);
  }
  json out = json::array();
  for (const oci::Rlimit& r : limits)
    out.push_back({{"type", r.type}, {"hard", r.hard}, {"soft", r.soft}});
  return out;
}

Result<std::string> build_stop_signal(const RunOptions& o, const ImageDefaults& image) {
  const bool flag = !o.stop_signal.empty();
  const std::string sig = flag                        ? o.stop_signal
                          : image.stop_signal.empty() ? "SIGTERM"
                                                      : image.stop_signal;
  if (!runtime::parse_signal(sig))
    return flag ? flag_error("--stop-signal", sig, "invalid signal")
                : make_error("image StopSignal '" + sig + "': invalid signal");
  return sig;
}

json build_process(const RunOptions& o, const BuiltConfig& out, const ResolvedUser& user,
                   std::vector<std::string> env, const std::string& cwd,
                   const std::vector<std::string>& caps, const SecurityOpts& sec, json rlimits) {
  json u = {{"uid", user.user.uid}, {"gid", user.user.gid}};
  if (!user.user.additional_gids.empty()) u["additionalGids"] = user.user.additional_gids;
  // A non-root process keeps the bounding set (file capabilities can still raise from it) but
  // starts with nothing effective or permitted, as moby does since 20.10.
  const json active = user.user.uid == 0 ? json(caps) : json::array();
  json p = {
      {"terminal", o.tty},
      {"user", u},
      {"args", out.args},
      {"env", std::move(env)},
      {"cwd", cwd},
      {"capabilities",
       {{"bounding", caps},
        {"effective", active},
        {"permitted", active},
        {"inheritable", json::array()},
        {"ambient", json::array()}}},
      {"noNewPrivileges", sec.no_new_privileges},
  };
  if (!rlimits.empty()) p["rlimits"] = std::move(rlimits);
  return p;
}

Result<json> build_linux(const RunOptions& o, const ConfigContext& ctx, const SecurityOpts& sec,
                         const std::vector<std::string>& caps, const std::string& propagation) {
  json lx = {{"namespaces", build_namespaces(ctx)}};
  if (ctx.rootless) {
    lx["uidMappings"] = json::array({{{"containerID", 0}, {"hostID", ctx.host_uid}, {"size", 1}}});
    lx["gidMappings"] = json::array({{{"containerID", 0}, {"hostID", ctx.host_gid}, {"size", 1}}});
  }
  if (!o.privileged && !sec.systempaths_unconfined) {
    lx["maskedPaths"] = {"/proc/asound",
                         "/proc/acpi",
                         "/proc/kcore",
                         "/proc/keys",
                         "/proc/latency_stats",
                         "/proc/timer_list",
                         "/proc/timer_stats",
                         "/proc/sched_debug",
                         "/proc/scsi",
                         "/sys/firmware",
                         "/sys/devices/virtual/powercap"};
    lx["readonlyPaths"] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                           "/proc/sysrq-trigger"};
  }
  if (ctx.network_mode != "host" && ctx.network_mode != "container" &&
      ctx.network_mode != "ns") {
    // moby 20.10+: ports below 1024 and ping sockets for every user, in the container's own
    // network namespace only. The kernel refuses a ping range holding gids the user namespace
    // does not map, and rootless maps only 0.
    lx["sysctl"] = {{"net.ipv4.ip_unprivileged_port_start", "0"},
                    {"net.ipv4.ping_group_range", ctx.rootless ? "0 0" : "0 2147483647"}};
  }
  if (!ctx.cgroups_path.empty()) lx["cgroupsPath"] = ctx.cgroups_path;
  if (auto res = FORKER_TRY(build_resources(o, ctx))) lx["resources"] = std::move(*res);
  if (!propagation.empty()) lx["rootfsPropagation"] = propagation;
  // --privileged: no seccomp, even with a profile given (moby's WithSeccomp).
  if (!o.privileged && !sec.seccomp_unconfined)
    lx["seccomp"] = FORKER_TRY(build_seccomp(sec, caps));
  return lx;
}

}  // namespace

Result<BuiltConfig> build_config(const RunOptions& o, const ImageDefaults& image,
                                 const ConfigContext& ctx) {
  BuiltConfig out;
  const std::string hostname = FORKER_TRY(build_hostname(o, ctx));
  out.args = FORKER_TRY(build_args(o, image));
  const std::string cwd = FORKER_TRY(build_cwd(o, image));
  const ResolvedUser user =
      FORKER_TRY(lookup_user(!o.user.empty() ? o.user : image.user, ctx.rootfs_fd));
  std::vector<std::string> env = FORKER_TRY(build_env(o, image, ctx, hostname));
  if (!has_env(env, "HOME")) env.push_back("HOME=" + user.home);
  const SecurityOpts sec = FORKER_TRY(parse_security_opts(o.security_opts));
  const std::vector<std::string> caps = FORKER_TRY(build_capabilities(o));
  json rlimits = FORKER_TRY(build_rlimits(o));
  out.stop_signal = FORKER_TRY(build_stop_signal(o, image));
  std::string propagation;
  std::vector<json> mounts = FORKER_TRY(build_mounts(o, image, ctx, out, propagation));
  json linux_section = FORKER_TRY(build_linux(o, ctx, sec, caps, propagation));

  out.config = {
      {"ociVersion", "1.0.2"},
      {"process", build_process(o, out, user, std::move(env), cwd, caps, sec, std::move(rlimits))},
      {"root", {{"path", ctx.rootfs}, {"readonly", o.read_only}}},
      {"hostname", hostname},
      {"mounts", mounts},
      {"annotations", {{"forker.container.name", ctx.name}}},
      {"linux", std::move(linux_section)},
  };
  out.files = make_container_files(hostname, ctx.network_mode == "host", ctx.host_resolv_conf);
  // slirp4netns answers DNS on 10.0.2.3 and forwards to the host's resolver, loopback ones
  // included: first, as podman puts it.
  if (ctx.network_mode == "slirp4netns")
    out.files.resolv_conf = "nameserver 10.0.2.3\n" + out.files.resolv_conf;
  return out;
}

}  // namespace forker::engine
