#include "image/reference.hpp"

#include <gtest/gtest.h>

namespace forker::image {
namespace {

const std::string kHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Case {
  const char* text;
  const char* registry;
  const char* repository;
  const char* tag;
  bool digest;
  const char* str;
  const char* familiar;
};

TEST(Reference, ParsesDockerForms) {
  const std::string d = "sha256:" + kHex;
  const Case cases[] = {
      {"busybox", "docker.io", "library/busybox", "latest", false, "docker.io/library/busybox:latest", "busybox:latest"},
      {"ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", false, "docker.io/library/ubuntu:22.04", "ubuntu:22.04"},
      {"docker.io/library/x", "docker.io", "library/x", "latest", false, "docker.io/library/x:latest", "x:latest"},
      {"index.docker.io/user/app:1", "docker.io", "user/app", "1", false, "docker.io/user/app:1", "user/app:1"},
      {"user/app", "docker.io", "user/app", "latest", false, "docker.io/user/app:latest", "user/app:latest"},
      {"quay.io/a/b", "quay.io", "a/b", "latest", false, "quay.io/a/b:latest", "quay.io/a/b:latest"},
      {"localhost:5000/a/b:t", "localhost:5000", "a/b", "t", false, "localhost:5000/a/b:t", "localhost:5000/a/b:t"},
      {"localhost/x", "localhost", "x", "latest", false, "localhost/x:latest", "localhost/x:latest"},
      {"[::1]:5000/x:v1.2_3-rc", "[::1]:5000", "x", "v1.2_3-rc", false, "[::1]:5000/x:v1.2_3-rc", "[::1]:5000/x:v1.2_3-rc"},
      {"ab-c__d/e--f.g", "docker.io", "ab-c__d/e--f.g", "latest", false, "docker.io/ab-c__d/e--f.g:latest", "ab-c__d/e--f.g:latest"},
  };
  for (const auto& c : cases) {
    auto r = Reference::parse(c.text);
    ASSERT_TRUE(r) << c.text << ": " << r.error().message();
    EXPECT_EQ(r->registry, c.registry) << c.text;
    EXPECT_EQ(r->repository, c.repository) << c.text;
    EXPECT_EQ(r->tag, c.tag) << c.text;
    EXPECT_EQ(r->digest.has_value(), c.digest) << c.text;
    EXPECT_EQ(r->str(), c.str) << c.text;
    EXPECT_EQ(r->familiar(), c.familiar) << c.text;
    // str() parses back to the same reference.
    auto again = Reference::parse(r->str());
    ASSERT_TRUE(again) << r->str();
    EXPECT_EQ(*again, *r);
  }
}

TEST(Reference, DigestsWithAndWithoutTag) {
  const std::string d = "sha256:" + kHex;
  auto r = Reference::parse("127.0.0.1:5000/x@" + d);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->registry, "127.0.0.1:5000");
  EXPECT_EQ(r->repository, "x");
  EXPECT_EQ(r->tag, "");
  ASSERT_TRUE(r->digest);
  EXPECT_EQ(r->digest->str(), d);
  EXPECT_EQ(r->manifest_ref(), d);
  EXPECT_EQ(r->str(), "127.0.0.1:5000/x@" + d);

  auto both = Reference::parse("busybox:1.36@" + d);
  ASSERT_TRUE(both) << both.error().message();
  EXPECT_EQ(both->tag, "1.36");
  EXPECT_EQ(both->manifest_ref(), d);  // the digest decides
  EXPECT_EQ(both->str(), "docker.io/library/busybox:1.36@" + d);
  EXPECT_EQ(both->familiar(), "busybox:1.36@" + d);
}

TEST(Reference, ApiHostAndNames) {
  auto hub = Reference::parse("busybox");
  ASSERT_TRUE(hub);
  EXPECT_EQ(hub->api_host(), "registry-1.docker.io");
  EXPECT_EQ(hub->name(), "docker.io/library/busybox");
  auto local = Reference::parse("localhost:5000/a");
  ASSERT_TRUE(local);
  EXPECT_EQ(local->api_host(), "localhost:5000");
}

TEST(Reference, RefusesInvalidTextNamingIt) {
  const char* bad[] = {
      "",          "Busybox",          "docker.io/Library/x", "a//b",        "a/",
      "/a",        "a:",               "a:-tag",              "a:tag with space", "a@sha256:abc",
      "a@md5:" "0123", "-a",          "a-",                  "a..b",        "a___b",
      ":tag",      "host:5000/",       "ho_st.io/a",          "a:b:c",       "a/b@",
  };
  for (const char* text : bad) {
    auto r = Reference::parse(text);
    EXPECT_FALSE(r) << "accepted: " << text;
    if (!r) {
      EXPECT_NE(r.error().message().find("\"" + std::string(text) + "\""), std::string::npos)
          << r.error().message();
    }
  }
  auto upper = Reference::parse("Busybox");
  ASSERT_FALSE(upper);
  EXPECT_NE(upper.error().message().find("lowercase"), std::string::npos);
  std::string long_tag(129, 'a');
  EXPECT_FALSE(Reference::parse("x:" + long_tag));
  EXPECT_TRUE(Reference::parse("x:" + std::string(128, 'a')));
  EXPECT_FALSE(Reference::parse("quay.io/" + std::string(260, 'a')));
}

TEST(Reference, LoopbackRegistries) {
  for (const char* r : {"localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:5000", "127.1.2.3:1", "[::1]:5000"})
    EXPECT_TRUE(is_loopback_registry(r)) << r;
  for (const char* r : {"docker.io", "localhost.example.com", "127.0.0.1.nip.io", "128.0.0.1:5000", "[::2]:5000"})
    EXPECT_FALSE(is_loopback_registry(r)) << r;
}

}  // namespace
}  // namespace forker::image
