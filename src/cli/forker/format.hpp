// How `forker` prints sizes and ages, the way docker does: "4.26MB" (decimal units, three
// significant digits; system df uses four), "2 hours ago". Header-only so the unit tests can
// check the strings without linking the command line.
#pragma once

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace forker::cli {

inline std::string human_size(double bytes, int precision = 3) {
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  size_t unit = 0;
  char buf[64];
  for (;;) {
    while (bytes >= 1000 && unit + 1 < std::size(kUnits)) {
      bytes /= 1000;
      ++unit;
    }
    std::snprintf(buf, sizeof buf, "%.*g", precision, bytes);
    // 999.96kB rounds to "1e+03": that is the next unit up.
    if (std::string_view(buf).find('e') == std::string_view::npos || unit + 1 == std::size(kUnits))
      break;
    bytes = 1000;
  }
  return std::string(buf) + kUnits[unit];
}

// "2 hours", "About a minute", "3 weeks": the age of something SECONDS old.
inline std::string human_duration(int64_t seconds) {
  auto n = [](int64_t v, const char* unit) { return std::to_string(v) + " " + unit; };
  if (seconds < 1) return "Less than a second";
  if (seconds == 1) return "1 second";
  if (seconds < 60) return n(seconds, "seconds");
  int64_t minutes = seconds / 60;
  if (minutes == 1) return "About a minute";
  if (minutes < 60) return n(minutes, "minutes");
  int64_t hours = (seconds + 1800) / 3600;  // rounded, as docker does
  if (hours == 1) return "About an hour";
  if (hours < 48) return n(hours, "hours");
  if (hours < 24 * 7 * 2) return n(hours / 24, "days");
  if (hours < 24 * 30 * 2) return n(hours / 24 / 7, "weeks");
  if (hours < 24 * 365 * 2) return n(hours / 24 / 30, "months");
  return n(seconds / 3600 / 24 / 365, "years");
}

// RFC 3339 ("2024-05-01T12:34:56.123Z", "...+02:00") to seconds since the epoch.
inline std::optional<int64_t> parse_rfc3339(std::string_view text) {
  std::string s(text);
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 || consumed != 19)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::string_view rest = std::string_view(s).substr(19);
  if (rest.starts_with('.')) {
    size_t i = 1;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') ++i;
    if (i == 1) return std::nullopt;
    rest.remove_prefix(i);
  }
  int64_t offset = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int h = 0, m = 0;
    if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &h, &m) != 2)
      return std::nullopt;
    offset = (h * 3600 + m * 60) * (rest[0] == '+' ? 1 : -1);
  } else {
    return std::nullopt;
  }
  return static_cast<int64_t>(::timegm(&tm)) - offset;
}

// docker's CREATED column: "2 hours ago"; "N/A" when the image does not say.
inline std::string created_ago(std::string_view created, int64_t now) {
  auto t = parse_rfc3339(created);
  if (!t) return "N/A";
  return human_duration(now - *t) + " ago";
}

}  // namespace forker::cli
