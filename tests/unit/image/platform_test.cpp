#include "image/platform.hpp"

#include <gtest/gtest.h>
#include <sys/utsname.h>

#include <string>

namespace forker::image {
namespace {

TEST(Platform, ParsesAndNormalizes) {
  auto p = Platform::parse("linux/arm64/v8");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(*p, (Platform{"linux", "arm64", "v8"}));
  EXPECT_EQ(p->str(), "linux/arm64/v8");
  EXPECT_EQ(*Platform::parse("linux/x86_64"), (Platform{"linux", "amd64", ""}));
  EXPECT_EQ(*Platform::parse("linux/aarch64"), (Platform{"linux", "arm64", "v8"}));
  EXPECT_EQ(*Platform::parse("linux/amd64"), (Platform{"linux", "amd64", ""}));
  EXPECT_EQ(*Platform::parse("linux/arm/v7"), (Platform{"linux", "arm", "v7"}));
  for (const char* bad : {"", "linux", "linux/", "/amd64", "linux/amd64/v1/x", "Linux/AMD64", "linux/am d64"}) {
    auto r = Platform::parse(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_NE(r.error().message().find("os/arch"), std::string::npos);
    }
  }
}

TEST(Platform, HostFollowsUname) {
  utsname u{};
  ASSERT_EQ(uname(&u), 0);
  Platform h = Platform::host();
  EXPECT_EQ(h.os, "linux");
  std::string m = u.machine;
  if (m == "x86_64") {
    EXPECT_EQ(h.architecture, "amd64");
  }
  if (m == "aarch64") {
    EXPECT_EQ(h.str(), "linux/arm64/v8");
  }
  EXPECT_FALSE(h.architecture.empty());
}

TEST(Platform, MatchingRules) {
  Platform amd64{"linux", "amd64", ""};
  Platform arm64{"linux", "arm64", ""};
  Platform arm64v8{"linux", "arm64", "v8"};
  Platform armv7{"linux", "arm", "v7"};
  Platform armv6{"linux", "arm", "v6"};
  EXPECT_TRUE(amd64.accepts(amd64));
  EXPECT_FALSE(amd64.accepts(arm64));
  EXPECT_FALSE(amd64.accepts(Platform{"windows", "amd64", ""}));
  EXPECT_TRUE(amd64.accepts(Platform{"linux", "amd64", "v3"}));  // no variant wanted: any
  EXPECT_TRUE(arm64v8.accepts(arm64));                           // arm64 without variant is v8
  EXPECT_TRUE(arm64v8.accepts(arm64v8));
  EXPECT_TRUE(arm64.accepts(arm64v8));
  EXPECT_FALSE(arm64v8.accepts(Platform{"linux", "arm64", "v9"}));
  EXPECT_TRUE(armv7.accepts(armv7));
  EXPECT_FALSE(armv7.accepts(armv6));
  EXPECT_FALSE(armv7.accepts(Platform{"linux", "arm", ""}));
}

}  // namespace
}  // namespace forker::image
