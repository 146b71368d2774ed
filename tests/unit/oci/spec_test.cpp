// parse_spec / parse_process: every section of config.json into the structs, and errors that
// name the field. Unknown properties are ignored, as the runtime-spec requires.
#include "oci/spec.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "oci/default_spec.hpp"

namespace forker::oci {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;

// A minimal valid config; each top-level key of FRAGMENT replaces or adds one.
std::string config(const json& fragment = json::object()) {
  json j = {{"ociVersion", "1.1.0"}, {"root", {{"path", "rootfs"}}}};
  for (const auto& [key, value] : fragment.items()) j[key] = value;
  return j.dump();
}

Spec parse_ok(const std::string& text) {
  auto r = parse_spec(text);
  EXPECT_TRUE(r) << r.error().message();
  return r ? std::move(r).value() : Spec{};
}

std::string parse_err(const std::string& text) {
  auto r = parse_spec(text);
  EXPECT_FALSE(r) << "parsed: " << text;
  return r ? std::string() : r.error().message();
}

// ---- top level ----

TEST(ParseSpec, Minimal) {
  Spec s = parse_ok(config());
  EXPECT_EQ(s.oci_version, "1.1.0");
  EXPECT_EQ(s.root.path, "rootfs");
  EXPECT_FALSE(s.root.readonly);
  EXPECT_FALSE(s.process);
  EXPECT_TRUE(s.mounts.empty());
  EXPECT_TRUE(s.linux.namespaces.empty());
  EXPECT_FALSE(s.linux.resources);
  EXPECT_FALSE(s.linux.seccomp);
}

TEST(ParseSpec, RootHostnameDomainname) {
  Spec s = parse_ok(config({{"root", {{"path", "/abs/root"}, {"readonly", true}}},
                            {"hostname", "box"},
                            {"domainname", "example.org"}}));
  EXPECT_EQ(s.root.path, "/abs/root");
  EXPECT_TRUE(s.root.readonly);
  EXPECT_EQ(s.hostname, "box");
  EXPECT_EQ(s.domainname, "example.org");
}

TEST(ParseSpec, UnknownPropertiesIgnored) {
  Spec s = parse_ok(config({{"someFutureField", {{"x", 1}}},
                            {"process", {{"args", {"sh"}}, {"futureProcessField", true}}},
                            {"linux", {{"futureLinuxField", "x"}}},
                            {"root", {{"path", "r"}, {"extra", 3}}}}));
  ASSERT_TRUE(s.process);
  EXPECT_THAT(s.process->args, ElementsAre("sh"));
}

TEST(ParseSpec, NullFieldsAreAbsent) {
  Spec s = parse_ok(
      config({{"process", {{"args", {"sh"}}, {"oomScoreAdj", nullptr}}}, {"hostname", nullptr}}));
  ASSERT_TRUE(s.process);
  EXPECT_FALSE(s.process->oom_score_adj);
  EXPECT_EQ(s.hostname, "");
}

TEST(ParseSpec, OciVersionRequired) {
  EXPECT_EQ(parse_err(R"({"root": {"path": "r"}})"), "ociVersion: is required");
  EXPECT_EQ(parse_err(R"({"ociVersion": 1})"), "ociVersion: expected a string");
}

TEST(ParseSpec, MalformedJson) {
  EXPECT_THAT(parse_err("{"), StartsWith("parse config.json: "));
  EXPECT_THAT(parse_err(""), StartsWith("parse config.json: "));
  EXPECT_THAT(parse_err(R"({"ociVersion": "1.0.0",})"), StartsWith("parse config.json: "));
  EXPECT_EQ(parse_err("[1, 2]"), "parse config.json: expected a JSON object");
  EXPECT_EQ(parse_err("\"text\""), "parse config.json: expected a JSON object");
}

TEST(ParseSpec, SectionsOfWrongType) {
  EXPECT_EQ(parse_err(config({{"process", "sh"}})), "process: expected an object");
  EXPECT_EQ(parse_err(config({{"root", json::array()}})), "root: expected an object");
  EXPECT_EQ(parse_err(config({{"mounts", {{"destination", "/x"}}}})), "mounts: expected an array");
  EXPECT_EQ(parse_err(config({{"mounts", {1}}})), "mounts[0]: expected an object");
  EXPECT_EQ(parse_err(config({{"hooks", 3}})), "hooks: expected an object");
  EXPECT_EQ(parse_err(config({{"linux", true}})), "linux: expected an object");
  EXPECT_EQ(parse_err(config({{"annotations", {{"a", 1}}}})), "annotations.a: expected a string");
  EXPECT_EQ(parse_err(config({{"annotations", json::array()}})),
            "annotations: expected an object of strings");
  EXPECT_EQ(parse_err(config({{"hostname", 5}})), "hostname: expected a string");
  EXPECT_EQ(parse_err(config({{"root", {{"readonly", "yes"}}}})),
            "root.readonly: expected a boolean");
}

TEST(ParseSpec, FirstErrorWins) {
  EXPECT_EQ(parse_err(config({{"hostname", 5}, {"domainname", 6}})), "hostname: expected a string");
}

TEST(ParseSpec, OtherPlatformsRefused) {
  EXPECT_EQ(parse_err(config({{"windows", json::object()}})), "windows: not supported on Linux");
  EXPECT_EQ(parse_err(config({{"solaris", json::object()}})), "solaris: not supported on Linux");
  EXPECT_EQ(parse_err(config({{"vm", json::object()}})), "vm: not supported on Linux");
  EXPECT_EQ(parse_err(config({{"zos", json::object()}})), "zos: not supported on Linux");
}

TEST(ParseSpec, Annotations) {
  Spec s = parse_ok(config({{"annotations", {{"org.example.a", "1"}, {"b", ""}}}}));
  EXPECT_THAT(s.annotations, ElementsAre(Pair("b", ""), Pair("org.example.a", "1")));
}

// ---- process ----

const char* kFullProcess = R"({
  "terminal": true,
  "consoleSize": {"height": 24, "width": 80},
  "user": {"uid": 1000, "gid": 1001, "umask": 18, "additionalGids": [5, 6, 4294967295]},
  "args": ["/bin/sh", "-c", "echo hi"],
  "env": ["PATH=/bin", "A=b=c"],
  "cwd": "/work",
  "capabilities": {
    "bounding": ["CAP_KILL", "CAP_CHOWN"],
    "effective": ["CAP_KILL"],
    "inheritable": ["CAP_SETUID"],
    "permitted": ["CAP_KILL", "CAP_NET_RAW"],
    "ambient": []
  },
  "rlimits": [
    {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512},
    {"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 0}
  ],
  "noNewPrivileges": true,
  "oomScoreAdj": -999,
  "apparmorProfile": "docker-default",
  "selinuxLabel": "system_u:system_r:container_t:s0"
})";

void expect_full_process(const Process& p) {
  EXPECT_TRUE(p.terminal);
  ASSERT_TRUE(p.console_size);
  EXPECT_EQ(p.console_size->height, 24u);
  EXPECT_EQ(p.console_size->width, 80u);
  EXPECT_EQ(p.user.uid, 1000u);
  EXPECT_EQ(p.user.gid, 1001u);
  EXPECT_EQ(p.user.umask, 18u);
  EXPECT_THAT(p.user.additional_gids, ElementsAre(5u, 6u, 4294967295u));
  EXPECT_THAT(p.args, ElementsAre("/bin/sh", "-c", "echo hi"));
  EXPECT_THAT(p.env, ElementsAre("PATH=/bin", "A=b=c"));
  EXPECT_EQ(p.cwd, "/work");
  ASSERT_TRUE(p.capabilities);
  EXPECT_THAT(p.capabilities->bounding, ElementsAre("CAP_KILL", "CAP_CHOWN"));
  EXPECT_THAT(p.capabilities->effective, ElementsAre("CAP_KILL"));
  EXPECT_THAT(p.capabilities->inheritable, ElementsAre("CAP_SETUID"));
  EXPECT_THAT(p.capabilities->permitted, ElementsAre("CAP_KILL", "CAP_NET_RAW"));
  EXPECT_TRUE(p.capabilities->ambient.empty());
  ASSERT_EQ(p.rlimits.size(), 2u);
  EXPECT_EQ(p.rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(p.rlimits[0].hard, 1024u);
  EXPECT_EQ(p.rlimits[0].soft, 512u);
  EXPECT_EQ(p.rlimits[1].type, "RLIMIT_CORE");
  EXPECT_EQ(p.rlimits[1].hard, UINT64_MAX);
  EXPECT_EQ(p.rlimits[1].soft, 0u);
  EXPECT_TRUE(p.no_new_privileges);
  EXPECT_EQ(p.oom_score_adj, -999);
  EXPECT_EQ(p.apparmor_profile, "docker-default");
  EXPECT_EQ(p.selinux_label, "system_u:system_r:container_t:s0");
}

TEST(ParseSpec, ProcessAllFields) {
  Spec s = parse_ok(config({{"process", json::parse(kFullProcess)}}));
  ASSERT_TRUE(s.process);
  expect_full_process(*s.process);
}

TEST(ParseSpec, ProcessDefaults) {
  Spec s = parse_ok(config({{"process", {{"args", {"sh"}}}}}));
  ASSERT_TRUE(s.process);
  const Process& p = *s.process;
  EXPECT_FALSE(p.terminal);
  EXPECT_FALSE(p.console_size);
  EXPECT_EQ(p.user.uid, 0u);
  EXPECT_EQ(p.user.gid, 0u);
  EXPECT_FALSE(p.user.umask);
  EXPECT_EQ(p.cwd, "/");
  EXPECT_FALSE(p.capabilities);
  EXPECT_TRUE(p.rlimits.empty());
  EXPECT_FALSE(p.no_new_privileges);
  EXPECT_FALSE(p.oom_score_adj);
}

TEST(ParseProcess, AllFields) {
  auto p = parse_process(kFullProcess);
  ASSERT_TRUE(p) << p.error().message();
  expect_full_process(*p);
}

TEST(ParseProcess, Errors) {
  EXPECT_THAT(parse_process("{").error().message(), StartsWith("parse process.json: "));
  EXPECT_EQ(parse_process("[]").error().message(), "parse process.json: expected a JSON object");
  EXPECT_EQ(parse_process(R"({"user": {"uid": "root"}})").error().message(),
            "process.user.uid: expected an integer");
  EXPECT_EQ(parse_process(R"({"args": "sh"})").error().message(),
            "process.args: expected an array of strings");
}

std::string process_err(const json& process) { return parse_err(config({{"process", process}})); }

TEST(ParseSpec, ProcessFieldErrors) {
  EXPECT_EQ(process_err({{"user", {{"uid", "0"}}}}), "process.user.uid: expected an integer");
  EXPECT_EQ(process_err({{"user", {{"uid", 1.5}}}}), "process.user.uid: expected an integer");
  EXPECT_EQ(process_err({{"user", {{"gid", true}}}}), "process.user.gid: expected an integer");
  EXPECT_EQ(process_err({{"user", 0}}), "process.user: expected an object");
  EXPECT_EQ(process_err({{"user", {{"additionalGids", {1, "x"}}}}}),
            "process.user.additionalGids[1]: expected an integer");
  EXPECT_EQ(process_err({{"user", {{"additionalGids", 1}}}}),
            "process.user.additionalGids: expected an array of integers");
  EXPECT_EQ(process_err({{"args", {"sh", 1}}}), "process.args[1]: expected a string");
  EXPECT_EQ(process_err({{"env", "A=b"}}), "process.env: expected an array of strings");
  EXPECT_EQ(process_err({{"cwd", 1}}), "process.cwd: expected a string");
  EXPECT_EQ(process_err({{"terminal", "yes"}}), "process.terminal: expected a boolean");
  EXPECT_EQ(process_err({{"consoleSize", {{"height", -1}}}}),
            "process.consoleSize.height: expected an unsigned integer");
  EXPECT_EQ(process_err({{"capabilities", {{"bounding", "CAP_KILL"}}}}),
            "process.capabilities.bounding: expected an array of strings");
  EXPECT_EQ(process_err({{"capabilities", {{"ambient", {7}}}}}),
            "process.capabilities.ambient[0]: expected a string");
  EXPECT_EQ(process_err({{"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", -1}}}}}),
            "process.rlimits[0].hard: expected an unsigned integer");
  EXPECT_EQ(process_err({{"rlimits", {"RLIMIT_NOFILE"}}}),
            "process.rlimits[0]: expected an object");
  EXPECT_EQ(process_err({{"noNewPrivileges", 1}}), "process.noNewPrivileges: expected a boolean");
  EXPECT_EQ(process_err({{"oomScoreAdj", "high"}}), "process.oomScoreAdj: expected an integer");
  EXPECT_EQ(process_err({{"oomScoreAdj", 4294967296LL}}),
            "process.oomScoreAdj: value out of range");
}

TEST(ParseSpec, UidOutOfRange) {
  EXPECT_EQ(process_err({{"user", {{"uid", -1}}}}),
            "process.user.uid: expected an unsigned integer");
  EXPECT_EQ(process_err({{"user", {{"uid", 1LL << 40}}}}), "process.user.uid: value out of range");
  EXPECT_EQ(process_err({{"user", {{"gid", 4294967296LL}}}}),
            "process.user.gid: value out of range");
  // The largest uid_t still fits.
  Spec s = parse_ok(config({{"process", {{"user", {{"uid", 4294967295LL}}}}}}));
  EXPECT_EQ(s.process->user.uid, 4294967295u);
}

TEST(ParseSpec, ProcessUnsupportedFields) {
  EXPECT_EQ(process_err({{"user", {{"username", "root"}}}}),
            "process.user.username: is for Windows only");
  EXPECT_EQ(process_err({{"commandLine", "sh"}}), "process.commandLine: is for Windows only");
  EXPECT_EQ(process_err({{"ioPriority", {{"class", "IOPRIO_CLASS_IDLE"}}}}),
            "process.ioPriority: not supported yet");
  EXPECT_EQ(process_err({{"scheduler", {{"policy", "SCHED_OTHER"}}}}),
            "process.scheduler: not supported yet");
  EXPECT_EQ(process_err({{"execCPUAffinity", {{"initial", "0"}}}}),
            "process.execCPUAffinity: not supported yet");
}

// ---- mounts ----

TEST(ParseSpec, Mounts) {
  Spec s = parse_ok(config({{"mounts", json::parse(R"([
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/data", "type": "bind", "source": "./data", "options": ["rbind", "ro"],
     "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
     "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 1},
                     {"containerID": 1, "hostID": 300000, "size": 10}]},
    {"destination": "/tmp"}
  ])")}}));
  ASSERT_EQ(s.mounts.size(), 3u);
  EXPECT_EQ(s.mounts[0].destination, "/proc");
  EXPECT_EQ(s.mounts[0].type, "proc");
  EXPECT_EQ(s.mounts[0].source, "proc");
  EXPECT_TRUE(s.mounts[0].options.empty());
  const Mount& b = s.mounts[1];
  EXPECT_EQ(b.source, "./data");
  EXPECT_THAT(b.options, ElementsAre("rbind", "ro"));
  ASSERT_EQ(b.uid_mappings.size(), 1u);
  EXPECT_EQ(b.uid_mappings[0].container_id, 0u);
  EXPECT_EQ(b.uid_mappings[0].host_id, 100000u);
  EXPECT_EQ(b.uid_mappings[0].size, 65536u);
  ASSERT_EQ(b.gid_mappings.size(), 2u);
  EXPECT_EQ(b.gid_mappings[1].container_id, 1u);
  EXPECT_EQ(b.gid_mappings[1].host_id, 300000u);
  EXPECT_EQ(b.gid_mappings[1].size, 10u);
  EXPECT_EQ(s.mounts[2].destination, "/tmp");
  EXPECT_EQ(s.mounts[2].type, "");
}

TEST(ParseSpec, MountErrors) {
  EXPECT_EQ(parse_err(config({{"mounts", {{{"destination", 1}}}}})),
            "mounts[0].destination: expected a string");
  EXPECT_EQ(parse_err(config({{"mounts", {{{"destination", "/a"}}, {{"options", "ro"}}}}})),
            "mounts[1].options: expected an array of strings");
  EXPECT_EQ(parse_err(config({{"mounts", {{{"uidMappings", {{{"hostID", -5}}}}}}}})),
            "mounts[0].uidMappings[0].hostID: expected an unsigned integer");
  EXPECT_EQ(parse_err(config({{"mounts", {{{"gidMappings", {3}}}}}})),
            "mounts[0].gidMappings[0]: expected an object");
}

// ---- hooks ----

TEST(ParseSpec, AllSixHooks) {
  json hook = {{"path", "/bin/hook"}, {"args", {"hook", "a"}}, {"env", {"X=1"}}, {"timeout", 5}};
  json hooks = {{"prestart", {hook}},        {"createRuntime", {hook, hook}},
                {"createContainer", {hook}}, {"startContainer", {hook}},
                {"poststart", {hook}},       {"poststop", {{{"path", "/bin/last"}}}}};
  Spec s = parse_ok(config({{"hooks", hooks}}));
  EXPECT_EQ(s.hooks.prestart.size(), 1u);
  EXPECT_EQ(s.hooks.create_runtime.size(), 2u);
  EXPECT_EQ(s.hooks.create_container.size(), 1u);
  EXPECT_EQ(s.hooks.start_container.size(), 1u);
  EXPECT_EQ(s.hooks.poststart.size(), 1u);
  ASSERT_EQ(s.hooks.poststop.size(), 1u);
  const Hook& h = s.hooks.prestart[0];
  EXPECT_EQ(h.path, "/bin/hook");
  EXPECT_THAT(h.args, ElementsAre("hook", "a"));
  EXPECT_THAT(h.env, ElementsAre("X=1"));
  EXPECT_EQ(h.timeout, 5);
  EXPECT_EQ(s.hooks.poststop[0].path, "/bin/last");
  EXPECT_FALSE(s.hooks.poststop[0].timeout);
}

TEST(ParseSpec, HookErrors) {
  auto hooks_err = [](const json& hooks) { return parse_err(config({{"hooks", hooks}})); };
  EXPECT_EQ(hooks_err({{"prestart", {{{"path", "relative/hook"}}}}}),
            "hooks.prestart[0].path: must be an absolute path");
  EXPECT_EQ(hooks_err({{"poststop", {{{"args", {"x"}}}}}}),
            "hooks.poststop[0].path: must be an absolute path");
  EXPECT_EQ(hooks_err({{"createRuntime", {{{"path", "/h"}, {"timeout", 0}}}}}),
            "hooks.createRuntime[0].timeout: must be positive");
  EXPECT_EQ(hooks_err({{"startContainer", {{{"path", "/h"}, {"timeout", -3}}}}}),
            "hooks.startContainer[0].timeout: must be positive");
  EXPECT_EQ(hooks_err({{"poststart", {{{"path", "/h"}, {"timeout", "5"}}}}}),
            "hooks.poststart[0].timeout: expected an integer");
  EXPECT_EQ(hooks_err({{"createContainer", {{"path", "/h"}}}}),
            "hooks.createContainer: expected an array");
}

// ---- linux ----

TEST(ParseSpec, LinuxNamespacesMappingsDevices) {
  Spec s = parse_ok(config({{"linux", json::parse(R"({
    "namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/x"},
                   {"type": "user"}, {"type": "time"}],
    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
    "gidMappings": [{"containerID": 0, "hostID": 1001, "size": 2}],
    "timeOffsets": {"monotonic": {"secs": -86400, "nanosecs": 500},
                    "boottime": {"secs": 3600}},
    "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229,
                 "fileMode": 438, "uid": 0, "gid": 5},
                {"type": "b", "path": "/dev/sda", "major": 8, "minor": 0}],
    "cgroupsPath": "/forker/c1",
    "rootfsPropagation": "rshared",
    "maskedPaths": ["/proc/kcore", "/sys/firmware"],
    "readonlyPaths": ["/proc/sys"],
    "mountLabel": "system_u:object_r:container_file_t:s0",
    "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000"},
    "personality": {"domain": "LINUX32", "flags": ["X"]}
  })")}}));
  const Linux& l = s.linux;
  ASSERT_EQ(l.namespaces.size(), 4u);
  EXPECT_EQ(l.namespaces[0].type, "pid");
  EXPECT_EQ(l.namespaces[0].path, "");
  EXPECT_EQ(l.namespaces[1].type, "network");
  EXPECT_EQ(l.namespaces[1].path, "/var/run/netns/x");
  EXPECT_TRUE(s.has_namespace("user"));
  EXPECT_FALSE(s.has_namespace("ipc"));
  ASSERT_NE(s.find_namespace("network"), nullptr);
  EXPECT_EQ(s.find_namespace("network")->path, "/var/run/netns/x");
  EXPECT_EQ(s.find_namespace("uts"), nullptr);
  ASSERT_EQ(l.uid_mappings.size(), 1u);
  EXPECT_EQ(l.uid_mappings[0].host_id, 1000u);
  ASSERT_EQ(l.gid_mappings.size(), 1u);
  EXPECT_EQ(l.gid_mappings[0].size, 2u);
  ASSERT_EQ(l.time_offsets.size(), 2u);
  EXPECT_EQ(l.time_offsets.at("monotonic").secs, -86400);
  EXPECT_EQ(l.time_offsets.at("monotonic").nanosecs, 500u);
  EXPECT_EQ(l.time_offsets.at("boottime").secs, 3600);
  EXPECT_EQ(l.time_offsets.at("boottime").nanosecs, 0u);
  ASSERT_EQ(l.devices.size(), 2u);
  EXPECT_EQ(l.devices[0].type, "c");
  EXPECT_EQ(l.devices[0].path, "/dev/fuse");
  EXPECT_EQ(l.devices[0].major, 10);
  EXPECT_EQ(l.devices[0].minor, 229);
  EXPECT_EQ(l.devices[0].file_mode, 0666u);
  EXPECT_EQ(l.devices[0].uid, 0u);
  EXPECT_EQ(l.devices[0].gid, 5u);
  EXPECT_FALSE(l.devices[1].file_mode);
  EXPECT_FALSE(l.devices[1].uid);
  EXPECT_EQ(l.cgroups_path, "/forker/c1");
  EXPECT_EQ(l.rootfs_propagation, "rshared");
  EXPECT_THAT(l.masked_paths, ElementsAre("/proc/kcore", "/sys/firmware"));
  EXPECT_THAT(l.readonly_paths, ElementsAre("/proc/sys"));
  EXPECT_EQ(l.mount_label, "system_u:object_r:container_file_t:s0");
  EXPECT_THAT(l.sysctl,
              ElementsAre(Pair("kernel.shmmax", "1000"), Pair("net.ipv4.ip_forward", "1")));
  ASSERT_TRUE(l.personality);
  EXPECT_EQ(l.personality->domain, "LINUX32");
  EXPECT_THAT(l.personality->flags, ElementsAre("X"));
}

const char* kResources = R"({
  "devices": [{"allow": false, "access": "rwm"},
              {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
              {"allow": true, "type": "b", "major": 8, "access": "m"}],
  "memory": {"limit": 536870912, "reservation": 268435456, "swap": -1, "kernel": 1,
             "kernelTCP": 2, "swappiness": 60, "disableOOMKiller": true, "useHierarchy": false,
             "checkBeforeUpdate": true},
  "cpu": {"shares": 1024, "quota": 50000, "burst": 1000, "period": 100000,
          "realtimeRuntime": 950000, "realtimePeriod": 1000000, "cpus": "0-1", "mems": "0",
          "idle": 1},
  "pids": {"limit": 100},
  "blockIO": {"weight": 500, "leafWeight": 300,
              "weightDevice": [{"major": 8, "minor": 0, "weight": 200, "leafWeight": 100}],
              "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
              "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 2097152}],
              "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
              "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}]},
  "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}, {"pageSize": "1GB", "limit": 0}],
  "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500},
                                                 {"name": "lo", "priority": 1}]},
  "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {}},
  "unified": {"memory.high": "1G", "io.weight": "default 100"}
})";

TEST(ParseSpec, LinuxResources) {
  Spec s = parse_ok(config({{"linux", {{"resources", json::parse(kResources)}}}}));
  ASSERT_TRUE(s.linux.resources);
  const Resources& r = *s.linux.resources;

  ASSERT_EQ(r.devices.size(), 3u);
  EXPECT_FALSE(r.devices[0].allow);
  EXPECT_EQ(r.devices[0].type, "");
  EXPECT_FALSE(r.devices[0].major);
  EXPECT_EQ(r.devices[0].access, "rwm");
  EXPECT_TRUE(r.devices[1].allow);
  EXPECT_EQ(r.devices[1].type, "c");
  EXPECT_EQ(r.devices[1].major, 1);
  EXPECT_EQ(r.devices[1].minor, 3);
  EXPECT_EQ(r.devices[2].major, 8);
  EXPECT_FALSE(r.devices[2].minor);

  ASSERT_TRUE(r.memory);
  EXPECT_EQ(r.memory->limit, 536870912);
  EXPECT_EQ(r.memory->reservation, 268435456);
  EXPECT_EQ(r.memory->swap, -1);
  EXPECT_EQ(r.memory->kernel, 1);
  EXPECT_EQ(r.memory->kernel_tcp, 2);
  EXPECT_EQ(r.memory->swappiness, 60u);
  EXPECT_EQ(r.memory->disable_oom_killer, true);
  EXPECT_EQ(r.memory->use_hierarchy, false);
  EXPECT_EQ(r.memory->check_before_update, true);

  ASSERT_TRUE(r.cpu);
  EXPECT_EQ(r.cpu->shares, 1024u);
  EXPECT_EQ(r.cpu->quota, 50000);
  EXPECT_EQ(r.cpu->burst, 1000u);
  EXPECT_EQ(r.cpu->period, 100000u);
  EXPECT_EQ(r.cpu->realtime_runtime, 950000);
  EXPECT_EQ(r.cpu->realtime_period, 1000000u);
  EXPECT_EQ(r.cpu->cpus, "0-1");
  EXPECT_EQ(r.cpu->mems, "0");
  EXPECT_EQ(r.cpu->idle, 1);

  EXPECT_EQ(r.pids_limit, 100);

  ASSERT_TRUE(r.block_io);
  EXPECT_EQ(r.block_io->weight, 500);
  EXPECT_EQ(r.block_io->leaf_weight, 300);
  ASSERT_EQ(r.block_io->weight_device.size(), 1u);
  EXPECT_EQ(r.block_io->weight_device[0].major, 8);
  EXPECT_EQ(r.block_io->weight_device[0].weight, 200);
  EXPECT_EQ(r.block_io->weight_device[0].leaf_weight, 100);
  ASSERT_EQ(r.block_io->throttle_read_bps.size(), 1u);
  EXPECT_EQ(r.block_io->throttle_read_bps[0].rate, 1048576u);
  ASSERT_EQ(r.block_io->throttle_write_bps.size(), 1u);
  EXPECT_EQ(r.block_io->throttle_write_bps[0].minor, 16);
  EXPECT_EQ(r.block_io->throttle_write_bps[0].rate, 2097152u);
  ASSERT_EQ(r.block_io->throttle_read_iops.size(), 1u);
  EXPECT_EQ(r.block_io->throttle_read_iops[0].rate, 100u);
  ASSERT_EQ(r.block_io->throttle_write_iops.size(), 1u);
  EXPECT_EQ(r.block_io->throttle_write_iops[0].rate, 200u);

  ASSERT_EQ(r.hugepage_limits.size(), 2u);
  EXPECT_EQ(r.hugepage_limits[0].page_size, "2MB");
  EXPECT_EQ(r.hugepage_limits[0].limit, 209715200u);
  EXPECT_EQ(r.hugepage_limits[1].page_size, "1GB");

  ASSERT_TRUE(r.network);
  EXPECT_EQ(r.network->class_id, 1048577u);
  EXPECT_THAT(r.network->priorities, ElementsAre(Pair("eth0", 500u), Pair("lo", 1u)));

  ASSERT_EQ(r.rdma.size(), 2u);
  EXPECT_EQ(r.rdma.at("mlx5_1").hca_handles, 3u);
  EXPECT_EQ(r.rdma.at("mlx5_1").hca_objects, 10000u);
  EXPECT_FALSE(r.rdma.at("mlx4_0").hca_handles);

  EXPECT_THAT(r.unified, ElementsAre(Pair("io.weight", "default 100"), Pair("memory.high", "1G")));
}

TEST(ParseSpec, EmptyResourcesHaveNoLimits) {
  Spec s = parse_ok(config({{"linux", {{"resources", json::object()}}}}));
  ASSERT_TRUE(s.linux.resources);
  EXPECT_FALSE(s.linux.resources->memory);
  EXPECT_FALSE(s.linux.resources->cpu);
  EXPECT_FALSE(s.linux.resources->pids_limit);
  EXPECT_FALSE(s.linux.resources->block_io);
  EXPECT_FALSE(s.linux.resources->network);
}

std::string linux_err(const json& linux) { return parse_err(config({{"linux", linux}})); }
std::string resources_err(const json& res) { return linux_err({{"resources", res}}); }

TEST(ParseSpec, ResourceErrors) {
  EXPECT_EQ(resources_err({{"memory", {{"limit", "1G"}}}}),
            "linux.resources.memory.limit: expected an integer");
  EXPECT_EQ(resources_err({{"memory", {{"swappiness", -1}}}}),
            "linux.resources.memory.swappiness: expected an unsigned integer");
  EXPECT_EQ(resources_err({{"memory", {{"disableOOMKiller", 1}}}}),
            "linux.resources.memory.disableOOMKiller: expected a boolean");
  EXPECT_EQ(resources_err({{"cpu", {{"shares", -2}}}}),
            "linux.resources.cpu.shares: expected an unsigned integer");
  EXPECT_EQ(resources_err({{"cpu", {{"cpus", 1}}}}), "linux.resources.cpu.cpus: expected a string");
  EXPECT_EQ(resources_err({{"pids", {{"limit", "max"}}}}),
            "linux.resources.pids.limit: expected an integer");
  EXPECT_EQ(resources_err({{"pids", 5}}), "linux.resources.pids: expected an object");
  EXPECT_EQ(resources_err({{"blockIO", {{"weight", 70000}}}}),
            "linux.resources.blockIO.weight: value out of range");
  EXPECT_EQ(resources_err({{"blockIO", {{"throttleReadBpsDevice", {{{"rate", -1}}}}}}}),
            "linux.resources.blockIO.throttleReadBpsDevice[0].rate: expected an unsigned integer");
  EXPECT_EQ(resources_err({{"blockIO", {{"weightDevice", {{{"major", "8"}}}}}}}),
            "linux.resources.blockIO.weightDevice[0].major: expected an integer");
  EXPECT_EQ(resources_err({{"hugepageLimits", {{{"pageSize", 2}}}}}),
            "linux.resources.hugepageLimits[0].pageSize: expected a string");
  EXPECT_EQ(resources_err({{"network", {{"priorities", {{{"name", "eth0"}, {"priority", -1}}}}}}}),
            "linux.resources.network.priorities[0].priority: expected an unsigned integer");
  EXPECT_EQ(resources_err({{"rdma", {{"mlx5", 1}}}}),
            "linux.resources.rdma.mlx5: expected an object");
  EXPECT_EQ(resources_err({{"rdma", {{"mlx5", {{"hcaHandles", "3"}}}}}}),
            "linux.resources.rdma.mlx5.hcaHandles: expected an integer");
  EXPECT_EQ(resources_err({{"unified", {{"memory.max", 5}}}}),
            "linux.resources.unified.memory.max: expected a string");
  EXPECT_EQ(resources_err({{"devices", {{{"allow", true}, {"type", "x"}}}}}),
            "linux.resources.devices[0].type: must be a, c or b");
  EXPECT_EQ(resources_err({{"devices", {{{"allow", true}, {"access", "rwx"}}}}}),
            "linux.resources.devices[0].access: must contain only r, w, m");
  EXPECT_EQ(resources_err({{"devices", {{{"allow", "yes"}}}}}),
            "linux.resources.devices[0].allow: expected a boolean");
}

TEST(ParseSpec, LinuxFieldErrors) {
  EXPECT_EQ(linux_err({{"namespaces", {{{"type", 1}}}}}),
            "linux.namespaces[0].type: expected a string");
  EXPECT_EQ(linux_err({{"namespaces", {"pid"}}}), "linux.namespaces[0]: expected an object");
  EXPECT_EQ(
      linux_err({{"uidMappings", {{{"containerID", 0}, {"hostID", 1LL << 40}, {"size", 1}}}}}),
      "linux.uidMappings[0].hostID: value out of range");
  EXPECT_EQ(linux_err({{"gidMappings", {{{"size", -1}}}}}),
            "linux.gidMappings[0].size: expected an unsigned integer");
  EXPECT_EQ(linux_err({{"timeOffsets", {{"monotonic", 5}}}}),
            "linux.timeOffsets.monotonic: expected an object");
  EXPECT_EQ(linux_err({{"timeOffsets", {{"boottime", {{"nanosecs", -1}}}}}}),
            "linux.timeOffsets.boottime.nanosecs: expected an unsigned integer");
  EXPECT_EQ(linux_err({{"devices", {{{"path", "/dev/x"}, {"major", "1"}}}}}),
            "linux.devices[0].major: expected an integer");
  EXPECT_EQ(linux_err({{"devices", {{{"path", "/dev/x"}, {"uid", -1}}}}}),
            "linux.devices[0].uid: expected an unsigned integer");
  EXPECT_EQ(linux_err({{"cgroupsPath", 1}}), "linux.cgroupsPath: expected a string");
  EXPECT_EQ(linux_err({{"maskedPaths", "/proc"}}),
            "linux.maskedPaths: expected an array of strings");
  EXPECT_EQ(linux_err({{"readonlyPaths", {1}}}), "linux.readonlyPaths[0]: expected a string");
  EXPECT_EQ(linux_err({{"sysctl", {{"net.ipv4.ip_forward", 1}}}}),
            "linux.sysctl.net.ipv4.ip_forward: expected a string");
  EXPECT_EQ(linux_err({{"personality", {{"domain", 1}}}}),
            "linux.personality.domain: expected a string");
  EXPECT_EQ(linux_err({{"resources", "none"}}), "linux.resources: expected an object");
}

TEST(ParseSpec, LinuxUnsupportedSections) {
  EXPECT_EQ(linux_err({{"intelRdt", {{"closID", "x"}}}}),
            "linux.intelRdt: not supported on this runtime");
  EXPECT_EQ(linux_err({{"netDevices", {{"eth0", json::object()}}}}),
            "linux.netDevices: not supported yet");
}

// ---- seccomp ----

TEST(ParseSpec, Seccomp) {
  Spec s = parse_ok(config({{"linux", {{"seccomp", json::parse(R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "listenerPath": "/run/seccomp.sock",
    "listenerMetadata": "meta",
    "syscalls": [
      {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
       "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 18446744073709551615, "valueTwo": 4, "op": "SCMP_CMP_MASKED_EQ"}]}
    ]
  })")}}}}));
  ASSERT_TRUE(s.linux.seccomp);
  const Seccomp& sc = *s.linux.seccomp;
  EXPECT_EQ(sc.default_action, "SCMP_ACT_ERRNO");
  EXPECT_EQ(sc.default_errno_ret, 1u);
  EXPECT_THAT(sc.architectures, ElementsAre("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"));
  EXPECT_THAT(sc.flags, ElementsAre("SECCOMP_FILTER_FLAG_LOG"));
  EXPECT_EQ(sc.listener_path, "/run/seccomp.sock");
  EXPECT_EQ(sc.listener_metadata, "meta");
  ASSERT_EQ(sc.syscalls.size(), 2u);
  EXPECT_THAT(sc.syscalls[0].names, ElementsAre("read", "write"));
  EXPECT_EQ(sc.syscalls[0].action, "SCMP_ACT_ALLOW");
  EXPECT_FALSE(sc.syscalls[0].errno_ret);
  EXPECT_TRUE(sc.syscalls[0].args.empty());
  EXPECT_EQ(sc.syscalls[1].errno_ret, 38u);
  ASSERT_EQ(sc.syscalls[1].args.size(), 2u);
  EXPECT_EQ(sc.syscalls[1].args[0].index, 0u);
  EXPECT_EQ(sc.syscalls[1].args[0].value, 8u);
  EXPECT_EQ(sc.syscalls[1].args[0].value_two, 0u);
  EXPECT_EQ(sc.syscalls[1].args[0].op, "SCMP_CMP_EQ");
  EXPECT_EQ(sc.syscalls[1].args[1].index, 1u);
  EXPECT_EQ(sc.syscalls[1].args[1].value, UINT64_MAX);
  EXPECT_EQ(sc.syscalls[1].args[1].value_two, 4u);
  EXPECT_EQ(sc.syscalls[1].args[1].op, "SCMP_CMP_MASKED_EQ");
}

TEST(ParseSpec, SeccompErrors) {
  auto seccomp_err = [](const json& sc) { return linux_err({{"seccomp", sc}}); };
  EXPECT_EQ(seccomp_err(json::object()), "linux.seccomp.defaultAction: is required");
  EXPECT_EQ(seccomp_err({{"defaultAction", 1}}), "linux.seccomp.defaultAction: expected a string");
  EXPECT_EQ(seccomp_err({{"defaultAction", "SCMP_ACT_ALLOW"}, {"defaultErrnoRet", -1}}),
            "linux.seccomp.defaultErrnoRet: expected an unsigned integer");
  EXPECT_EQ(seccomp_err({{"defaultAction", "SCMP_ACT_ALLOW"}, {"architectures", "x86"}}),
            "linux.seccomp.architectures: expected an array of strings");
  EXPECT_EQ(seccomp_err({{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", {{{"names", "read"}}}}}),
            "linux.seccomp.syscalls[0].names: expected an array of strings");
  EXPECT_EQ(seccomp_err({{"defaultAction", "SCMP_ACT_ALLOW"},
                         {"syscalls", {{{"names", {"read"}}, {"args", {{{"index", "0"}}}}}}}}),
            "linux.seccomp.syscalls[0].args[0].index: expected an integer");
  EXPECT_EQ(seccomp_err({{"defaultAction", "SCMP_ACT_ALLOW"},
                         {"syscalls", {{{"names", {"read"}}, {"args", {{{"value", -1}}}}}}}}),
            "linux.seccomp.syscalls[0].args[0].value: expected an unsigned integer");
}

// ---- runc's default spec as input ----

TEST(ParseSpec, DefaultSpecRoundTrip) {
  Spec s = parse_ok(default_spec_json(false, 0, 0));
  EXPECT_EQ(s.oci_version, "1.1.0");
  ASSERT_TRUE(s.process);
  EXPECT_TRUE(s.process->terminal);
  EXPECT_THAT(s.process->args, ElementsAre("sh"));
  EXPECT_EQ(s.process->cwd, "/");
  EXPECT_TRUE(s.process->no_new_privileges);
  ASSERT_TRUE(s.process->capabilities);
  EXPECT_THAT(s.process->capabilities->bounding,
              ElementsAre("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"));
  EXPECT_TRUE(s.process->capabilities->inheritable.empty());
  ASSERT_EQ(s.process->rlimits.size(), 1u);
  EXPECT_EQ(s.process->rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(s.process->rlimits[0].hard, 1024u);
  EXPECT_EQ(s.root.path, "rootfs");
  EXPECT_TRUE(s.root.readonly);
  EXPECT_EQ(s.hostname, "forker");
  ASSERT_EQ(s.mounts.size(), 7u);
  EXPECT_EQ(s.mounts[0].destination, "/proc");
  EXPECT_EQ(s.mounts[6].destination, "/sys/fs/cgroup");
  EXPECT_THAT(s.mounts[6].options, ElementsAre("nosuid", "noexec", "nodev", "relatime", "ro"));
  EXPECT_EQ(s.linux.namespaces.size(), 6u);
  EXPECT_TRUE(s.has_namespace("network"));
  EXPECT_FALSE(s.has_namespace("user"));
  ASSERT_TRUE(s.linux.resources);
  ASSERT_EQ(s.linux.resources->devices.size(), 1u);
  EXPECT_FALSE(s.linux.resources->devices[0].allow);
  EXPECT_EQ(s.linux.resources->devices[0].access, "rwm");
  EXPECT_EQ(s.linux.masked_paths.size(), 10u);
  EXPECT_EQ(s.linux.readonly_paths.size(), 5u);
  EXPECT_TRUE(s.linux.uid_mappings.empty());
}

TEST(ParseSpec, RootlessDefaultSpecRoundTrip) {
  Spec s = parse_ok(default_spec_json(true, 1000, 1001));
  EXPECT_TRUE(s.has_namespace("user"));
  EXPECT_FALSE(s.has_namespace("network"));
  ASSERT_EQ(s.linux.uid_mappings.size(), 1u);
  EXPECT_EQ(s.linux.uid_mappings[0].container_id, 0u);
  EXPECT_EQ(s.linux.uid_mappings[0].host_id, 1000u);
  EXPECT_EQ(s.linux.uid_mappings[0].size, 1u);
  ASSERT_EQ(s.linux.gid_mappings.size(), 1u);
  EXPECT_EQ(s.linux.gid_mappings[0].host_id, 1001u);
  EXPECT_FALSE(s.linux.resources);
  std::vector<std::string> dests;
  for (const auto& m : s.mounts) dests.push_back(m.destination);
  EXPECT_THAT(dests, ElementsAre("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"));
  const Mount& sys = s.mounts[5];
  EXPECT_EQ(sys.type, "none");
  EXPECT_EQ(sys.source, "/sys");
  EXPECT_THAT(sys.options, ElementsAre("rbind", "nosuid", "noexec", "nodev", "ro"));
  EXPECT_THAT(s.mounts[2].options, ::testing::Not(::testing::Contains("gid=5")));
  // mqueue is mounted, not bound: the host may have no /dev/mqueue.
  EXPECT_EQ(s.mounts[4].type, "mqueue");
}

TEST(LoadSpec, MissingBundle) {
  auto r = load_spec("/nonexistent-forker-bundle");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().err, ENOENT);
  EXPECT_THAT(r.error().message(), HasSubstr("/nonexistent-forker-bundle/config.json"));
}

}  // namespace
}  // namespace forker::oci
