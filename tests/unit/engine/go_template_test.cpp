// docker's --format subset: fields, literal text, escapes, the table prefix with its header and
// tabwriter alignment (compared with what docker prints), and the errors for unknown fields and
// unsupported actions.
#include "engine/go_template.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace forker::engine {
namespace {

using ::testing::HasSubstr;

const std::vector<TemplateField> kFields = {
    {"ID", "CONTAINER ID"}, {"Names", "NAMES"}, {"Image", "IMAGE"}, {"Status", "STATUS"}};

const std::vector<TemplateRow> kRows = {
    {{"ID", "0123456789ab"}, {"Names", "web"}, {"Image", "busybox"}, {"Status", "Up 2 minutes"}},
    {{"ID", "ba9876543210"},
     {"Names", "a_much_longer_name"},
     {"Image", "alpine:3.19"},
     {"Status", "Exited (0) 1 second ago"}}};

std::string render(std::string_view text, const std::vector<TemplateRow>& rows = kRows) {
  auto t = GoTemplate::parse(text, kFields);
  EXPECT_TRUE(t) << (t ? "" : t.error().message());
  return t ? t->render(rows) : "";
}

std::string parse_error(std::string_view text) {
  auto t = GoTemplate::parse(text, kFields);
  return t ? "(parsed)" : t.error().message();
}

TEST(GoTemplate, FieldsAndLiteralText) {
  EXPECT_EQ(render("{{.Names}}"), "web\na_much_longer_name\n");
  EXPECT_EQ(render("name={{.Names}} image={{ .Image }}!"),
            "name=web image=busybox!\nname=a_much_longer_name image=alpine:3.19!\n");
  EXPECT_EQ(render("{{.ID}}{{.ID}}", {kRows[0]}), "0123456789ab0123456789ab\n");
  EXPECT_EQ(render("no fields", {kRows[0], kRows[1]}), "no fields\nno fields\n");
  EXPECT_EQ(render("{{.Names}}", {}), "");
  EXPECT_FALSE(GoTemplate::parse("{{.Names}}", kFields)->table());
}

TEST(GoTemplate, EscapesAreReplacedAndOuterSpacesTrimmed) {
  // Without `table` a \t stays a tab: docker does not align.
  EXPECT_EQ(render("{{.ID}}\\t{{.Names}}", {kRows[0]}), "0123456789ab\tweb\n");
  EXPECT_EQ(render("{{.Names}}\\n--", {kRows[0]}), "web\n--\n");
  EXPECT_EQ(render("  {{.Names}}  ", {kRows[0]}), "web\n");
  // Only \t and \n are escapes.
  EXPECT_EQ(render("a\\b{{.Names}}", {kRows[0]}), "a\\bweb\n");
}

TEST(GoTemplate, TableHasDockersHeaderAndAlignment) {
  auto t = GoTemplate::parse("table {{.ID}}\\t{{.Image}}\\t{{.Names}}", kFields);
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->table());
  // As docker prints it: each column padded to its widest cell plus 3, at least 10 wide; the
  // last column is not padded.
  EXPECT_EQ(t->render(kRows),
            "CONTAINER ID   IMAGE         NAMES\n"
            "0123456789ab   busybox       web\n"
            "ba9876543210   alpine:3.19   a_much_longer_name\n");
  // No rows: the header alone.
  EXPECT_EQ(t->render({}), "CONTAINER ID   IMAGE     NAMES\n");
  // Literal text goes into the header too (docker renders the header through the template).
  EXPECT_EQ(render("table id={{.ID}}", {kRows[0]}), "id=CONTAINER ID\nid=0123456789ab\n");
}

TEST(GoTemplate, TabwriterCountsRunesAndSplitsColumnBlocks) {
  EXPECT_EQ(tabwrite("a\tb\n\"sleep…\"\tc\n"), "a          b\n\"sleep…\"   c\n");
  // A line without the column ends its block: the blocks before and after size independently.
  EXPECT_EQ(tabwrite("averyveryverylongcell\tx\nbreak\nb\ty\n"),
            "averyveryverylongcell   x\nbreak\nb         y\n");
  EXPECT_EQ(tabwrite("no tabs\n"), "no tabs\n");
  EXPECT_EQ(tabwrite(""), "");
}

TEST(GoTemplate, UnknownFieldIsOneLineError) {
  EXPECT_EQ(parse_error("{{.Foo}}"), "template: unknown field .Foo");
  EXPECT_EQ(parse_error("table {{.ID}}\\t{{.Size}}"), "template: unknown field .Size");
  // Field names are case-sensitive, as in Go.
  EXPECT_EQ(parse_error("{{.names}}"), "template: unknown field .names");
}

TEST(GoTemplate, UnsupportedActionsAreRefused) {
  EXPECT_THAT(parse_error("{{json .}}"), HasSubstr("template: unsupported action {{json .}}"));
  EXPECT_THAT(parse_error("{{.Names | upper}}"), HasSubstr("unsupported action"));
  EXPECT_THAT(parse_error("{{.Label \"x\"}}"), HasSubstr("unsupported action"));
  EXPECT_THAT(parse_error("{{}}"), HasSubstr("unsupported action"));
  EXPECT_THAT(parse_error("{{.Names"), HasSubstr("template: unclosed action"));
  // A lone }} is literal text in Go.
  EXPECT_EQ(render("}}{{.Names}}", {kRows[0]}), "}}web\n");
}

}  // namespace
}  // namespace forker::engine
