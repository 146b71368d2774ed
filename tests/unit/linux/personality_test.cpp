#include "linux/personality.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/personality.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

namespace forker::linux {
namespace {

TEST(Personality, Domains) {
  auto linux64 = plan_personality({"LINUX", {}});
  ASSERT_TRUE(linux64) << linux64.error().message();
  EXPECT_EQ(*linux64, static_cast<unsigned long>(PER_LINUX));
  auto linux32 = plan_personality({"LINUX32", {}});
  ASSERT_TRUE(linux32) << linux32.error().message();
  EXPECT_EQ(*linux32, static_cast<unsigned long>(PER_LINUX32));
}

TEST(Personality, UnknownDomain) {
  auto p = plan_personality({"SVR4", {}});
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message(), "linux.personality.domain SVR4: unknown domain");
}

TEST(Personality, FlagsAreRefused) {
  auto p = plan_personality({"LINUX", {"ADDR_NO_RANDOMIZE"}});
  ASSERT_FALSE(p);
  EXPECT_THAT(p.error().message(),
              ::testing::HasSubstr("linux.personality.flags ADDR_NO_RANDOMIZE: unknown flag"));
}

TEST(Personality, Linux32ChangesUnameInChild) {
  auto persona = plan_personality({"LINUX32", {}});
  ASSERT_TRUE(persona) << persona.error().message();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    std::string report;
    if (auto s = apply_personality(*persona); !s) {
      report = s.error().message();
    } else {
      utsname u{};
      uname(&u);
      report = u.machine;
    }
    if (write(p[1], report.data(), report.size()) < 0) _exit(2);
    _exit(0);
  }
  close(p[1]);
  char buf[128] = {};
  ssize_t n = read(p[0], buf, sizeof(buf) - 1);
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_GT(n, 0);
  utsname host{};
  uname(&host);
  if (std::string(host.machine) == "x86_64") {
    EXPECT_STREQ(buf, "i686");
  }
}

}  // namespace
}  // namespace forker::linux
