// The `--format` template subset (go_template.hpp), following docker's formatter
// (cli/command/formatter/formatter.go): "table" prefix cut, spaces trimmed, `\t` and `\n`
// replaced, header rendered through the same template, then text/tabwriter.
#include "engine/go_template.hpp"

#include <algorithm>
#include <cctype>

#include "core/strings.hpp"

namespace forker::engine {
namespace {

constexpr std::string_view kTablePrefix = "table";

// docker replaces these two escapes before Go parses the template.
std::string replace_escapes(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == 't' || text[i + 1] == 'n')) {
      out.push_back(text[i + 1] == 't' ? '\t' : '\n');
      ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

bool is_identifier(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

// Go's tabwriter counts runes, not bytes ("…" is one column).
size_t text_width(std::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// A port of text/tabwriter's format/writeLines for left alignment and space padding. A column
// block is a run of consecutive lines that all have a cell in that column; each block gets its
// own width.
class TabWriter {
 public:
  static constexpr size_t kMinWidth = 10, kPadding = 3;

  explicit TabWriter(std::string_view text) {
    for (const std::string& line : split(text, '\n')) lines_.push_back(split(line, '\t'));
  }
  std::string run() {
    format(0, lines_.size());
    return std::move(out_);
  }

 private:
  // Cells of each line; the last is the text after the line's last tab (not in a column).
  using Line = std::vector<std::string>;

  void format(size_t line0, size_t line1) {
    size_t column = widths_.size();
    for (size_t i = line0; i < line1; ++i) {
      if (column + 1 >= lines_[i].size()) continue;
      write_lines(line0, i);
      line0 = i;
      size_t width = kMinWidth;
      for (; i < line1 && column + 1 < lines_[i].size(); ++i)
        width = std::max(width, text_width(lines_[i][column]) + kPadding);
      widths_.push_back(width);
      format(line0, i);
      widths_.pop_back();
      line0 = i;
    }
    write_lines(line0, line1);
  }

  void write_lines(size_t line0, size_t line1) {
    for (size_t i = line0; i < line1; ++i) {
      const Line& line = lines_[i];
      for (size_t j = 0; j < line.size(); ++j) {
        out_ += line[j];
        if (j < widths_.size()) out_.append(widths_[j] - text_width(line[j]), ' ');
      }
      // The text after the last newline is a line without one.
      if (i + 1 < lines_.size()) out_ += '\n';
    }
  }

  std::vector<Line> lines_;
  std::vector<size_t> widths_;
  std::string out_;
};

}  // namespace

Result<GoTemplate> GoTemplate::parse(std::string_view text,
                                     const std::vector<TemplateField>& fields) {
  GoTemplate t;
  if (text.starts_with(kTablePrefix)) {
    t.table_ = true;
    text.remove_prefix(kTablePrefix.size());
  }
  std::string body = replace_escapes(trim_spaces(text));
  std::string_view rest = body;
  while (!rest.empty()) {
    size_t open = rest.find("{{");
    if (open == std::string_view::npos) {
      t.pieces_.push_back({false, std::string(rest)});
      break;
    }
    if (open > 0) t.pieces_.push_back({false, std::string(rest.substr(0, open))});
    size_t close = rest.find("}}", open + 2);
    if (close == std::string_view::npos)
      return make_error("template: unclosed action in \"" + std::string(text) + "\"");
    std::string_view action = rest.substr(open + 2, close - open - 2);
    std::string_view inner = trim(action);
    if (!inner.starts_with('.') || !is_identifier(inner.substr(1)))
      return make_error("template: unsupported action {{" + std::string(action) +
                        "}} (only {{.Field}})");
    std::string name(inner.substr(1));
    auto known = std::find_if(fields.begin(), fields.end(),
                              [&](const TemplateField& f) { return f.name == name; });
    if (known == fields.end()) return make_error("template: unknown field ." + name);
    t.pieces_.push_back({true, name});
    rest.remove_prefix(close + 2);
  }
  for (const auto& f : fields) t.headers_[f.name] = f.header;
  return t;
}

std::string GoTemplate::render_row(const TemplateRow& row) const {
  std::string out;
  for (const auto& p : pieces_) {
    if (!p.field) {
      out += p.text;
      continue;
    }
    if (auto it = row.find(p.text); it != row.end()) out += it->second;
  }
  return out;
}

std::string GoTemplate::render(const std::vector<TemplateRow>& rows) const {
  std::string text;
  if (table_) text += render_row(headers_) + "\n";
  for (const auto& row : rows) text += render_row(row) + "\n";
  return table_ ? tabwrite(text) : text;
}

std::string tabwrite(std::string_view text) { return TabWriter(text).run(); }

}  // namespace forker::engine
