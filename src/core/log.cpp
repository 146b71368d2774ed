#include "core/log.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "oci/state.hpp"

namespace forker::log {
namespace {

struct Config {
  int fd = STDERR_FILENO;
  Format format = Format::kText;
  bool debug = false;
  std::string prefix = "forker";
} g_config;

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warning";
    case Level::kError: return "error";
  }
  return "info";
}

}  // namespace

void configure(int fd, Format format, bool debug, std::string prefix) {
  g_config = Config{fd, format, debug, std::move(prefix)};
}

bool debug_enabled() { return g_config.debug; }

void write(Level level, std::string_view msg) {
  std::string line;
  if (g_config.format == Format::kJson) {
    nlohmann::json j = {{"level", level_name(level)}, {"msg", msg}, {"time", oci::rfc3339_now()}};
    line = j.dump() + "\n";
  } else {
    line = g_config.prefix + ": ";
    if (level != Level::kError) line += std::string(level_name(level)) + ": ";
    line += msg;
    line += '\n';
  }
  ssize_t ignored = ::write(g_config.fd, line.data(), line.size());
  (void)ignored;
}

void StepTimer::lap(std::string_view step) {
  if (!debug_enabled()) return;
  auto now = std::chrono::steady_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - last_).count();
  last_ = now;
  write(Level::kDebug, std::string(step) + ": " + std::to_string(us) + " us");
}

}  // namespace forker::log
