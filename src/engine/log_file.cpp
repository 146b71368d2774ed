// podman's k8s-file log: the writer (the monitor's side), the readers (`forker logs`), and the pump
// from the container's pipes into the writer.
#include "engine/log_file.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <iterator>

#include "core/io_proxy.hpp"

namespace forker::engine {
namespace {

// The longest text of one entry. A longer line is cut into partial entries, so neither the writer
// nor a reader holds more than this of one line, whatever the container prints.
constexpr size_t kMaxEntryText = 16 * 1024;
constexpr size_t kReadChunk = 64 * 1024;
// After the process exits, its last output is in the pipes (at most the pipe size, 1 MiB at most
// by /proc/sys/fs/pipe-max-size). A grandchild that keeps writing must not keep the drain going.
constexpr size_t kDrainLimit = 4 * 1024 * 1024;

int index_of(LogStream s) { return s == LogStream::kStdout ? 0 : 1; }
std::string_view name_of(LogStream s) { return s == LogStream::kStdout ? "stdout" : "stderr"; }

std::string now_rfc3339() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  size_t n = ::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::snprintf(buf + n, sizeof buf - n, ".%09ldZ", static_cast<long>(ts.tv_nsec));
  return buf;
}

void append_line(std::string& out, std::string_view time, LogStream stream, bool partial,
                 std::string_view text) {
  out += time;
  out += ' ';
  out += name_of(stream);
  out += partial ? " P " : " F ";
  out += text;
  out += '\n';
}

// "2026-12-02T08:00:00.123456789Z": enough of a check to reject a line that is not an entry.
bool looks_like_time(std::string_view t) {
  return t.size() >= 20 && t[4] == '-' && t[7] == '-' && t[10] == 'T' && t.back() == 'Z';
}

Error malformed(std::string_view line) {
  constexpr size_t kShown = 80;
  std::string shown(line.substr(0, kShown));
  if (!shown.empty() && shown.back() == '\n') shown.pop_back();
  if (line.size() > kShown) shown += "...";
  return make_error("parse log line", "\"" + shown + "\"");
}

// Reads FD from its offset to end of file, appending to OUT.
Status read_to_end(int fd, std::string& out, const std::string& name) {
  char buf[kReadChunk];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      return ok();
    } else if (errno != EINTR) {
      return sys_error("read", name);
    }
  }
}

// Parses the complete lines of BUF into ENTRIES and erases them from BUF. What is left has no
// newline yet: a write in progress, so it waits for the rest.
Status take_lines(std::string& buf, std::vector<LogEntry>& entries) {
  size_t pos = 0;
  for (size_t nl; (nl = buf.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    entries.push_back(FORKER_TRY(parse_log_line(std::string_view(buf).substr(pos, nl - pos))));
  }
  buf.erase(0, pos);
  return ok();
}

struct LogFile {
  UniqueFd fd;
  dev_t dev = 0;
  ino_t ino = 0;
  std::string name;
};

Result<LogFile> open_log(const std::string& name) {
  LogFile f{UniqueFd(::open(name.c_str(), O_RDONLY | O_CLOEXEC)), 0, 0, name};
  if (!f.fd) return sys_error("open", name);
  struct stat st {};
  if (::fstat(f.fd.get(), &st) < 0) return sys_error("fstat", name);
  f.dev = st.st_dev;
  f.ino = st.st_ino;
  return f;
}

std::string rotated_name(const std::string& path, int n) { return path + "." + std::to_string(n); }

bool same_file(const LogFile& a, const LogFile& b) { return a.dev == b.dev && a.ino == b.ino; }

// Opens PATH.1, PATH.2 ... onto FILES, newest first, up to STOP (when given and met) and skipping
// files already in FILES. Newest first because a rotation meanwhile moves files up, ahead of the
// scan: a file may be met twice (skipped), not missed. Two missing numbers in a row end the scan;
// one may be the gap a rotation in progress leaves while it renames.
Status open_rotated(const std::string& path, const LogFile* stop, std::vector<LogFile>& files) {
  for (int n = 1, missing = 0; missing < 2; ++n) {
    auto f = open_log(rotated_name(path, n));
    if (!f) {
      if (f.error().err != ENOENT) return std::move(f).error();
      ++missing;
      continue;
    }
    missing = 0;
    if (stop && same_file(*f, *stop)) return ok();
    bool seen = false;
    for (const auto& g : files) seen = seen || same_file(g, *f);
    if (!seen) files.push_back(std::move(*f));
  }
  return ok();
}

// PATH.N ... PATH.1, PATH: every file of the log, oldest first.
Result<std::vector<LogFile>> open_log_files(const std::string& path) {
  std::vector<LogFile> files;
  files.push_back(FORKER_TRY(open_log(path)));
  FORKER_TRY(open_rotated(path, nullptr, files));
  return std::vector<LogFile>(std::make_move_iterator(files.rbegin()),
                              std::make_move_iterator(files.rend()));
}

// Writes entries to the two fds, joining partial entries with what follows them. Output is
// gathered per fd and written when the fd changes, keeping the order between the two streams.
class LogPrinter {
 public:
  LogPrinter(bool timestamps, std::string prefix, int out_fd, int err_fd)
      : timestamps_(timestamps), prefix_(std::move(prefix)), fds_{out_fd, err_fd} {}

  Status add(const LogEntry& e) {
    int i = index_of(e.stream);
    if (fds_[i] != buf_fd_) FORKER_TRY(flush());
    buf_fd_ = fds_[i];
    if (!mid_line_[i]) buf_ += prefix_;
    if (timestamps_ && !mid_line_[i]) {
      buf_ += e.time;
      buf_ += ' ';
    }
    buf_ += e.text;
    if (!e.partial) buf_ += '\n';
    mid_line_[i] = e.partial;
    return buf_.size() >= kReadChunk ? flush() : ok();
  }

  Status flush() {
    if (buf_.empty()) return ok();
    FORKER_TRY(write_all(buf_fd_, buf_, buf_fd_ == fds_[0] ? "log output" : "log error output"));
    buf_.clear();
    return ok();
  }

 private:
  bool timestamps_;
  std::string prefix_;
  int fds_[2];
  bool mid_line_[2] = {false, false};
  int buf_fd_ = -1;
  std::string buf_;
};

// Which entries belong to the last N lines; a run of partial entries and the full entry that
// ends it is one line of its stream.
std::vector<bool> tail_mask(const std::vector<LogEntry>& entries, size_t n) {
  std::vector<size_t> line_of(entries.size());
  size_t next_line = 0;
  std::optional<size_t> open_line[2];
  for (size_t i = 0; i < entries.size(); ++i) {
    auto& open = open_line[index_of(entries[i].stream)];
    if (!open) open = next_line++;
    line_of[i] = *open;
    if (!entries[i].partial) open.reset();
  }
  size_t first = next_line > n ? next_line - n : 0;
  std::vector<bool> keep(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) keep[i] = line_of[i] >= first;
  return keep;
}

// `logs -f`: the file being written, read as it grows, and the next one after a rotation.
class LogFollower {
 public:
  LogFollower(const std::string& path, LogFile current, std::string pending)
      : path_(path), cur_(std::move(current)), buf_(std::move(pending)) {
    offset_ = std::max<off_t>(::lseek(cur_.fd.get(), 0, SEEK_CUR), 0);
  }

  // Prints whatever was appended since the last call; true if there was any.
  Result<bool> poll(LogPrinter& printer) {
    bool got = FORKER_TRY(read_new(printer));
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0 && (st.st_dev != cur_.dev || st.st_ino != cur_.ino)) {
      // Rotated. The writer finished the old file before the rename, so one more read ends it.
      // Files rotated since ours (several rotations since the last look) come next, then PATH.
      std::vector<LogFile> files;
      auto next = open_log(path_);
      if (!next) return next.error().err == ENOENT ? Result<bool>(got) : std::move(next).error();
      files.push_back(std::move(*next));
      FORKER_TRY(open_rotated(path_, &cur_, files));
      FORKER_TRY(read_new(printer));
      for (size_t i = files.size() - 1; i > 0; --i) FORKER_TRY(print_whole(files[i], printer));
      cur_ = std::move(files[0]);
      offset_ = 0;
      buf_.clear();
      FORKER_TRY(read_new(printer));
      return true;
    }
    if (::fstat(cur_.fd.get(), &st) < 0) return sys_error("fstat", cur_.name);
    if (st.st_size < offset_) {  // truncated in place: start over
      if (::lseek(cur_.fd.get(), 0, SEEK_SET) < 0) return sys_error("lseek", cur_.name);
      offset_ = 0;
      buf_.clear();
      got = FORKER_TRY(read_new(printer)) || got;
    }
    return got;
  }

 private:
  Result<bool> read_new(LogPrinter& printer) {
    size_t before = buf_.size();
    FORKER_TRY(read_to_end(cur_.fd.get(), buf_, cur_.name));
    offset_ += static_cast<off_t>(buf_.size() - before);
    if (buf_.size() == before) return false;
    FORKER_TRY(print_lines(buf_, cur_.name, printer));
    return true;
  }

  static Status print_whole(LogFile& f, LogPrinter& printer) {
    std::string text;
    FORKER_TRY(read_to_end(f.fd.get(), text, f.name));
    return print_lines(text, f.name, printer);
  }

  static Status print_lines(std::string& buf, const std::string& name, LogPrinter& printer) {
    std::vector<LogEntry> entries;
    FORKER_TRY_CTX(take_lines(buf, entries), name);
    for (const auto& e : entries) FORKER_TRY(printer.add(e));
    return ok();
  }

  const std::string& path_;
  LogFile cur_;
  off_t offset_ = 0;
  std::string buf_;
};

// Waits for the log's directory to change (inotify), at most 250 ms so that the caller checks
// still_running() often; without inotify (no instances left), 100 ms.
class LogWaiter {
 public:
  explicit LogWaiter(const std::string& path) {
    fd_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    if (fd_ && ::inotify_add_watch(fd_.get(), dir.c_str(),
                                   IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
      fd_.reset();
    }
  }

  void wait() {
    if (!fd_) {
      ::usleep(100 * 1000);
      return;
    }
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 250) > 0) {
      char buf[4096];
      while (::read(fd_.get(), buf, sizeof buf) > 0) {
      }
    }
  }

 private:
  UniqueFd fd_;
};

Status set_nonblock(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return sys_error("fcntl O_NONBLOCK", "container output");
  }
  return ok();
}

// Reads FD into LOG until it would block, reaches end of file (FD becomes -1) or LIMIT bytes.
Status read_available(int& fd, LogStream stream, LogWriter& log, size_t limit) {
  char buf[kReadChunk];
  for (size_t total = 0; total < limit;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      FORKER_TRY(log.append(stream, std::string_view(buf, static_cast<size_t>(n))));
      total += static_cast<size_t>(n);
    } else if (n == 0) {
      fd = -1;
      return ok();
    } else if (errno == EAGAIN) {
      return ok();
    } else if (errno != EINTR) {
      return sys_error("read",
                       stream == LogStream::kStdout ? "container stdout" : "container stderr");
    }
  }
  return ok();
}

}  // namespace

std::string format_log_line(const LogEntry& e) {
  std::string out;
  out.reserve(e.time.size() + e.text.size() + 12);
  append_line(out, e.time, e.stream, e.partial, e.text);
  return out;
}

Result<LogEntry> parse_log_line(std::string_view line) {
  std::string_view rest = line;
  if (!rest.empty() && rest.back() == '\n') rest.remove_suffix(1);
  LogEntry e;
  size_t sp = rest.find(' ');
  if (sp == std::string_view::npos || !looks_like_time(rest.substr(0, sp))) return malformed(line);
  e.time = rest.substr(0, sp);
  rest.remove_prefix(sp + 1);
  if (rest.substr(0, 7) == "stdout ") {
    e.stream = LogStream::kStdout;
  } else if (rest.substr(0, 7) == "stderr ") {
    e.stream = LogStream::kStderr;
  } else {
    return malformed(line);
  }
  rest.remove_prefix(7);
  if (rest.empty() || (rest[0] != 'P' && rest[0] != 'F')) return malformed(line);
  e.partial = rest[0] == 'P';
  rest.remove_prefix(1);
  // "TIME stdout F" with no space is an empty line too (CRI readers accept both).
  if (!rest.empty()) {
    if (rest[0] != ' ') return malformed(line);
    rest.remove_prefix(1);
  }
  e.text = rest;
  return e;
}

Result<LogWriter> LogWriter::open(std::string path, int64_t max_bytes, int max_files) {
  LogWriter w;
  w.path_ = std::move(path);
  w.max_bytes_ = max_bytes;
  w.max_files_ = max_files < 1 ? 1 : max_files;
  FORKER_TRY(w.open_current());
  if (w.max_bytes_ > 0 && w.size_ >= w.max_bytes_) FORKER_TRY(w.rotate());
  return w;
}

Status LogWriter::open_current() {
  fd_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd_) return sys_error("open", path_);
  struct stat st {};
  if (::fstat(fd_.get(), &st) < 0) return sys_error("fstat", path_);
  size_ = st.st_size;
  return ok();
}

Status LogWriter::append(LogStream stream, std::string_view data) {
  std::string& pending = pending_[index_of(stream)];
  pending.append(data);
  const std::string time = now_rfc3339();
  std::string batch;
  std::string_view rest = pending;
  for (size_t nl; (nl = rest.find('\n')) != std::string_view::npos; rest.remove_prefix(nl + 1)) {
    std::string_view line = rest.substr(0, nl);
    for (; line.size() > kMaxEntryText; line.remove_prefix(kMaxEntryText)) {
      FORKER_TRY(add_entry(batch, time, stream, true, line.substr(0, kMaxEntryText)));
    }
    FORKER_TRY(add_entry(batch, time, stream, false, line));
  }
  // A tail longer than one entry goes out as partial entries; the rest waits for its newline.
  for (; rest.size() > kMaxEntryText; rest.remove_prefix(kMaxEntryText)) {
    FORKER_TRY(add_entry(batch, time, stream, true, rest.substr(0, kMaxEntryText)));
  }
  pending.erase(0, pending.size() - rest.size());
  return write_batch(batch);
}

Status LogWriter::flush() {
  for (LogStream s : {LogStream::kStdout, LogStream::kStderr}) {
    std::string& pending = pending_[index_of(s)];
    if (pending.empty()) continue;
    FORKER_TRY(write_entry(LogEntry{now_rfc3339(), s, true, pending}));
    pending.clear();
  }
  return ok();
}

Status LogWriter::write_entry(const LogEntry& e) {
  std::string line = format_log_line(e);
  return write_batch(line);
}

// Adds one entry to BATCH. Once the file would reach max_bytes_, the batch is written (and the
// file rotated), so a rotation falls between entries and no file grows far past the limit.
Status LogWriter::add_entry(std::string& batch, std::string_view time, LogStream stream,
                            bool partial, std::string_view text) {
  append_line(batch, time, stream, partial, text);
  if (max_bytes_ > 0 && size_ + static_cast<int64_t>(batch.size()) >= max_bytes_) {
    FORKER_TRY(write_batch(batch));
  }
  return ok();
}

// One write() for the whole batch: O_APPEND keeps it in one piece, so a reader sees whole entries.
Status LogWriter::write_batch(std::string& batch) {
  if (batch.empty()) return ok();
  FORKER_TRY(write_all(fd_.get(), batch, path_));
  size_ += static_cast<int64_t>(batch.size());
  batch.clear();
  if (max_bytes_ > 0 && size_ >= max_bytes_) FORKER_TRY(rotate());
  return ok();
}

Status LogWriter::rotate() {
  // Shift PATH.(n-1) to PATH.n, oldest first, so that only the oldest file is overwritten.
  for (int n = max_files_ - 1; n >= 2; --n) {
    std::string from = rotated_name(path_, n - 1);
    std::string to = rotated_name(path_, n);
    if (::rename(from.c_str(), to.c_str()) < 0 && errno != ENOENT) return sys_error("rename", from);
  }
  // The old PATH becomes PATH.1 by a hard link and the new one replaces it in one rename, so that
  // a reader always finds a PATH. Without hard links (some FUSE), a plain rename.
  if (max_files_ > 1) {
    std::string first = rotated_name(path_, 1);
    if (::unlink(first.c_str()) < 0 && errno != ENOENT) return sys_error("unlink", first);
    if (::link(path_.c_str(), first.c_str()) < 0 && ::rename(path_.c_str(), first.c_str()) < 0) {
      return sys_error("rename", path_);
    }
  }
  std::string next = path_ + ".new";
  UniqueFd fd(::open(next.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640));
  if (!fd) return sys_error("open", next);
  if (::rename(next.c_str(), path_.c_str()) < 0) return sys_error("rename", next);
  fd_ = std::move(fd);
  size_ = 0;
  return ok();
}

Result<std::vector<LogEntry>> read_log(const std::string& path) {
  auto files = FORKER_TRY(open_log_files(path));
  std::vector<LogEntry> entries;
  for (auto& f : files) {
    std::string text;
    FORKER_TRY(read_to_end(f.fd.get(), text, f.name));
    FORKER_TRY_CTX(take_lines(text, entries), f.name);
  }
  return entries;
}

Status print_log(const std::string& path, const LogPrintOptions& o, int out_fd, int err_fd,
                 const std::function<bool()>& still_running) {
  auto files = FORKER_TRY(open_log_files(path));
  std::vector<LogEntry> entries;
  std::string pending;  // the current file's unfinished last line
  for (auto& f : files) {
    pending.clear();
    FORKER_TRY(read_to_end(f.fd.get(), pending, f.name));
    FORKER_TRY_CTX(take_lines(pending, entries), f.name);
  }
  std::vector<bool> keep = o.tail ? tail_mask(entries, *o.tail) : std::vector<bool>();
  LogPrinter printer(o.timestamps, o.prefix, out_fd, err_fd);
  for (size_t i = 0; i < entries.size(); ++i) {
    if (keep.empty() || keep[i]) FORKER_TRY(printer.add(entries[i]));
  }
  FORKER_TRY(printer.flush());
  if (!o.follow) return ok();

  LogFollower follower(path, std::move(files.back()), std::move(pending));
  LogWaiter waiter(path);
  for (;;) {
    // Asked before reading: once the process is gone, one read that finds nothing ends it.
    bool running = still_running && still_running();
    bool got = FORKER_TRY(follower.poll(printer));
    FORKER_TRY(printer.flush());
    if (!running && !got) return ok();
    if (!got) waiter.wait();
  }
}

Status pump_output(int out_fd, int err_fd, int pidfd, LogWriter& log) {
  int fds[2] = {out_fd, err_fd};
  constexpr LogStream kStreams[2] = {LogStream::kStdout, LogStream::kStderr};
  for (int fd : fds) {
    if (fd >= 0) FORKER_TRY(set_nonblock(fd));
  }
  while (fds[0] >= 0 || fds[1] >= 0) {
    pollfd p[3] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}, {pidfd, POLLIN, 0}};
    if (::poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return sys_error("poll", "container output");
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i] >= 0 && p[i].revents != 0) {
        FORKER_TRY(read_available(fds[i], kStreams[i], log, kReadChunk * 4));
      }
    }
    if (pidfd >= 0 && p[2].revents != 0) {
      // Exited: its output is all in the pipes now. A grandchild may hold them open for ever;
      // take what is there and stop.
      for (int i = 0; i < 2; ++i) {
        if (fds[i] >= 0) FORKER_TRY(read_available(fds[i], kStreams[i], log, kDrainLimit));
      }
      break;
    }
  }
  return log.flush();
}

}  // namespace forker::engine
