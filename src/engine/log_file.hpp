// A container's log: what its stdout and stderr wrote, one entry per line, in podman's
// k8s-file format ("2026-12-02T08:00:00.123456789Z stdout F text"; P marks a partial line,
// a chunk cut before its newline). Rotated by size: ctr.log, ctr.log.1 ... ctr.log.N (oldest).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/unique_fd.hpp"

namespace forker::engine {

enum class LogStream { kStdout, kStderr };

struct LogEntry {
  std::string time;  // RFC 3339 with nanoseconds, UTC
  LogStream stream = LogStream::kStdout;
  bool partial = false;  // no newline ended it
  std::string text;      // without the newline
};

// "TIME stdout F text\n". Parsing a malformed line is an error naming it.
std::string format_log_line(const LogEntry& e);
Result<LogEntry> parse_log_line(std::string_view line);

class LogWriter {
 public:
  // Appends to PATH (created 0640). Once PATH holds MAX_BYTES or more, it is renamed to PATH.1
  // (PATH.1 to PATH.2 ..., keeping MAX_FILES files in all) and a new PATH begun. max_bytes <= 0:
  // no rotation.
  static Result<LogWriter> open(std::string path, int64_t max_bytes, int max_files);
  // DATA as read from STREAM: each complete line becomes an entry; a tail with no newline waits
  // for the rest, unless it exceeds 16 KiB (then written as a partial entry).
  Status append(LogStream stream, std::string_view data);
  // Writes what is pending of both streams as partial entries (the process has exited).
  Status flush();

 private:
  LogWriter() = default;
  Status open_current();
  Status write_entry(const LogEntry& e);
  Status add_entry(std::string& batch, std::string_view time, LogStream stream, bool partial,
                   std::string_view text);
  Status write_batch(std::string& batch);
  Status rotate();
  std::string path_;
  int64_t max_bytes_ = 0;
  int max_files_ = 1;
  UniqueFd fd_;
  int64_t size_ = 0;
  std::string pending_[2];
};

// Every entry of PATH and its rotated files, oldest first.
Result<std::vector<LogEntry>> read_log(const std::string& path);

struct LogPrintOptions {
  bool timestamps = false;           // -t: "TIME " before each line
  std::optional<size_t> tail;        // --tail N: the last N entries (partial ones join the next)
  bool follow = false;               // -f
  std::string prefix;                // before every line: "web-1 | " for a replica group
};
// `forker logs`: writes the entries of PATH to OUT_FD (stdout entries) and ERR_FD (stderr
// entries), partial entries joined with what follows them. With follow, keeps reading what is
// appended (rotation included) until STILL_RUNNING returns false and nothing more is there.
Status print_log(const std::string& path, const LogPrintOptions& o, int out_fd, int err_fd,
                 const std::function<bool()>& still_running);

// The monitor's loop: reads OUT_FD and ERR_FD (pipes from the container) into LOG until both
// reach end of file or, once PIDFD is readable (the process exited), nothing more is readable.
// A read error other than EAGAIN/EINTR is returned.
Status pump_output(int out_fd, int err_fd, int pidfd, LogWriter& log);

}  // namespace forker::engine
