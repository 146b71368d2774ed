#include "linux/capabilities.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

namespace forker::linux {
namespace {

using ::testing::HasSubstr;

// Runs fn in a forked child and returns what it reported; "" means it went as expected.
std::string run_in_child(const std::function<std::string()>& fn) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return "pipe failed";
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    const std::string report = fn();
    if (write(p[1], report.data(), report.size()) < 0) _exit(2);
    _exit(0);
  }
  close(p[1]);
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return "child killed by signal " + std::to_string(WTERMSIG(status));
  return out;
}

constexpr uint64_t bit(int cap) { return uint64_t{1} << cap; }

TEST(Capabilities, NamesBecomeMasks) {
  oci::Capabilities caps;
  caps.bounding = {"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"};
  caps.effective = {"CAP_KILL"};
  caps.permitted = {"CAP_KILL", "CAP_NET_BIND_SERVICE"};
  caps.inheritable = {"CAP_NET_BIND_SERVICE"};
  caps.ambient = {"CAP_NET_BIND_SERVICE"};
  auto plan = plan_capabilities(caps, 40);
  ASSERT_TRUE(plan) << plan.error().message();
  EXPECT_EQ(plan->bounding, bit(CAP_CHOWN) | bit(CAP_NET_ADMIN) | bit(CAP_SYS_ADMIN));
  EXPECT_EQ(plan->effective, bit(CAP_KILL));
  EXPECT_EQ(plan->permitted, bit(CAP_KILL) | bit(CAP_NET_BIND_SERVICE));
  EXPECT_EQ(plan->inheritable, bit(CAP_NET_BIND_SERVICE));
  EXPECT_EQ(plan->ambient, bit(CAP_NET_BIND_SERVICE));
  EXPECT_EQ(plan->last_cap, 40);
  EXPECT_TRUE(plan->warnings.empty());
}

TEST(Capabilities, HighCapabilitiesUseTheUpperWord) {
  oci::Capabilities caps;
  caps.bounding = {"CAP_BPF", "CAP_PERFMON", "CAP_CHECKPOINT_RESTORE"};
  auto plan = plan_capabilities(caps, 40);
  ASSERT_TRUE(plan) << plan.error().message();
  EXPECT_EQ(plan->bounding, bit(38) | bit(39) | bit(40));
}

TEST(Capabilities, UnknownNameNamesTheSet) {
  oci::Capabilities caps;
  caps.bounding = {"CAP_CHOWN"};
  caps.permitted = {"CAP_FOO"};
  auto plan = plan_capabilities(caps, 40);
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().message(), "process.capabilities.permitted CAP_FOO: unknown capability");
}

TEST(Capabilities, OnlyUpperCaseCapNames) {
  for (const char* name : {"cap_chown", "CHOWN", "12", "CAP_", "CAP_chown", "CAP_12"}) {
    oci::Capabilities caps;
    caps.bounding = {name};
    auto plan = plan_capabilities(caps, 40);
    ASSERT_FALSE(plan) << name;
    EXPECT_THAT(plan.error().message(), HasSubstr("process.capabilities.bounding"));
  }
}

TEST(Capabilities, CapabilityAboveKernelsLastIsSkippedWithWarning) {
  oci::Capabilities caps;
  caps.bounding = {"CAP_CHOWN", "CAP_BPF"};
  auto plan = plan_capabilities(caps, 37);
  ASSERT_TRUE(plan) << plan.error().message();
  EXPECT_EQ(plan->bounding, bit(CAP_CHOWN));
  ASSERT_EQ(plan->warnings.size(), 1u);
  EXPECT_THAT(plan->warnings[0], HasSubstr("process.capabilities.bounding CAP_BPF"));
}

TEST(Capabilities, AmbientNotInPermittedAndInheritableIsDropped) {
  oci::Capabilities caps;
  caps.permitted = {"CAP_KILL", "CAP_CHOWN"};
  caps.inheritable = {"CAP_CHOWN"};
  caps.ambient = {"CAP_KILL", "CAP_CHOWN"};
  auto plan = plan_capabilities(caps, 40);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->ambient, uint64_t{1} << CAP_CHOWN);
}

TEST(Capabilities, NamesRoundTrip) {
  EXPECT_EQ(capability_name(CAP_NET_ADMIN), "CAP_NET_ADMIN");
  EXPECT_EQ(capability_name(0), "CAP_CHOWN");
}

TEST(Capabilities, ReadsKernelsLastCap) {
  auto last = read_last_cap();
  ASSERT_TRUE(last) << last.error().message();
  EXPECT_GE(*last, CAP_AUDIT_READ);  // every kernel since 3.16
  oci::Capabilities caps;
  caps.bounding = {"CAP_CHOWN"};
  auto plan = plan_capabilities(caps);
  ASSERT_TRUE(plan) << plan.error().message();
  EXPECT_EQ(plan->last_cap, *last);
}

// The child sequence a container's init runs: drop_bounding_set, keep caps, set_ids,
// apply_capabilities. Changing uid and the bounding set needs root.
TEST(Capabilities, ChildSequenceAsRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_SETPCAP, CAP_SETUID)";
  oci::Capabilities caps;
  caps.bounding = {"CAP_KILL", "CAP_NET_BIND_SERVICE"};
  caps.effective = {"CAP_KILL", "CAP_NET_BIND_SERVICE"};
  caps.permitted = {"CAP_KILL", "CAP_NET_BIND_SERVICE"};
  caps.inheritable = {"CAP_NET_BIND_SERVICE"};
  caps.ambient = {"CAP_NET_BIND_SERVICE"};
  auto plan = plan_capabilities(caps);
  ASSERT_TRUE(plan) << plan.error().message();
  oci::User user;
  user.uid = 65534;
  user.gid = 65534;
  user.additional_gids = {65533};
  user.umask = 027;

  std::string report = run_in_child([&]() -> std::string {
    if (auto s = drop_bounding_set(*plan); !s) return s.error().message();
    if (auto s = keep_caps_across_setuid(true); !s) return s.error().message();
    if (auto s = set_ids(user); !s) return s.error().message();
    if (auto s = apply_capabilities(*plan); !s) return s.error().message();
    if (getuid() != 65534 || geteuid() != 65534 || getgid() != 65534) return "ids not set";
    gid_t groups[4];
    if (getgroups(4, groups) != 1 || groups[0] != 65533) return "groups not set";
    if (umask(0) != 027) return "umask not set";
    if (prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0) return "CAP_SYS_ADMIN still bounded";
    if (prctl(PR_CAPBSET_READ, CAP_KILL, 0, 0, 0) != 1) return "CAP_KILL not bounded";
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0) != 1)
      return "ambient CAP_NET_BIND_SERVICE not raised";
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &header, data) < 0) return "capget failed";
    const uint32_t want = (1U << CAP_KILL) | (1U << CAP_NET_BIND_SERVICE);
    if (data[0].effective != want || data[0].permitted != want || data[1].permitted != 0)
      return "wrong effective/permitted";
    if (data[0].inheritable != (1U << CAP_NET_BIND_SERVICE)) return "wrong inheritable";
    return "";
  });
  EXPECT_EQ(report, "");
}

TEST(Capabilities, AmbientRaiseFailureNamesTheCapability) {
  // A plan built by hand that skips plan_capabilities' check: the kernel refuses the raise.
  CapabilityPlan plan;
  plan.last_cap = 40;
  std::string report = run_in_child([&]() -> std::string {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &header, data) < 0) return "capget failed";
    plan.permitted = data[0].permitted | (uint64_t{data[1].permitted} << 32);
    plan.effective = plan.permitted;
    plan.inheritable = 0;
    plan.ambient = bit(CAP_KILL);
    auto s = apply_capabilities(plan);
    return s ? "raised" : s.error().message();
  });
  EXPECT_THAT(report, HasSubstr("prctl PR_CAP_AMBIENT_RAISE CAP_KILL"));
}

}  // namespace
}  // namespace forker::linux
