// Runtime logging: text or runc-style JSON lines ({"level":"error","msg":"...","time":"..."})
// to --log (default stderr). Only the command-line faces configure it; the library logs
// warnings and --debug step timings through it.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace forker::log {

enum class Level { kDebug, kInfo, kWarn, kError };
enum class Format { kText, kJson };

void configure(int fd, Format format, bool debug, std::string prefix);
bool debug_enabled();
void write(Level level, std::string_view msg);
inline void debug(std::string_view m) { if (debug_enabled()) write(Level::kDebug, m); }
inline void warn(std::string_view m) { write(Level::kWarn, m); }
inline void error(std::string_view m) { write(Level::kError, m); }

// Times the steps of one command: lap("clone") logs "clone: 153 us" under --debug.
class StepTimer {
 public:
  StepTimer() : last_(std::chrono::steady_clock::now()) {}
  void lap(std::string_view step);

 private:
  std::chrono::steady_clock::time_point last_;
};

}  // namespace forker::log
