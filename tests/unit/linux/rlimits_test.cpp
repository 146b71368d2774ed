#include "linux/rlimits.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/resource.h>
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

TEST(Rlimits, ParsesNames) {
  auto plan = plan_rlimits({{"RLIMIT_NOFILE", 1024, 512}, {"RLIMIT_CORE", RLIM_INFINITY, 0}});
  ASSERT_TRUE(plan) << plan.error().message();
  ASSERT_EQ(plan->size(), 2u);
  EXPECT_EQ((*plan)[0], (RlimitValue{RLIMIT_NOFILE, "RLIMIT_NOFILE", 512, 1024}));
  EXPECT_STREQ((*plan)[0].name, "RLIMIT_NOFILE");
  EXPECT_EQ((*plan)[1], (RlimitValue{RLIMIT_CORE, "RLIMIT_CORE", 0, RLIM_INFINITY}));
}

TEST(Rlimits, UnknownType) {
  auto plan = plan_rlimits({{"RLIMIT_NOFILE", 1, 1}, {"RLIMIT_FOO", 1, 1}});
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().message(), "process.rlimits[1] RLIMIT_FOO: unknown type");
}

TEST(Rlimits, SoftAboveHard) {
  auto plan = plan_rlimits({{"RLIMIT_NOFILE", 10, 20}});
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().message(), "process.rlimits[0] RLIMIT_NOFILE: soft 20 is above hard 10");
}

TEST(Rlimits, GivenTwice) {
  auto plan = plan_rlimits({{"RLIMIT_NOFILE", 10, 10}, {"RLIMIT_NOFILE", 20, 20}});
  ASSERT_FALSE(plan);
  EXPECT_THAT(plan.error().message(), HasSubstr("given twice"));
}

TEST(Rlimits, LowersNofileInChild) {
  auto plan = plan_rlimits({{"RLIMIT_NOFILE", 200, 100}});
  ASSERT_TRUE(plan) << plan.error().message();
  std::string report = run_in_child([&]() -> std::string {
    if (auto s = apply_rlimits(*plan); !s) return s.error().message();
    rlimit now{};
    getrlimit(RLIMIT_NOFILE, &now);
    if (now.rlim_cur != 100 || now.rlim_max != 200) return "limits not applied";
    return "";
  });
  EXPECT_EQ(report, "");
}

TEST(Rlimits, RaisingHardLimitNamesTheLimit) {
  std::string report = run_in_child([&]() -> std::string {
    // Lower the hard limit, and make sure CAP_SYS_RESOURCE is not effective, so raising it back
    // must fail whoever runs the test.
    rlimit low{64, 64};
    if (setrlimit(RLIMIT_NOFILE, &low) < 0) return "setrlimit failed";
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &header, data) < 0) return "capget failed";
    data[0].effective &= ~(1U << CAP_SYS_RESOURCE);
    if (syscall(SYS_capset, &header, data) < 0) return "capset failed";
    auto plan = plan_rlimits({{"RLIMIT_NOFILE", 128, 128}});
    if (!plan) return plan.error().message();
    auto s = apply_rlimits(*plan);
    return s ? "raised" : s.error().message();
  });
  EXPECT_EQ(report,
            "setrlimit RLIMIT_NOFILE soft=128 hard=128 (current hard 64): Operation not permitted");
}

}  // namespace
}  // namespace forker::linux
