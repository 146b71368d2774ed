#include "image/auth.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace forker::image {
namespace {

namespace fs = std::filesystem;

TEST(Challenge, ParsesBearerWithQuotedCommas) {
  auto c = parse_challenges(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push")");
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].scheme, "bearer");
  EXPECT_EQ((*c)[0].param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ((*c)[0].param("service"), "registry.docker.io");
  EXPECT_EQ((*c)[0].param("scope"), "repository:library/busybox:pull,push");
  EXPECT_EQ((*c)[0].param("missing"), "");
}

TEST(Challenge, ParsesSeveralChallengesSpacingTokensAndEscapes) {
  auto c = parse_challenges(
      R"(Basic realm="Registry \"Realm\"" , Bearer  realm = "https://x/t?a=1" ,error=insufficient_scope, scope="a:b:pull")");
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->size(), 2u);
  EXPECT_EQ((*c)[0].scheme, "basic");
  EXPECT_EQ((*c)[0].param("realm"), "Registry \"Realm\"");
  EXPECT_EQ((*c)[1].scheme, "bearer");
  EXPECT_EQ((*c)[1].param("realm"), "https://x/t?a=1");
  EXPECT_EQ((*c)[1].param("error"), "insufficient_scope");
  EXPECT_EQ((*c)[1].param("scope"), "a:b:pull");

  auto upper = parse_challenges(R"(BASIC REALM="r")");
  ASSERT_TRUE(upper);
  EXPECT_EQ((*upper)[0].scheme, "basic");
  EXPECT_EQ((*upper)[0].param("realm"), "r");

  auto bare = parse_challenges("Negotiate");
  ASSERT_TRUE(bare);
  EXPECT_EQ((*bare)[0].scheme, "negotiate");
  EXPECT_TRUE((*bare)[0].params.empty());
}

TEST(Challenge, RefusesBrokenHeaders) {
  for (const char* bad : {"", "   ", R"(Bearer realm="unterminated)", R"(="x")", "Bearer realm=\"a\" ;"}) {
    auto c = parse_challenges(bad);
    EXPECT_FALSE(c) << bad;
    if (!c) {
      EXPECT_NE(c.error().message().find("WWW-Authenticate"), std::string::npos);
    }
  }
}

TEST(Credentials, BasicHeader) {
  EXPECT_EQ(basic_authorization({"user", "pass"}), "Basic dXNlcjpwYXNz");
  EXPECT_EQ(basic_authorization({"a", ""}), "Basic YTo=");
}

TEST(Credentials, AuthJsonLookup) {
  // base64("alice:s3cr:et") and friends.
  const char* json = R"({
    "auths": {
      "https://index.docker.io/v1/": {"auth": "aHViOmh1YnB3"},
      "localhost:5000": {"auth": "YWxpY2U6czNjcjpldA=="},
      "http://quay.io/": {"auth": "cTpob3N0"},
      "quay.io/org": {"auth": "cTpvcmc="},
      "helper.io": {"identitytoken": "x"}
    },
    "credHelpers": {"gcr.io": "gcloud"}
  })";
  auto hub = credentials_from_auth_json(json, "docker.io", "library/busybox", "test.json");
  ASSERT_TRUE(hub) << hub.error().message();
  ASSERT_TRUE(*hub);
  EXPECT_EQ(**hub, (Credentials{"hub", "hubpw"}));

  auto local = credentials_from_auth_json(json, "localhost:5000", "a/b", "test.json");
  ASSERT_TRUE(local && *local);
  EXPECT_EQ(**local, (Credentials{"alice", "s3cr:et"}));  // the first ':' splits

  auto org = credentials_from_auth_json(json, "quay.io", "org/app", "test.json");
  ASSERT_TRUE(org && *org);
  EXPECT_EQ((*org)->password, "org");  // the more specific key wins
  auto host = credentials_from_auth_json(json, "quay.io", "organisation/app", "test.json");
  ASSERT_TRUE(host && *host);
  EXPECT_EQ((*host)->password, "host");  // "quay.io/org" is not a prefix of organisation

  for (const char* none : {"helper.io", "gcr.io", "localhost:5001", "localhost"}) {
    auto r = credentials_from_auth_json(json, none, "x", "test.json");
    ASSERT_TRUE(r) << none;
    EXPECT_FALSE(*r) << none;
  }
  auto empty = credentials_from_auth_json("{}", "docker.io", "x", "t");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(*empty);
}

TEST(Credentials, BadAuthFilesNameTheFile) {
  for (const char* bad : {"not json", "[]", R"({"auths": []})", R"({"auths": {"r.io": {"auth": "!!!"}}})",
                          R"({"auths": {"r.io": {"auth": "bm9jb2xvbg=="}}})"}) {
    auto r = credentials_from_auth_json(bad, "r.io", "x", "/some/auth.json");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message().find("/some/auth.json"), std::string::npos) << r.error().message();
  }
}

class AuthFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/forker-auth-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(AuthFiles, FindSkipsMissingFilesAndTakesTheFirstEntry) {
  std::string a = dir_ + "/a.json", b = dir_ + "/b.json";
  std::ofstream(a) << R"({"auths": {"other.io": {"auth": "dTpw"}}})";
  std::ofstream(b) << R"({"auths": {"r.io": {"auth": "dTpw"}}})";
  auto r = find_credentials({dir_ + "/missing.json", a, b}, "r.io", "x");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(*r);
  EXPECT_EQ(**r, (Credentials{"u", "p"}));
  std::ofstream(a) << "garbage";
  auto broken = find_credentials({a, b}, "r.io", "x");
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message().find(a), std::string::npos);
}

TEST_F(AuthFiles, SaveWritesAtomicallyWithMode0600AndKeepsOtherKeys) {
  std::string file = dir_ + "/sub/dir/auth.json";
  ASSERT_TRUE(save_credentials("localhost:5000", {"bob", "pw"}, file));
  struct stat st{};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  auto found = find_credentials({file}, "localhost:5000", "x");
  ASSERT_TRUE(found && *found);
  EXPECT_EQ(**found, (Credentials{"bob", "pw"}));

  // Keeps unrelated content; replaces other spellings of the same registry.
  std::ofstream(file) << R"({"auths": {"https://index.docker.io/v1/": {"auth": "b2xkOm9sZA=="},
                             "k.io": {"auth": "azpr"}}, "credsStore": "desktop"})";
  ASSERT_TRUE(save_credentials("docker.io", {"new", "pw2"}, file));
  auto doc = nlohmann::json::parse(std::ifstream(file));
  EXPECT_EQ(doc["credsStore"], "desktop");
  EXPECT_TRUE(doc["auths"].contains("k.io"));
  EXPECT_FALSE(doc["auths"].contains("https://index.docker.io/v1/"));
  auto hub = find_credentials({file}, "docker.io", "library/x");
  ASSERT_TRUE(hub && *hub);
  EXPECT_EQ(**hub, (Credentials{"new", "pw2"}));

  ASSERT_TRUE(remove_credentials("docker.io", file));
  auto gone = find_credentials({file}, "docker.io", "library/x");
  ASSERT_TRUE(gone);
  EXPECT_FALSE(*gone);
  // No temporary files left beside it.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir_ + "/sub/dir")) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1);
}

TEST_F(AuthFiles, SaveRefusesACorruptFileAndLeavesItAlone) {
  std::string file = dir_ + "/auth.json";
  std::ofstream(file) << "{corrupt";
  auto st = save_credentials("r.io", {"u", "p"}, file);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find(file), std::string::npos);
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "{corrupt");
}

TEST(Credentials, CandidatesFollowTheEnvironment) {
  std::string old_raf = getenv("REGISTRY_AUTH_FILE") ? getenv("REGISTRY_AUTH_FILE") : "";
  std::string old_xdg = getenv("XDG_RUNTIME_DIR") ? getenv("XDG_RUNTIME_DIR") : "";
  std::string old_home = getenv("HOME") ? getenv("HOME") : "";
  setenv("REGISTRY_AUTH_FILE", "/x/auth.json", 1);
  setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
  setenv("HOME", "/home/h", 1);
  EXPECT_EQ(auth_file_candidates(),
            (std::vector<std::string>{"/x/auth.json", "/run/user/7/containers/auth.json", "/home/h/.docker/config.json"}));
  EXPECT_EQ(default_auth_file(), "/x/auth.json");
  unsetenv("REGISTRY_AUTH_FILE");
  unsetenv("XDG_RUNTIME_DIR");
  EXPECT_EQ(default_auth_file(), "/home/h/.docker/config.json");
  auto restore = [](const char* name, const std::string& v) {
    if (v.empty()) unsetenv(name); else setenv(name, v.c_str(), 1);
  };
  restore("REGISTRY_AUTH_FILE", old_raf);
  restore("XDG_RUNTIME_DIR", old_xdg);
  restore("HOME", old_home);
}

}  // namespace
}  // namespace forker::image
