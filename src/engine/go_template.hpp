// docker's `--format` for `forker ps` and `forker images`: the subset of Go's text/template that
// docker users type: literal text, `{{.Field}}` (spaces allowed inside the braces), `\t` and
// `\n` as escapes, and a leading `table ` that adds a header row of docker's column names and
// aligns the columns as docker's tabwriter does. Anything else inside `{{ }}` is refused.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace forker::engine {

// A field a template may name, and its column name under `table` ("ID" -> "CONTAINER ID").
struct TemplateField {
  std::string name;
  std::string header;
};

// One row's values, by field name.
using TemplateRow = std::map<std::string, std::string>;

class GoTemplate {
 public:
  // "template: unknown field .Foo" for a field not in FIELDS; "template: ..." for a malformed
  // or unsupported action.
  static Result<GoTemplate> parse(std::string_view text, const std::vector<TemplateField>& fields);

  bool table() const { return table_; }
  // Every row followed by a newline; with `table`, the header first and the columns aligned.
  std::string render(const std::vector<TemplateRow>& rows) const;

 private:
  struct Piece {
    bool field = false;  // text is a field name, else literal text
    std::string text;
  };
  std::string render_row(const TemplateRow& row) const;

  bool table_ = false;
  std::vector<Piece> pieces_;
  TemplateRow headers_;
};

// Go's text/tabwriter as docker sets it up for tables (minwidth 10, padding 3, spaces):
// tab-terminated cells are padded to their column block's widest cell; the text after a line's
// last tab is left as it is.
std::string tabwrite(std::string_view text);

}  // namespace forker::engine
