// From `forker run`'s options and the image's defaults to a runtime-spec config.json, the way
// docker builds one: its default capabilities and seccomp profile, PID/mount/UTS/IPC/network
// namespaces, /etc/hostname, /etc/hosts and /etc/resolv.conf bound from files of the container,
// limits from -m/--cpus/--pids-limit, volumes, tmpfs, ulimits. Pure: no file is written and
// nothing is mounted here, so every rule is unit-tested without root.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "engine/run_options.hpp"
#include "oci/spec.hpp"

namespace forker::engine {

// The "config" object of an image config (docker's and OCI's): what a run starts by default.
struct ImageDefaults {
  std::vector<std::string> env;         // "PATH=/usr/bin", ...
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
  std::string stop_signal;              // "SIGQUIT"; empty: not set
  std::vector<std::string> exposed_ports;  // "80/tcp"
  std::vector<std::string> volumes;        // "/data"
  std::map<std::string, std::string> labels;
};
// From the image config blob's text. A missing "config" object gives empty defaults.
Result<ImageDefaults> parse_image_defaults(std::string_view image_config_json);

// What the builder needs besides the options: where things are, and what it may look at.
struct ConfigContext {
  std::string id;              // 64 hex digits
  std::string name;
  std::string rootfs;          // absolute host path of the root directory (root.path)
  std::string container_dir;   // holds hostname, hosts, resolv.conf (bound into /etc)
  std::string cgroups_path;    // "/forker/<id>"; empty: no cgroup (rootless without delegation)
  std::string volumes_dir;     // named volumes live in VOLUMES_DIR/<name>/_data
  int rootfs_fd = -1;          // the container's root (a directory or mount fd) for -u NAME and
                               // for docker's "create the workdir" rule; -1: numeric users only
  std::vector<std::string> host_env;  // our environment, for "-e KEY" without a value
  std::string host_resolv_conf;       // text of the host's /etc/resolv.conf
  bool rootless = false;              // map our uid to root in a user namespace
  bool swap_accounting = true;        // the cgroup can limit swap: docker gives -m an equal
                                      // amount of swap only then
  uint32_t host_uid = 0, host_gid = 0;
  // container_network.hpp decided these from --network: none | host | bridge | container | ns.
  std::string network_mode = "none";
  std::string netns_path;  // container and ns modes: the namespace to join
};

// Files written into container_dir before the start and bound over /etc/<name>.
struct ContainerFiles {
  std::string hostname;     // "<hostname>\n"
  std::string hosts;        // localhost lines and "<ip?> <hostname>"
  std::string resolv_conf;  // the host's, loopback nameservers dropped; none left: docker's
                            // fallback (8.8.8.8, 8.8.4.4)
};

// The files for HOSTNAME. resolv.conf: the host's; unless HOST_NETWORK, without loopback
// nameservers, which the container's own network namespace cannot reach.
// docker's /etc/hosts lines for localhost and the IPv6 multicast names.
std::string localhost_hosts();
ContainerFiles make_container_files(const std::string& hostname, bool host_network,
                                    const std::string& host_resolv_conf);

struct BuiltConfig {
  nlohmann::json config;                  // config.json
  ContainerFiles files;
  std::vector<std::string> named_volumes;  // volume names to create before the start
  std::vector<std::string> anonymous_volumes;  // those of named_volumes made up for this run
                                               // (-v /ctr, image Volumes): --rm removes them
  std::string stop_signal;                // "SIGTERM" unless the image or --stop-signal says
  std::vector<std::string> args;          // process.args (entrypoint + command), for ps
};

// Errors name the option and the value: "--cpus 'abc': not a number".
Result<BuiltConfig> build_config(const RunOptions& o, const ImageDefaults& image,
                                 const ConfigContext& ctx);

// ---- the pieces, exposed for tests ----

// docker's default capability set (14 capabilities), "CAP_" names.
const std::vector<std::string>& default_capabilities();
// Every capability this build knows, up to the running kernel's last one when it can be read:
// --privileged and --cap-add ALL.
std::vector<std::string> all_capabilities();
// "net_admin", "NET_ADMIN", "CAP_NET_ADMIN" -> "CAP_NET_ADMIN"; "ALL" stays "ALL". Unknown: error.
Result<std::string> normalize_capability(std::string_view name);
// --cpus "1.5" -> quota 150000, period 100000.
struct CpuQuota {
  int64_t quota = 0;
  uint64_t period = 0;
};
Result<CpuQuota> parse_cpus(std::string_view text);
// --ulimit "nofile=1024:2048" / "nproc=512" -> RLIMIT_NOFILE soft 1024 hard 2048.
Result<oci::Rlimit> parse_ulimit(std::string_view text);
// -v: "/host:/ctr[:ro|rw|z|Z...]" (bind; the host path must be absolute), "name:/ctr[:ro]"
// (named volume), "/ctr" (anonymous volume, a fresh named one).
struct VolumeSpec {
  enum class Kind { kBind, kNamed, kAnonymous } kind = Kind::kBind;
  std::string source;       // host path or volume name
  std::string destination;  // absolute
  bool read_only = false;
  std::string propagation;  // "rshared", "slave", ...; empty: rprivate (docker's default)
};
Result<VolumeSpec> parse_volume(std::string_view text);
// --tmpfs "/run:rw,size=64m,mode=1777" -> destination and mount options.
Result<oci::Mount> parse_tmpfs(std::string_view text);
// --env-file lines: KEY=VALUE, KEY (from HOST_ENV), blank lines and '#' comments skipped.
Result<std::vector<std::string>> parse_env_file(std::string_view text,
                                                const std::vector<std::string>& host_env);
// -u "name", "uid", "name:group", "uid:gid" -> numeric ids and the supplementary groups of the
// user, read from ROOTFS_FD's /etc/passwd and /etc/group (resolved inside it: a symlink in the
// image cannot lead out). A numeric uid absent from passwd is allowed (gid 0 unless given).
Result<oci::User> resolve_user(std::string_view spec, int rootfs_fd);
// The same, with the user's home directory from passwd ("/" without an entry): runc sets HOME
// from it when the environment has none, and images rely on that.
struct ResolvedUser {
  oci::User user;
  std::string home = "/";
};
Result<ResolvedUser> lookup_user(std::string_view spec, int rootfs_fd);

}  // namespace forker::engine
