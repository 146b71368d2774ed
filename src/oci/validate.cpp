#include "oci/validate.hpp"

#include <sched.h>

#include <set>

#include "core/strings.hpp"

namespace forker::oci {

int namespace_clone_flag(const std::string& type) {
  if (type == "mount") return CLONE_NEWNS;
  if (type == "pid") return CLONE_NEWPID;
  if (type == "network") return CLONE_NEWNET;
  if (type == "ipc") return CLONE_NEWIPC;
  if (type == "uts") return CLONE_NEWUTS;
  if (type == "user") return CLONE_NEWUSER;
  if (type == "cgroup") return CLONE_NEWCGROUP;
  if (type == "time") return CLONE_NEWTIME;
  return 0;
}

Status validate_container_id(const std::string& id) {
  if (id.empty()) return make_error("container id: must not be empty");
  if (id.size() > 1024) return make_error("container id: too long");
  if (id == "." || id == "..") return make_error("invalid container id", id);
  for (char c : id) {
    bool okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-' || c == '.' || c == '+';
    if (!okc) return make_error("invalid container id", id);
  }
  return ok();
}

Status validate_process(const Process& p, const std::string& field) {
  if (p.args.empty()) return make_error(field + ".args: must not be empty");
  if (p.cwd.empty() || p.cwd[0] != '/') return make_error(field + ".cwd: must be an absolute path");
  for (const auto& e : p.env)
    if (e.find('=') == std::string::npos)
      return make_error(field + ".env " + e + ": expected KEY=VALUE");
  if (p.oom_score_adj && (*p.oom_score_adj < -1000 || *p.oom_score_adj > 1000))
    return make_error(field + ".oomScoreAdj: must be within -1000..1000");
  if (p.user.umask && *p.user.umask > 0777) return make_error(field + ".user.umask: out of range");
  return ok();
}

Status validate_sysctl(const Spec& spec) {
  for (const auto& [key, value] : spec.linux.sysctl) {
    bool ipc = key == "kernel.msgmax" || key == "kernel.msgmnb" || key == "kernel.msgmni" ||
               key == "kernel.sem" || key == "kernel.shmall" || key == "kernel.shmmax" ||
               key == "kernel.shmmni" || key == "kernel.shm_rmid_forced" ||
               starts_with(key, "fs.mqueue.");
    bool net = starts_with(key, "net.");
    bool uts = key == "kernel.hostname" || key == "kernel.domainname";
    if (key.find("..") != std::string::npos || key.find('/') != std::string::npos)
      return make_error("linux.sysctl " + key + ": invalid key");
    if (ipc) {
      const Namespace* ns = spec.find_namespace("ipc");
      if (!ns) return make_error("linux.sysctl " + key + ": needs an ipc namespace");
    } else if (net) {
      const Namespace* ns = spec.find_namespace("network");
      if (!ns) return make_error("linux.sysctl " + key + ": needs a network namespace");
    } else if (uts) {
      if (!spec.find_namespace("uts")) return make_error("linux.sysctl " + key + ": needs a uts namespace");
    } else {
      return make_error("linux.sysctl " + key + ": not namespaced, refused");
    }
  }
  return ok();
}

Status validate_spec(const Spec& spec, bool need_process) {
  // Accept every 1.x version; the validation suite writes versions newer than 1.1.
  if (!starts_with(spec.oci_version, "1."))
    return make_error("ociVersion " + spec.oci_version + ": unsupported, expected 1.x");
  if (spec.root.path.empty()) return make_error("root.path: is required");
  if (need_process) {
    if (!spec.process) return make_error("process: is required");
    FORKER_TRY(validate_process(*spec.process));
  }
  std::set<std::string> seen;
  for (const auto& ns : spec.linux.namespaces) {
    if (namespace_clone_flag(ns.type) == 0)
      return make_error("linux.namespaces type " + ns.type + ": unknown namespace type");
    if (!seen.insert(ns.type).second)
      return make_error("linux.namespaces type " + ns.type + ": listed twice");
    if (!ns.path.empty() && ns.path[0] != '/')
      return make_error("linux.namespaces " + ns.type + " path " + ns.path + ": must be absolute");
  }
  bool userns = seen.count("user") > 0;
  if (!userns && (!spec.linux.uid_mappings.empty() || !spec.linux.gid_mappings.empty()))
    return make_error("linux.uidMappings: need a user namespace");
  if (userns && spec.find_namespace("user")->path.empty() &&
      (spec.linux.uid_mappings.empty() || spec.linux.gid_mappings.empty()))
    return make_error("linux.namespaces user: a new user namespace needs uidMappings and gidMappings");
  if (!spec.linux.time_offsets.empty()) {
    const Namespace* t = spec.find_namespace("time");
    if (!t || !t->path.empty())
      return make_error("linux.timeOffsets: need a new time namespace");
    for (const auto& [clock, off] : spec.linux.time_offsets)
      if (clock != "monotonic" && clock != "boottime")
        return make_error("linux.timeOffsets " + clock + ": unknown clock");
  }
  if (!spec.hostname.empty() && !seen.count("uts"))
    return make_error("hostname: needs a uts namespace");
  if (!spec.domainname.empty() && !seen.count("uts"))
    return make_error("domainname: needs a uts namespace");
  if (!spec.linux.rootfs_propagation.empty()) {
    static const std::set<std::string> kProps = {"private", "rprivate", "slave", "rslave",
                                                 "shared", "rshared", "unbindable", "runbindable"};
    if (!kProps.count(spec.linux.rootfs_propagation))
      return make_error("linux.rootfsPropagation " + spec.linux.rootfs_propagation + ": unknown");
  }
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    const auto& m = spec.mounts[i];
    if (m.destination.empty())
      return make_error("mounts[" + std::to_string(i) + "].destination: is required");
    for (const auto& part : split(m.destination, '/'))
      if (part == "..")
        return make_error("mounts[" + std::to_string(i) + "].destination " + m.destination +
                          ": must not contain ..");
  }
  for (const auto& d : spec.linux.devices) {
    if (d.path.empty() || d.path[0] != '/') return make_error("linux.devices path " + d.path + ": must be absolute");
    if (d.type != "c" && d.type != "b" && d.type != "u" && d.type != "p")
      return make_error("linux.devices " + d.path + " type " + d.type + ": must be c, b, u or p");
  }
  FORKER_TRY(validate_sysctl(spec));
  return ok();
}

}  // namespace forker::oci
