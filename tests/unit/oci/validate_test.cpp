// validate_container_id, validate_spec and validate_sysctl on Specs built in code.
#include "oci/validate.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>

#include <string>

#include "oci/default_spec.hpp"

namespace forker::oci {
namespace {

using ::testing::HasSubstr;

// A spec that passes validation: a process, a root, no namespaces.
Spec valid_spec() {
  Spec s;
  s.oci_version = "1.1.0";
  s.root.path = "rootfs";
  Process p;
  p.args = {"sh"};
  p.env = {"PATH=/bin"};
  s.process = p;
  return s;
}

Spec with_namespaces(std::initializer_list<const char*> types) {
  Spec s = valid_spec();
  for (const char* t : types) s.linux.namespaces.push_back({t, ""});
  return s;
}

std::string invalid(const Spec& s) {
  auto r = validate_spec(s);
  EXPECT_FALSE(r) << "validated";
  return r ? std::string() : r.error().message();
}

void expect_valid(const Spec& s) {
  auto r = validate_spec(s);
  EXPECT_TRUE(r) << r.error().message();
}

// ---- container ids ----

TEST(ValidateContainerId, Accepted) {
  for (const char* id : {"c1", "my-container", "a.b", "A_B+c", "0", "x..y", "..a", "a.."})
    EXPECT_TRUE(validate_container_id(id)) << id;
  EXPECT_TRUE(validate_container_id(std::string(1024, 'a')));
}

TEST(ValidateContainerId, Refused) {
  EXPECT_EQ(validate_container_id("").error().message(), "container id: must not be empty");
  EXPECT_EQ(validate_container_id(std::string(1025, 'a')).error().message(),
            "container id: too long");
  EXPECT_EQ(validate_container_id(".").error().message(), "invalid container id .");
  EXPECT_EQ(validate_container_id("..").error().message(), "invalid container id ..");
  for (const char* id : {"/", "a/b", "../x", "a b", "a\tb", "a:b", "é", "a\nb", "$x", "a*"})
    EXPECT_FALSE(validate_container_id(id)) << id;
  EXPECT_EQ(validate_container_id("a/b").error().message(), "invalid container id a/b");
  EXPECT_FALSE(validate_container_id(std::string("a\0b", 3)));
}

// ---- the whole spec ----

TEST(ValidateSpec, MinimalIsValid) { expect_valid(valid_spec()); }

TEST(ValidateSpec, DefaultSpecsAreValid) {
  for (bool rootless : {false, true}) {
    auto s = parse_spec(default_spec_json(rootless, 1000, 1000));
    ASSERT_TRUE(s) << s.error().message();
    auto r = validate_spec(*s);
    EXPECT_TRUE(r) << "rootless=" << rootless << ": " << r.error().message();
  }
}

TEST(ValidateSpec, OciVersion) {
  Spec s = valid_spec();
  for (const char* v : {"1.0.0", "1.0.2-dev", "1.2.0", "1.3.0"}) {
    s.oci_version = v;
    expect_valid(s);
  }
  s.oci_version = "2.0.0";
  EXPECT_EQ(invalid(s), "ociVersion 2.0.0: unsupported, expected 1.x");
  s.oci_version = "0.9";
  EXPECT_THAT(invalid(s), HasSubstr("unsupported"));
  s.oci_version = "";
  EXPECT_THAT(invalid(s), HasSubstr("ociVersion"));
}

TEST(ValidateSpec, RootPathRequired) {
  Spec s = valid_spec();
  s.root.path = "";
  EXPECT_EQ(invalid(s), "root.path: is required");
}

TEST(ValidateSpec, Process) {
  Spec s = valid_spec();
  s.process.reset();
  EXPECT_EQ(invalid(s), "process: is required");
  EXPECT_TRUE(validate_spec(s, /*need_process=*/false));

  s = valid_spec();
  s.process->args.clear();
  EXPECT_EQ(invalid(s), "process.args: must not be empty");
  s = valid_spec();
  s.process->cwd = "relative";
  EXPECT_EQ(invalid(s), "process.cwd: must be an absolute path");
  s.process->cwd = "";
  EXPECT_EQ(invalid(s), "process.cwd: must be an absolute path");
  s = valid_spec();
  s.process->env.push_back("NOEQUALS");
  EXPECT_EQ(invalid(s), "process.env NOEQUALS: expected KEY=VALUE");
  s = valid_spec();
  s.process->oom_score_adj = 1001;
  EXPECT_EQ(invalid(s), "process.oomScoreAdj: must be within -1000..1000");
  s.process->oom_score_adj = -1000;
  expect_valid(s);
  s.process->user.umask = 01000;
  EXPECT_EQ(invalid(s), "process.user.umask: out of range");
  s.process->user.umask = 0777;
  expect_valid(s);
}

TEST(ValidateProcess, FieldNameIsGiven) {
  Process p;
  EXPECT_EQ(validate_process(p, "exec process").error().message(),
            "exec process.args: must not be empty");
}

TEST(ValidateSpec, AllNamespaceTypes) {
  expect_valid(with_namespaces({"pid", "network", "mount", "ipc", "uts", "cgroup", "time"}));
  EXPECT_EQ(namespace_clone_flag("pid"), CLONE_NEWPID);
  EXPECT_EQ(namespace_clone_flag("network"), CLONE_NEWNET);
  EXPECT_EQ(namespace_clone_flag("mount"), CLONE_NEWNS);
  EXPECT_EQ(namespace_clone_flag("ipc"), CLONE_NEWIPC);
  EXPECT_EQ(namespace_clone_flag("uts"), CLONE_NEWUTS);
  EXPECT_EQ(namespace_clone_flag("user"), CLONE_NEWUSER);
  EXPECT_EQ(namespace_clone_flag("cgroup"), CLONE_NEWCGROUP);
  EXPECT_EQ(namespace_clone_flag("time"), CLONE_NEWTIME);
  EXPECT_EQ(namespace_clone_flag("net"), 0);
  EXPECT_EQ(namespace_clone_flag(""), 0);
}

TEST(ValidateSpec, UnknownNamespace) {
  EXPECT_EQ(invalid(with_namespaces({"pid", "net"})),
            "linux.namespaces type net: unknown namespace type");
}

TEST(ValidateSpec, DuplicateNamespace) {
  EXPECT_EQ(invalid(with_namespaces({"pid", "ipc", "pid"})),
            "linux.namespaces type pid: listed twice");
}

TEST(ValidateSpec, NamespacePathMustBeAbsolute) {
  Spec s = with_namespaces({});
  s.linux.namespaces.push_back({"network", "var/run/netns/x"});
  EXPECT_EQ(invalid(s), "linux.namespaces network path var/run/netns/x: must be absolute");
  s.linux.namespaces[0].path = "/var/run/netns/x";
  expect_valid(s);
}

TEST(ValidateSpec, UserNamespaceMappings) {
  Spec s = valid_spec();
  s.linux.uid_mappings = {{0, 1000, 1}};
  EXPECT_EQ(invalid(s), "linux.uidMappings: need a user namespace");
  s.linux.uid_mappings.clear();
  s.linux.gid_mappings = {{0, 1000, 1}};
  EXPECT_THAT(invalid(s), HasSubstr("need a user namespace"));

  s = with_namespaces({"user"});
  EXPECT_EQ(invalid(s),
            "linux.namespaces user: a new user namespace needs uidMappings and gidMappings");
  s.linux.uid_mappings = {{0, 1000, 1}};
  EXPECT_THAT(invalid(s), HasSubstr("needs uidMappings and gidMappings"));
  s.linux.gid_mappings = {{0, 1000, 1}};
  expect_valid(s);

  // Joining an existing user namespace: its mappings are already written.
  Spec join = with_namespaces({});
  join.linux.namespaces.push_back({"user", "/proc/1/ns/user"});
  expect_valid(join);
}

TEST(ValidateSpec, TimeOffsets) {
  Spec s = valid_spec();
  s.linux.time_offsets["monotonic"] = {10, 0};
  EXPECT_EQ(invalid(s), "linux.timeOffsets: need a new time namespace");
  s.linux.namespaces.push_back({"time", "/proc/1/ns/time"});
  EXPECT_EQ(invalid(s), "linux.timeOffsets: need a new time namespace");
  s.linux.namespaces[0].path = "";
  expect_valid(s);
  s.linux.time_offsets["boottime"] = {-5, 100};
  expect_valid(s);
  s.linux.time_offsets["realtime"] = {1, 0};
  EXPECT_EQ(invalid(s), "linux.timeOffsets realtime: unknown clock");
}

TEST(ValidateSpec, HostnameAndDomainnameNeedUts) {
  Spec s = valid_spec();
  s.hostname = "box";
  EXPECT_EQ(invalid(s), "hostname: needs a uts namespace");
  s.linux.namespaces.push_back({"uts", ""});
  expect_valid(s);
  Spec d = valid_spec();
  d.domainname = "example.org";
  EXPECT_EQ(invalid(d), "domainname: needs a uts namespace");
}

TEST(ValidateSpec, RootfsPropagation) {
  Spec s = valid_spec();
  for (const char* p : {"private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable",
                        "runbindable"}) {
    s.linux.rootfs_propagation = p;
    expect_valid(s);
  }
  s.linux.rootfs_propagation = "rbind";
  EXPECT_EQ(invalid(s), "linux.rootfsPropagation rbind: unknown");
  s.linux.rootfs_propagation = "RSLAVE";
  EXPECT_THAT(invalid(s), HasSubstr("unknown"));
}

TEST(ValidateSpec, MountDestinations) {
  Spec s = valid_spec();
  s.mounts.push_back({"/proc", "proc", "proc", {}, {}, {}});
  s.mounts.push_back({"/a/..b/c..", "tmpfs", "tmpfs", {}, {}, {}});
  expect_valid(s);
  s.mounts.push_back({"/a/../../etc", "tmpfs", "tmpfs", {}, {}, {}});
  EXPECT_EQ(invalid(s), "mounts[2].destination /a/../../etc: must not contain ..");
  s.mounts.back().destination = "..";
  EXPECT_THAT(invalid(s), HasSubstr("mounts[2].destination ..: must not contain .."));
  s.mounts.back().destination = "/x/..";
  EXPECT_THAT(invalid(s), HasSubstr("must not contain .."));
  s.mounts.back().destination = "";
  EXPECT_EQ(invalid(s), "mounts[2].destination: is required");
}

TEST(ValidateSpec, Devices) {
  Spec s = valid_spec();
  for (const char* t : {"c", "b", "u", "p"})
    s.linux.devices.push_back({t, "/dev/x", 1, 2, {}, {}, {}});
  expect_valid(s);
  s.linux.devices = {{"c", "dev/null", 1, 3, {}, {}, {}}};
  EXPECT_EQ(invalid(s), "linux.devices path dev/null: must be absolute");
  s.linux.devices = {{"c", "", 1, 3, {}, {}, {}}};
  EXPECT_THAT(invalid(s), HasSubstr("must be absolute"));
  s.linux.devices = {{"x", "/dev/null", 1, 3, {}, {}, {}}};
  EXPECT_EQ(invalid(s), "linux.devices /dev/null type x: must be c, b, u or p");
  s.linux.devices = {{"", "/dev/null", 1, 3, {}, {}, {}}};
  EXPECT_THAT(invalid(s), HasSubstr("must be c, b, u or p"));
}

TEST(ValidateSpec, ChecksSysctl) {
  Spec s = valid_spec();
  s.linux.sysctl["kernel.panic"] = "1";
  EXPECT_EQ(invalid(s), "linux.sysctl kernel.panic: not namespaced, refused");
}

// ---- sysctl ----

Spec sysctl_spec(const std::string& key, std::initializer_list<const char*> namespaces) {
  Spec s = with_namespaces(namespaces);
  s.linux.sysctl[key] = "1";
  return s;
}

TEST(ValidateSysctl, IpcKeysWithIpcNamespace) {
  for (const char* key : {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                          "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                          "kernel.shm_rmid_forced", "fs.mqueue.msg_max", "fs.mqueue.queues_max"}) {
    EXPECT_TRUE(validate_sysctl(sysctl_spec(key, {"ipc"}))) << key;
    auto r = validate_sysctl(sysctl_spec(key, {"network", "uts"}));
    ASSERT_FALSE(r) << key;
    EXPECT_EQ(r.error().message(), std::string("linux.sysctl ") + key + ": needs an ipc namespace");
  }
}

TEST(ValidateSysctl, NetKeysWithNetworkNamespace) {
  for (const char* key :
       {"net.ipv4.ip_forward", "net.core.somaxconn", "net.ipv6.conf.all.forwarding"}) {
    EXPECT_TRUE(validate_sysctl(sysctl_spec(key, {"network"}))) << key;
    auto r = validate_sysctl(sysctl_spec(key, {"ipc"}));
    ASSERT_FALSE(r) << key;
    EXPECT_EQ(r.error().message(),
              std::string("linux.sysctl ") + key + ": needs a network namespace");
  }
  // Joining an existing network namespace still scopes the key to the container.
  Spec joined = sysctl_spec("net.ipv4.ip_forward", {});
  joined.linux.namespaces.push_back({"network", "/var/run/netns/x"});
  EXPECT_TRUE(validate_sysctl(joined));
}

TEST(ValidateSysctl, UtsKeysWithUtsNamespace) {
  for (const char* key : {"kernel.hostname", "kernel.domainname"}) {
    EXPECT_TRUE(validate_sysctl(sysctl_spec(key, {"uts"}))) << key;
    auto r = validate_sysctl(sysctl_spec(key, {"ipc", "network"}));
    ASSERT_FALSE(r) << key;
    EXPECT_EQ(r.error().message(), std::string("linux.sysctl ") + key + ": needs a uts namespace");
  }
}

TEST(ValidateSysctl, NonNamespacedRefused) {
  for (const char* key : {"kernel.panic", "vm.swappiness", "fs.file-max", "kernel.pid_max",
                          "kernel.msgmax2", "kernel.sem.x", "netfoo.bar"}) {
    auto r = validate_sysctl(sysctl_spec(key, {"ipc", "network", "uts"}));
    ASSERT_FALSE(r) << key;
    EXPECT_EQ(r.error().message(),
              std::string("linux.sysctl ") + key + ": not namespaced, refused");
  }
}

TEST(ValidateSysctl, PathLikeKeysRefused) {
  for (const char* key : {"net/ipv4/ip_forward", "net...x", "net.ipv4/../../kernel"}) {
    auto r = validate_sysctl(sysctl_spec(key, {"network"}));
    ASSERT_FALSE(r) << key;
    EXPECT_EQ(r.error().message(), std::string("linux.sysctl ") + key + ": invalid key");
  }
}

TEST(ValidateSysctl, EmptyIsValid) { EXPECT_TRUE(validate_sysctl(valid_spec())); }

}  // namespace
}  // namespace forker::oci
