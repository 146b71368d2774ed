// config.json -> Spec. Every type mismatch names the field ("process.user.uid: expected an
// unsigned integer"). Unknown properties are ignored, as the runtime-spec requires.
#include "oci/spec.hpp"

#include <nlohmann/json.hpp>

#include "core/file.hpp"

namespace forker::oci {
namespace {

using json = nlohmann::json;

// Walks the JSON tree and remembers the first error, so parsing code stays linear.
std::string sub(const std::string& path, const char* key) {
  return path.empty() ? std::string(key) : path + "." + key;
}

class Reader {
 public:
  std::optional<Error> error;

  void fail(const std::string& field, const std::string& what) {
    if (!error) error = make_error(field + ": " + what);
  }

  const json* field(const json& obj, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
  }

  template <typename T>
  void get(const json& obj, const char* key, const std::string& path, T& out) {
    const json* v = field(obj, key);
    if (v) read(*v, sub(path, key), out);
  }
  template <typename T>
  void get(const json& obj, const char* key, const std::string& path, std::optional<T>& out) {
    const json* v = field(obj, key);
    if (!v) return;
    T value{};
    read(*v, sub(path, key), value);
    out = value;
  }

  void read(const json& v, const std::string& path, std::string& out) {
    if (!v.is_string()) return fail(path, "expected a string");
    out = v.get<std::string>();
  }
  void read(const json& v, const std::string& path, bool& out) {
    if (!v.is_boolean()) return fail(path, "expected a boolean");
    out = v.get<bool>();
  }
  template <typename T>
    requires std::is_integral_v<T>
  void read(const json& v, const std::string& path, T& out) {
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        return fail(path, "value out of range");
      out = static_cast<T>(u);
    } else if (v.is_number_integer()) {
      int64_t i = v.get<int64_t>();
      if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          (i > 0 && static_cast<uint64_t>(i) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
        return fail(path, std::is_signed_v<T> ? "value out of range" : "expected an unsigned integer");
      out = static_cast<T>(i);
    } else {
      fail(path, "expected an integer");
    }
  }
  void read(const json& v, const std::string& path, std::vector<std::string>& out) {
    if (!v.is_array()) return fail(path, "expected an array of strings");
    for (size_t i = 0; i < v.size(); ++i) {
      std::string s;
      read(v[i], path + "[" + std::to_string(i) + "]", s);
      out.push_back(std::move(s));
    }
  }
  void read(const json& v, const std::string& path, std::vector<uint32_t>& out) {
    if (!v.is_array()) return fail(path, "expected an array of integers");
    for (size_t i = 0; i < v.size(); ++i) {
      uint32_t n = 0;
      read(v[i], path + "[" + std::to_string(i) + "]", n);
      out.push_back(n);
    }
  }
  void read(const json& v, const std::string& path, std::map<std::string, std::string>& out) {
    if (!v.is_object()) return fail(path, "expected an object of strings");
    for (auto& [k, val] : v.items()) read(val, path + "." + k, out[k]);
  }

  // Arrays of objects: calls fn(element, element_path) for each.
  template <typename Fn>
  void each(const json& obj, const char* key, const std::string& path, Fn fn) {
    const json* v = field(obj, key);
    if (!v) return;
    std::string p = sub(path, key);
    if (!v->is_array()) return fail(p, "expected an array");
    for (size_t i = 0; i < v->size(); ++i) {
      std::string ep = p + "[" + std::to_string(i) + "]";
      if (!(*v)[i].is_object()) {
        fail(ep, "expected an object");
        continue;
      }
      fn((*v)[i], ep);
    }
  }
  const json* object(const json& obj, const char* key, const std::string& path) {
    const json* v = field(obj, key);
    if (v && !v->is_object()) {
      fail(sub(path, key), "expected an object");
      return nullptr;
    }
    return v;
  }
};

void read_mappings(Reader& r, const json& obj, const char* key, const std::string& path,
                   std::vector<IdMapping>& out) {
  r.each(obj, key, path, [&](const json& m, const std::string& p) {
    IdMapping id;
    r.get(m, "containerID", p, id.container_id);
    r.get(m, "hostID", p, id.host_id);
    r.get(m, "size", p, id.size);
    out.push_back(id);
  });
}

Process read_process(Reader& r, const json& p, const std::string& path) {
  Process proc;
  r.get(p, "terminal", path, proc.terminal);
  if (auto* cs = r.object(p, "consoleSize", path)) {
    ConsoleSize size;
    r.get(*cs, "height", path + ".consoleSize", size.height);
    r.get(*cs, "width", path + ".consoleSize", size.width);
    proc.console_size = size;
  }
  if (auto* u = r.object(p, "user", path)) {
    std::string up = path + ".user";
    r.get(*u, "uid", up, proc.user.uid);
    r.get(*u, "gid", up, proc.user.gid);
    r.get(*u, "umask", up, proc.user.umask);
    r.get(*u, "additionalGids", up, proc.user.additional_gids);
    if (r.field(*u, "username")) r.fail(up + ".username", "is for Windows only");
  }
  r.get(p, "args", path, proc.args);
  if (r.field(p, "commandLine")) r.fail(path + ".commandLine", "is for Windows only");
  r.get(p, "env", path, proc.env);
  r.get(p, "cwd", path, proc.cwd);
  if (auto* c = r.object(p, "capabilities", path)) {
    Capabilities caps;
    std::string cp = path + ".capabilities";
    r.get(*c, "bounding", cp, caps.bounding);
    r.get(*c, "effective", cp, caps.effective);
    r.get(*c, "inheritable", cp, caps.inheritable);
    r.get(*c, "permitted", cp, caps.permitted);
    r.get(*c, "ambient", cp, caps.ambient);
    proc.capabilities = std::move(caps);
  }
  r.each(p, "rlimits", path, [&](const json& l, const std::string& lp) {
    Rlimit limit;
    r.get(l, "type", lp, limit.type);
    r.get(l, "hard", lp, limit.hard);
    r.get(l, "soft", lp, limit.soft);
    proc.rlimits.push_back(std::move(limit));
  });
  r.get(p, "noNewPrivileges", path, proc.no_new_privileges);
  r.get(p, "oomScoreAdj", path, proc.oom_score_adj);
  r.get(p, "apparmorProfile", path, proc.apparmor_profile);
  r.get(p, "selinuxLabel", path, proc.selinux_label);
  if (r.field(p, "ioPriority")) r.fail(path + ".ioPriority", "not supported yet");
  if (r.field(p, "scheduler")) r.fail(path + ".scheduler", "not supported yet");
  if (r.field(p, "execCPUAffinity")) r.fail(path + ".execCPUAffinity", "not supported yet");
  return proc;
}

std::vector<Hook> read_hooks(Reader& r, const json& hooks, const char* key) {
  std::vector<Hook> out;
  r.each(hooks, key, "hooks", [&](const json& h, const std::string& hp) {
    Hook hook;
    r.get(h, "path", hp, hook.path);
    r.get(h, "args", hp, hook.args);
    r.get(h, "env", hp, hook.env);
    r.get(h, "timeout", hp, hook.timeout);
    if (hook.path.empty() || hook.path[0] != '/') r.fail(hp + ".path", "must be an absolute path");
    if (hook.timeout && *hook.timeout <= 0) r.fail(hp + ".timeout", "must be positive");
    out.push_back(std::move(hook));
  });
  return out;
}

MemoryResources read_memory(Reader& r, const json& m, const std::string& p) {
  MemoryResources mem;
  r.get(m, "limit", p, mem.limit);
  r.get(m, "reservation", p, mem.reservation);
  r.get(m, "swap", p, mem.swap);
  r.get(m, "kernel", p, mem.kernel);
  r.get(m, "kernelTCP", p, mem.kernel_tcp);
  r.get(m, "swappiness", p, mem.swappiness);
  r.get(m, "disableOOMKiller", p, mem.disable_oom_killer);
  r.get(m, "useHierarchy", p, mem.use_hierarchy);
  r.get(m, "checkBeforeUpdate", p, mem.check_before_update);
  return mem;
}

CpuResources read_cpu(Reader& r, const json& c, const std::string& p) {
  CpuResources cpu;
  r.get(c, "shares", p, cpu.shares);
  r.get(c, "quota", p, cpu.quota);
  r.get(c, "burst", p, cpu.burst);
  r.get(c, "period", p, cpu.period);
  r.get(c, "realtimeRuntime", p, cpu.realtime_runtime);
  r.get(c, "realtimePeriod", p, cpu.realtime_period);
  r.get(c, "cpus", p, cpu.cpus);
  r.get(c, "mems", p, cpu.mems);
  r.get(c, "idle", p, cpu.idle);
  return cpu;
}

BlockIoResources read_block_io(Reader& r, const json& b, const std::string& p) {
  BlockIoResources io;
  r.get(b, "weight", p, io.weight);
  r.get(b, "leafWeight", p, io.leaf_weight);
  r.each(b, "weightDevice", p, [&](const json& d, const std::string& dp) {
    WeightDevice w;
    r.get(d, "major", dp, w.major);
    r.get(d, "minor", dp, w.minor);
    r.get(d, "weight", dp, w.weight);
    r.get(d, "leafWeight", dp, w.leaf_weight);
    io.weight_device.push_back(w);
  });
  auto throttles = [&](const char* key, std::vector<ThrottleDevice>& out) {
    r.each(b, key, p, [&](const json& d, const std::string& dp) {
      ThrottleDevice t;
      r.get(d, "major", dp, t.major);
      r.get(d, "minor", dp, t.minor);
      r.get(d, "rate", dp, t.rate);
      out.push_back(t);
    });
  };
  throttles("throttleReadBpsDevice", io.throttle_read_bps);
  throttles("throttleWriteBpsDevice", io.throttle_write_bps);
  throttles("throttleReadIOPSDevice", io.throttle_read_iops);
  throttles("throttleWriteIOPSDevice", io.throttle_write_iops);
  return io;
}

Resources read_resources(Reader& r, const json& res, const std::string& p) {
  Resources out;
  r.each(res, "devices", p, [&](const json& d, const std::string& dp) {
    DeviceRule rule;
    r.get(d, "allow", dp, rule.allow);
    r.get(d, "type", dp, rule.type);
    r.get(d, "major", dp, rule.major);
    r.get(d, "minor", dp, rule.minor);
    r.get(d, "access", dp, rule.access);
    if (!rule.type.empty() && rule.type != "a" && rule.type != "c" && rule.type != "b")
      r.fail(dp + ".type", "must be a, c or b");
    for (char c : rule.access)
      if (c != 'r' && c != 'w' && c != 'm') r.fail(dp + ".access", "must contain only r, w, m");
    out.devices.push_back(std::move(rule));
  });
  if (auto* m = r.object(res, "memory", p)) out.memory = read_memory(r, *m, p + ".memory");
  if (auto* c = r.object(res, "cpu", p)) out.cpu = read_cpu(r, *c, p + ".cpu");
  if (auto* pids = r.object(res, "pids", p)) {
    int64_t limit = 0;
    if (!r.field(*pids, "limit")) r.fail(p + ".pids.limit", "is required");
    r.get(*pids, "limit", p + ".pids", limit);
    out.pids_limit = limit;
  }
  if (auto* b = r.object(res, "blockIO", p)) out.block_io = read_block_io(r, *b, p + ".blockIO");
  r.each(res, "hugepageLimits", p, [&](const json& h, const std::string& hp) {
    HugepageLimit l;
    r.get(h, "pageSize", hp, l.page_size);
    r.get(h, "limit", hp, l.limit);
    out.hugepage_limits.push_back(std::move(l));
  });
  if (auto* n = r.object(res, "network", p)) {
    NetworkResources net;
    r.get(*n, "classID", p + ".network", net.class_id);
    r.each(*n, "priorities", p + ".network", [&](const json& pr, const std::string& pp) {
      std::string name;
      uint32_t prio = 0;
      r.get(pr, "name", pp, name);
      r.get(pr, "priority", pp, prio);
      net.priorities.emplace_back(std::move(name), prio);
    });
    out.network = std::move(net);
  }
  if (auto* rd = r.object(res, "rdma", p)) {
    for (auto& [dev, lim] : rd->items()) {
      RdmaLimit l;
      std::string rp = p + ".rdma." + dev;
      if (!lim.is_object()) {
        r.fail(rp, "expected an object");
        continue;
      }
      r.get(lim, "hcaHandles", rp, l.hca_handles);
      r.get(lim, "hcaObjects", rp, l.hca_objects);
      out.rdma[dev] = l;
    }
  }
  r.get(res, "unified", p, out.unified);
  return out;
}

Seccomp read_seccomp(Reader& r, const json& s, const std::string& p) {
  Seccomp sc;
  r.get(s, "defaultAction", p, sc.default_action);
  r.get(s, "defaultErrnoRet", p, sc.default_errno_ret);
  r.get(s, "architectures", p, sc.architectures);
  r.get(s, "flags", p, sc.flags);
  r.get(s, "listenerPath", p, sc.listener_path);
  r.get(s, "listenerMetadata", p, sc.listener_metadata);
  if (sc.default_action.empty()) r.fail(p + ".defaultAction", "is required");
  r.each(s, "syscalls", p, [&](const json& sys, const std::string& sp) {
    SeccompSyscall call;
    r.get(sys, "names", sp, call.names);
    r.get(sys, "action", sp, call.action);
    r.get(sys, "errnoRet", sp, call.errno_ret);
    r.each(sys, "args", sp, [&](const json& a, const std::string& ap) {
      SeccompArg arg;
      r.get(a, "index", ap, arg.index);
      r.get(a, "value", ap, arg.value);
      r.get(a, "valueTwo", ap, arg.value_two);
      r.get(a, "op", ap, arg.op);
      call.args.push_back(std::move(arg));
    });
    sc.syscalls.push_back(std::move(call));
  });
  return sc;
}

Linux read_linux(Reader& r, const json& l) {
  const std::string p = "linux";
  Linux lx;
  r.each(l, "namespaces", p, [&](const json& n, const std::string& np) {
    Namespace ns;
    r.get(n, "type", np, ns.type);
    r.get(n, "path", np, ns.path);
    lx.namespaces.push_back(std::move(ns));
  });
  read_mappings(r, l, "uidMappings", p, lx.uid_mappings);
  read_mappings(r, l, "gidMappings", p, lx.gid_mappings);
  if (auto* t = r.object(l, "timeOffsets", p)) {
    for (auto& [clock, off] : t->items()) {
      std::string tp = p + ".timeOffsets." + clock;
      if (!off.is_object()) {
        r.fail(tp, "expected an object");
        continue;
      }
      TimeOffset o;
      r.get(off, "secs", tp, o.secs);
      r.get(off, "nanosecs", tp, o.nanosecs);
      lx.time_offsets[clock] = o;
    }
  }
  r.each(l, "devices", p, [&](const json& d, const std::string& dp) {
    Device dev;
    r.get(d, "type", dp, dev.type);
    r.get(d, "path", dp, dev.path);
    r.get(d, "major", dp, dev.major);
    r.get(d, "minor", dp, dev.minor);
    r.get(d, "fileMode", dp, dev.file_mode);
    r.get(d, "uid", dp, dev.uid);
    r.get(d, "gid", dp, dev.gid);
    lx.devices.push_back(std::move(dev));
  });
  r.get(l, "cgroupsPath", p, lx.cgroups_path);
  if (auto* res = r.object(l, "resources", p))
    lx.resources = read_resources(r, *res, p + ".resources");
  r.get(l, "rootfsPropagation", p, lx.rootfs_propagation);
  r.get(l, "maskedPaths", p, lx.masked_paths);
  r.get(l, "readonlyPaths", p, lx.readonly_paths);
  r.get(l, "mountLabel", p, lx.mount_label);
  r.get(l, "sysctl", p, lx.sysctl);
  if (auto* s = r.object(l, "seccomp", p)) lx.seccomp = read_seccomp(r, *s, p + ".seccomp");
  if (auto* pers = r.object(l, "personality", p)) {
    Personality per;
    r.get(*pers, "domain", p + ".personality", per.domain);
    r.get(*pers, "flags", p + ".personality", per.flags);
    lx.personality = std::move(per);
  }
  if (r.field(l, "intelRdt")) r.fail(p + ".intelRdt", "not supported on this runtime");
  if (r.field(l, "netDevices")) r.fail(p + ".netDevices", "not supported yet");
  return lx;
}

Result<json> parse_json(const std::string& text, const char* what) {
  try {
    json j = json::parse(text);
    if (!j.is_object()) return make_error(std::string("parse ") + what + ": expected a JSON object");
    return j;
  } catch (const json::exception& e) {
    return make_error(std::string("parse ") + what + ": " + e.what());
  }
}

}  // namespace

bool Spec::has_namespace(const std::string& type) const { return find_namespace(type) != nullptr; }

const Namespace* Spec::find_namespace(const std::string& type) const {
  for (const auto& ns : linux.namespaces)
    if (ns.type == type) return &ns;
  return nullptr;
}

Result<Spec> parse_spec(const std::string& json_text) {
  json j = FORKER_TRY(parse_json(json_text, "config.json"));
  Reader r;
  Spec spec;
  r.get(j, "ociVersion", "", spec.oci_version);
  if (spec.oci_version.empty()) r.fail("ociVersion", "is required");
  if (auto* p = r.object(j, "process", "")) spec.process = read_process(r, *p, "process");
  if (auto* root = r.object(j, "root", "")) {
    r.get(*root, "path", "root", spec.root.path);
    r.get(*root, "readonly", "root", spec.root.readonly);
  }
  r.get(j, "hostname", "", spec.hostname);
  r.get(j, "domainname", "", spec.domainname);
  r.each(j, "mounts", "", [&](const json& m, const std::string& mp) {
    Mount mount;
    r.get(m, "destination", mp, mount.destination);
    r.get(m, "type", mp, mount.type);
    r.get(m, "source", mp, mount.source);
    r.get(m, "options", mp, mount.options);
    read_mappings(r, m, "uidMappings", mp, mount.uid_mappings);
    read_mappings(r, m, "gidMappings", mp, mount.gid_mappings);
    spec.mounts.push_back(std::move(mount));
  });
  if (auto* h = r.object(j, "hooks", "")) {
    spec.hooks.prestart = read_hooks(r, *h, "prestart");
    spec.hooks.create_runtime = read_hooks(r, *h, "createRuntime");
    spec.hooks.create_container = read_hooks(r, *h, "createContainer");
    spec.hooks.start_container = read_hooks(r, *h, "startContainer");
    spec.hooks.poststart = read_hooks(r, *h, "poststart");
    spec.hooks.poststop = read_hooks(r, *h, "poststop");
  }
  r.get(j, "annotations", "", spec.annotations);
  if (auto* l = r.object(j, "linux", "")) spec.linux = read_linux(r, *l);
  for (const char* other : {"windows", "solaris", "vm", "zos"})
    if (r.field(j, other)) r.fail(other, "not supported on Linux");
  if (r.error) return *r.error;
  return spec;
}

Result<Process> parse_process(const std::string& json_text) {
  json j = FORKER_TRY(parse_json(json_text, "process.json"));
  Reader r;
  Process p = read_process(r, j, "process");
  if (r.error) return *r.error;
  return p;
}

Result<Spec> load_spec(const std::string& bundle) {
  std::string path = bundle + "/config.json";
  std::string text = FORKER_TRY(read_file(path));
  return parse_spec(text);
}

}  // namespace forker::oci
