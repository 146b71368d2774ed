#include "oci/default_spec.hpp"

#include <nlohmann/json.hpp>

namespace forker::oci {

using json = nlohmann::json;

namespace {

const std::vector<std::string> kDefaultCaps = {"CAP_AUDIT_WRITE", "CAP_KILL",
                                               "CAP_NET_BIND_SERVICE"};

json default_mounts() {
  return json::array({
      {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
      {{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"},
       {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
      {{"destination", "/dev/pts"}, {"type", "devpts"}, {"source", "devpts"},
       {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
      {{"destination", "/dev/shm"}, {"type", "tmpfs"}, {"source", "shm"},
       {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
      {{"destination", "/dev/mqueue"}, {"type", "mqueue"}, {"source", "mqueue"},
       {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"},
       {"options", {"nosuid", "noexec", "nodev", "ro"}}},
      {{"destination", "/sys/fs/cgroup"}, {"type", "cgroup"}, {"source", "cgroup"},
       {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}},
  });
}

}  // namespace

std::string default_spec_json(bool rootless, unsigned int uid, unsigned int gid) {
  json caps = kDefaultCaps;
  json spec = {
      {"ociVersion", "1.1.0"},
      {"process",
       {{"terminal", true},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", {"sh"}},
        {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
        {"cwd", "/"},
        {"capabilities",
         {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"ambient", caps}}},
        {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
        {"noNewPrivileges", true}}},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "forker"},
      {"mounts", default_mounts()},
      {"linux",
       {{"resources", {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}}},
        {"namespaces", json::array({{{"type", "pid"}}, {{"type", "network"}}, {{"type", "ipc"}},
                                    {{"type", "uts"}}, {{"type", "mount"}}, {{"type", "cgroup"}}})},
        {"maskedPaths",
         {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
          "/proc/scsi"}},
        {"readonlyPaths",
         {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}},
  };
  if (rootless) {
    auto& lx = spec["linux"];
    lx.erase("resources");
    lx["uidMappings"] = json::array({{{"containerID", 0}, {"hostID", uid}, {"size", 1}}});
    lx["gidMappings"] = json::array({{{"containerID", 0}, {"hostID", gid}, {"size", 1}}});
    lx["namespaces"] = json::array({{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}},
                                    {{"type", "mount"}}, {{"type", "cgroup"}}, {{"type", "user"}}});
    auto& mounts = spec["mounts"];
    for (auto& m : mounts) {
      if (m["destination"] == "/sys") {
        m = {{"destination", "/sys"}, {"type", "none"}, {"source", "/sys"},
             {"options", {"rbind", "nosuid", "noexec", "nodev", "ro"}}};
      }
      if (m["destination"] == "/dev/pts") {
        auto opts = json::array();
        for (auto& o : m["options"])
          if (o != "gid=5") opts.push_back(o);
        m["options"] = opts;
      }
    }
    // mqueue stays a mount of its own: the container's IPC namespace belongs to its user
    // namespace, so it may mount one (the host may have no /dev/mqueue to bind).
    json kept = json::array();
    for (auto& m : mounts)
      if (m["destination"] != "/sys/fs/cgroup") kept.push_back(m);
    spec["mounts"] = kept;
  }
  return spec.dump(1, '\t') + "\n";
}

std::string features_json() {
  json mount_options = {"acl", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync",
                        "exec", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime",
                        "noexec", "nolazytime", "nomand", "norelatime", "nostrictatime",
                        "nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev",
                        "rdiratime", "relatime", "remount", "rexec", "rnoatime", "rnodev",
                        "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid",
                        "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared",
                        "rslave", "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw",
                        "shared", "silent", "slave", "strictatime", "suid", "sync", "unbindable"};
  json caps = json::array();
  const char* names[] = {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
                         "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
                         "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
                         "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
                         "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
                         "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
                         "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
                         "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
                         "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
                         "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
                         "CAP_CHECKPOINT_RESTORE"};
  for (const char* n : names) caps.push_back(n);
  json f = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", "1.1.0"},
      {"hooks", {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                 "poststop"}},
      {"mountOptions", mount_options},
      {"linux",
       {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}},
        {"capabilities", caps},
        {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}}},
        {"seccomp",
         {{"enabled", true},
          {"actions", {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                       "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                       "SCMP_ACT_TRAP"}},
          {"operators", {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                         "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"}},
          {"archs", {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"}},
          {"knownFlags", {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                          "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                          "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}},
          {"supportedFlags", {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                              "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}}}},
        {"apparmor", {{"enabled", false}}},
        {"selinux", {{"enabled", false}}},
        {"intelRdt", {{"enabled", false}}}}},
      {"annotations", {{"org.opencontainers.runc.version", "forker-oci " FORKER_VERSION}}},
  };
  return f.dump(4) + "\n";
}

}  // namespace forker::oci
