// docker's `--format TEMPLATE` for `forker ps` and `forker images`: fields, literal text, the
// table prefix with docker's column names, and the one-line error for an unknown field; table
// and json stay as they were.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "integration/forker_cli_fixture.hpp"

namespace forker::test {
namespace {

using ForkerFormat = ForkerCliTest;

TEST_F(ForkerFormat, PsTemplates) {
  std::string id = run_detached({"--name", "fmt-one", "busybox", "sleep", "60"});
  RunResult r = forker({"ps", "--format", "{{.Names}}"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "fmt-one\n");

  r = forker({"ps", "--format", "{{.ID}}|{{.Image}}|{{.Command}}|{{.State}}|{{.Ports}}|x"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, id.substr(0, 12) + "|busybox|\"sleep 60\"|running||x\n");
  r = forker({"ps", "--no-trunc", "--format", "{{.ID}}"});
  EXPECT_EQ(r.out, id + "\n");

  r = forker({"ps", "--format", "{{.Status}}\\t{{.RunningFor}}"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("Up ")) << r.out;
  EXPECT_NE(r.out.find("\t"), std::string::npos) << r.out;  // \t is a tab, not aligned
  EXPECT_TRUE(r.out.ends_with(" ago\n")) << r.out;

  r = forker({"ps", "--format", "table {{.Names}}\\t{{.State}}\\t{{.CreatedAt}}"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto ls = lines(r.out);
  ASSERT_EQ(ls.size(), 2u) << r.out;
  EXPECT_TRUE(ls[0].starts_with("NAMES     STATE     CREATED AT")) << ls[0];
  EXPECT_TRUE(ls[1].starts_with("fmt-one   running   20")) << ls[1];

  // A stopped container only with -a.
  ASSERT_EQ(forker({"stop", "-t", "1", "fmt-one"}).status, 0);
  EXPECT_EQ(forker({"ps", "--format", "{{.Names}}"}).out, "");
  r = forker({"ps", "-a", "--format", "{{.Names}} {{.State}}"});
  EXPECT_EQ(r.out, "fmt-one exited\n");
  // Empty list with table: the header alone.
  EXPECT_EQ(forker({"ps", "--format", "table {{.ID}}"}).out, "CONTAINER ID\n");

  r = forker({"ps", "--format", "{{.Foo}}"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "forker: template: unknown field .Foo\n");
  EXPECT_EQ(r.out, "");

  // json and table are still the built-in forms.
  r = forker({"ps", "-a", "--format", "json"});
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["Names"], "fmt-one");
  r = forker({"ps", "-a", "--format", "table"});
  EXPECT_TRUE(r.out.starts_with("CONTAINER ID")) << r.out;
}

TEST_F(ForkerFormat, ImagesTemplates) {
  // The built-in busybox image is made on first use.
  ASSERT_EQ(forker({"tag", "busybox", "mine:v1"}).status, 0);
  RunResult r = forker({"images", "--format", "{{.Repository}}:{{.Tag}}"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto names = lines(r.out);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"busybox:latest", "mine:v1"}));

  r = forker({"images", "--format", "{{.ID}} {{.Digest}} {{.Size}}", "mine:v1"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j =
      nlohmann::json::parse(forker({"images", "--format", "json", "mine:v1"}).out, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(r.out, j["ID"].get<std::string>() + " " + j["Digest"].get<std::string>() + " " +
                       j["Size"].get<std::string>() + "\n");
  EXPECT_EQ(j["ID"].get<std::string>().size(), 12u);

  r = forker(
      {"images", "--format", "table {{.Repository}}\\t{{.Tag}}\\t{{.CreatedSince}}", "mine"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto ls = lines(r.out);
  ASSERT_EQ(ls.size(), 2u) << r.out;
  EXPECT_TRUE(ls[0].starts_with("REPOSITORY   TAG       CREATED")) << ls[0];
  EXPECT_TRUE(ls[1].starts_with("mine         v1        ")) << ls[1];

  r = forker({"images", "--format", "{{.Names}}"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "forker: template: unknown field .Names\n");
}

}  // namespace
}  // namespace forker::test
