// The k8s-file log in a temp dir: line format, partial and long lines, rotation, `logs` with
// --tail, -t and -f (a writer thread rotating under a follower), and the monitor's pump from
// pipes of a forked child.
#include "engine/log_file.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include "support/temp_dir.hpp"

namespace forker::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr size_t k16K = 16 * 1024;

using ::forker::test::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

LogEntry entry(std::string time, LogStream s, bool partial, std::string text) {
  return LogEntry{std::move(time), s, partial, std::move(text)};
}

// "stdout F text" per entry: what a test compares, without the times.
std::vector<std::string> describe(const std::vector<LogEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) {
    out.push_back(std::string(e.stream == LogStream::kStdout ? "stdout" : "stderr") +
                  (e.partial ? " P " : " F ") + e.text);
  }
  return out;
}

std::vector<LogEntry> read_entries(const std::string& path) {
  auto r = read_log(path);
  EXPECT_TRUE(r) << r.error().message();
  return r ? *r : std::vector<LogEntry>{};
}

// Nanoseconds since the epoch of "2026-12-02T08:00:00.123456789Z".
int64_t parse_time_ns(const std::string& t) {
  tm parts{};
  EXPECT_NE(strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &parts), nullptr) << t;
  int64_t secs = timegm(&parts);
  return secs * 1000000000 + std::stoll(t.substr(20, 9));
}

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Reads a pipe to its end on a thread, so that a writer never blocks on a full pipe.
class PipeReader {
 public:
  PipeReader() {
    EXPECT_EQ(::pipe2(fds_, O_CLOEXEC), 0);
    thread_ = std::thread([this] {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fds_[0], buf, sizeof buf)) > 0) text_.append(buf, static_cast<size_t>(n));
    });
  }
  ~PipeReader() { finish(); }
  int write_fd() const { return fds_[1]; }
  // Closes the write end and waits for everything written.
  const std::string& finish() {
    if (fds_[1] >= 0) {
      ::close(fds_[1]);
      fds_[1] = -1;
      thread_.join();
      ::close(fds_[0]);
    }
    return text_;
  }

 private:
  int fds_[2] = {-1, -1};
  std::thread thread_;
  std::string text_;
};

struct Printed {
  std::string out, err;
};

Printed print(const std::string& path, const LogPrintOptions& o) {
  PipeReader out, err;
  Status st = print_log(path, o, out.write_fd(), err.write_fd(), [] { return false; });
  EXPECT_TRUE(st) << st.error().message();
  return {out.finish(), err.finish()};
}

TEST(LogLine, FormatsPodmanK8sFile) {
  EXPECT_EQ(format_log_line(
                entry("2026-12-02T08:00:00.123456789Z", LogStream::kStdout, false, "hello world")),
            "2026-12-02T08:00:00.123456789Z stdout F hello world\n");
  EXPECT_EQ(format_log_line(entry("2026-12-02T08:00:00.000000001Z", LogStream::kStderr, true, "")),
            "2026-12-02T08:00:00.000000001Z stderr P \n");
}

TEST(LogLine, ParsesWhatItFormats) {
  for (const auto& e :
       {entry("2026-12-02T08:00:00.123456789Z", LogStream::kStdout, false, "a b  c"),
        entry("2026-12-02T08:00:00.123456789Z", LogStream::kStderr, true, " x "),
        entry("2026-12-02T08:00:00.123456789Z", LogStream::kStdout, false, "")}) {
    auto r = parse_log_line(format_log_line(e));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->time, e.time);
    EXPECT_EQ(r->stream, e.stream);
    EXPECT_EQ(r->partial, e.partial);
    EXPECT_EQ(r->text, e.text);
  }
  auto bare = parse_log_line("2026-12-02T08:00:00.123456789Z stdout F");
  ASSERT_TRUE(bare) << bare.error().message();
  EXPECT_EQ(bare->text, "");
}

TEST(LogLine, MalformedIsAnErrorNamingTheLine) {
  for (std::string bad : {"", "garbage", "2026-12-02T08:00:00.123456789Z stdin F x",
                          "2026-12-02T08:00:00.123456789Z stdout X x",
                          "2026-12-02T08:00:00.123456789Z stdout Fx", "yesterday stdout F x"}) {
    auto r = parse_log_line(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message(), "parse log line \"" + bad + "\"");
  }
  auto long_line = parse_log_line(std::string(200, 'z'));
  ASSERT_FALSE(long_line);
  EXPECT_EQ(long_line.error().message(), "parse log line \"" + std::string(80, 'z') + "...\"");
}

class LogWriterTest : public ::testing::Test {
 protected:
  LogWriter open(int64_t max_bytes = 0, int max_files = 1) {
    auto w = LogWriter::open(path_, max_bytes, max_files);
    EXPECT_TRUE(w) << w.error().message();
    return std::move(*w);
  }
  void append(LogWriter& w, LogStream s, std::string_view data) {
    Status st = w.append(s, data);
    ASSERT_TRUE(st) << st.error().message();
  }

  TempDir tmp_;
  std::string path_ = tmp_.path() + "/ctr.log";
};

TEST_F(LogWriterTest, CreatesFile0640) {
  LogWriter w = open();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(st.st_size, 0);
}

TEST_F(LogWriterTest, OpenInMissingDirNamesPath) {
  auto w = LogWriter::open(tmp_.path() + "/no/ctr.log", 0, 1);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().message(), "open " + tmp_.path() + "/no/ctr.log: No such file or directory");
}

TEST_F(LogWriterTest, CompleteLinesBecomeFullEntries) {
  LogWriter w = open();
  append(w, LogStream::kStdout, "one\ntwo\n\n");
  append(w, LogStream::kStderr, "oops\n");
  EXPECT_THAT(describe(read_entries(path_)),
              ElementsAre("stdout F one", "stdout F two", "stdout F ", "stderr F oops"));
  // The file is exactly the formatted lines.
  auto entries = read_entries(path_);
  std::string expected;
  for (const auto& e : entries) expected += format_log_line(e);
  EXPECT_EQ(slurp(path_), expected);
}

TEST_F(LogWriterTest, AppendsToExistingFile) {
  {
    LogWriter w = open();
    append(w, LogStream::kStdout, "first run\n");
  }
  LogWriter w = open();
  append(w, LogStream::kStdout, "second run\n");
  EXPECT_THAT(describe(read_entries(path_)),
              ElementsAre("stdout F first run", "stdout F second run"));
}

TEST_F(LogWriterTest, TailWaitsForNewlinePerStream) {
  LogWriter w = open();
  append(w, LogStream::kStdout, "ab");
  append(w, LogStream::kStderr, "x");
  EXPECT_EQ(slurp(path_), "") << "a tail without newline must wait";
  append(w, LogStream::kStderr, "y\n");
  append(w, LogStream::kStdout, "c\nd");
  EXPECT_THAT(describe(read_entries(path_)), ElementsAre("stderr F xy", "stdout F abc"));
  // At exit the unfinished tails go out as partial entries.
  ASSERT_TRUE(w.flush());
  EXPECT_THAT(describe(read_entries(path_)),
              ElementsAre("stderr F xy", "stdout F abc", "stdout P d"));
  ASSERT_TRUE(w.flush());
  EXPECT_EQ(read_entries(path_).size(), 3u) << "flush twice writes nothing more";
}

TEST_F(LogWriterTest, LongLinesAreCutInto16KiBPartials) {
  LogWriter w = open();
  std::string big(2 * k16K + 100, 'a');
  append(w, LogStream::kStdout, big);
  // Two full chunks go out at once; 100 bytes wait for their newline.
  EXPECT_THAT(describe(read_entries(path_)), ElementsAre("stdout P " + std::string(k16K, 'a'),
                                                         "stdout P " + std::string(k16K, 'a')));
  append(w, LogStream::kStdout, "b\n");
  auto entries = read_entries(path_);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_FALSE(entries[2].partial);
  EXPECT_EQ(entries[2].text, std::string(100, 'a') + "b");

  // A complete line longer than one entry, in a single read: partial chunks, then the rest.
  append(w, LogStream::kStderr, std::string(k16K + 1, 'c') + "\n");
  entries = read_entries(path_);
  ASSERT_EQ(entries.size(), 5u);
  EXPECT_TRUE(entries[3].partial);
  EXPECT_EQ(entries[3].text.size(), k16K);
  EXPECT_FALSE(entries[4].partial);
  EXPECT_EQ(entries[4].text, "c");
}

TEST_F(LogWriterTest, ExactlyOneEntryOfTextStillWaits) {
  LogWriter w = open();
  append(w, LogStream::kStdout, std::string(k16K, 'q'));
  EXPECT_EQ(slurp(path_), "");
  append(w, LogStream::kStdout, "\n");
  EXPECT_THAT(describe(read_entries(path_)), ElementsAre("stdout F " + std::string(k16K, 'q')));
}

TEST_F(LogWriterTest, TimestampsAreNowInUtcWithNanoseconds) {
  LogWriter w = open();
  int64_t before = now_ns();
  append(w, LogStream::kStdout, "a\n");
  int64_t after = now_ns();
  auto entries = read_entries(path_);
  ASSERT_EQ(entries.size(), 1u);
  const std::string& t = entries[0].time;
  EXPECT_TRUE(std::regex_match(t, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z)"))) << t;
  int64_t ns = parse_time_ns(t);
  EXPECT_GE(ns, before);
  EXPECT_LE(ns, after);
}

TEST_F(LogWriterTest, RotatesKeepingMaxFiles) {
  LogWriter w = open(/*max_bytes=*/300, /*max_files=*/3);
  for (int i = 0; i < 60; ++i) append(w, LogStream::kStdout, "line " + std::to_string(i) + "\n");
  EXPECT_TRUE(fs::exists(path_));
  EXPECT_TRUE(fs::exists(path_ + ".1"));
  EXPECT_TRUE(fs::exists(path_ + ".2"));
  EXPECT_FALSE(fs::exists(path_ + ".3"));
  EXPECT_FALSE(fs::exists(path_ + ".new"));
  // Rotated files reached the limit, by less than one entry.
  for (const char* suffix : {".1", ".2"}) {
    auto size = fs::file_size(path_ + suffix);
    EXPECT_GE(size, 300u) << suffix;
    EXPECT_LT(size, 300u + 50) << suffix;
  }
  // Oldest first, consecutive, ending with the last line written.
  auto entries = read_entries(path_);
  ASSERT_GE(entries.size(), 10u);
  int first = std::stoi(entries[0].text.substr(5));
  EXPECT_GT(first, 0) << "the oldest lines should have been rotated out";
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].text, "line " + std::to_string(first + static_cast<int>(i)));
  }
  EXPECT_EQ(entries.back().text, "line 59");
  // PATH.2 is older than PATH.1.
  auto older = parse_log_line(slurp(path_ + ".2").substr(0, slurp(path_ + ".2").find('\n')));
  auto newer = parse_log_line(slurp(path_ + ".1").substr(0, slurp(path_ + ".1").find('\n')));
  ASSERT_TRUE(older && newer);
  EXPECT_LT(std::stoi(older->text.substr(5)), std::stoi(newer->text.substr(5)));
}

TEST_F(LogWriterTest, RotationWithinOneAppend) {
  LogWriter w = open(/*max_bytes=*/200, /*max_files=*/10);
  std::string many;
  for (int i = 0; i < 20; ++i) many += "row " + std::to_string(i) + "\n";
  append(w, LogStream::kStdout, many);
  // About 840 bytes: one big append still rotates between entries, every ~200 bytes.
  for (const char* suffix : {".1", ".2", ".3"}) {
    ASSERT_TRUE(fs::exists(path_ + suffix)) << suffix;
    EXPECT_LT(fs::file_size(path_ + suffix), 200u + 50) << suffix;
  }
  auto entries = read_entries(path_);
  ASSERT_EQ(entries.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(entries[i].text, "row " + std::to_string(i));
}

TEST_F(LogWriterTest, OneFileMeansStartOver) {
  LogWriter w = open(/*max_bytes=*/100, /*max_files=*/1);
  for (int i = 0; i < 10; ++i) append(w, LogStream::kStdout, "entry " + std::to_string(i) + "\n");
  EXPECT_FALSE(fs::exists(path_ + ".1"));
  EXPECT_LT(fs::file_size(path_), 100u);
  auto entries = read_entries(path_);
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ(entries.back().text, "entry 9");
}

TEST_F(LogWriterTest, OpenRotatesAFileAlreadyFull) {
  {
    LogWriter w = open();
    append(w, LogStream::kStdout, std::string(500, 'o') + "\n");
  }
  LogWriter w = open(/*max_bytes=*/100, /*max_files=*/2);
  EXPECT_TRUE(fs::exists(path_ + ".1"));
  EXPECT_EQ(fs::file_size(path_), 0u);
}

TEST(ReadLog, MissingLogIsAnError) {
  TempDir tmp;
  auto r = read_log(tmp.path() + "/none.log");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().err, ENOENT);
  EXPECT_THAT(r.error().message(), HasSubstr("none.log"));
}

TEST(ReadLog, MalformedLineNamesFile) {
  TempDir tmp;
  std::string path = tmp.path() + "/ctr.log";
  write_text(path, "2026-12-02T08:00:00.000000001Z stdout F ok\nnot a log line\n");
  auto r = read_log(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), path + ": parse log line \"not a log line\"");
}

TEST(ReadLog, UnfinishedLastLineIsAWriteInProgress) {
  TempDir tmp;
  std::string path = tmp.path() + "/ctr.log";
  write_text(path, "2026-12-02T08:00:00.000000001Z stdout F ok\n2026-12-02T08:00:00.0");
  EXPECT_THAT(describe(read_entries(path)), ElementsAre("stdout F ok"));
}

// A log written by hand, with fixed times, through PATH.1 and PATH.
class PrintLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string older, newer;
    auto add = [](std::string& f, int sec, LogStream s, bool partial, std::string text) {
      f += format_log_line(entry("2026-12-02T08:00:0" + std::to_string(sec) + ".000000000Z", s,
                                 partial, std::move(text)));
    };
    add(older, 1, LogStream::kStdout, false, "one");
    add(older, 2, LogStream::kStdout, true, "tw");  // the line goes on in the newer file
    add(newer, 3, LogStream::kStderr, false, "err");
    add(newer, 4, LogStream::kStdout, false, "o");
    add(newer, 5, LogStream::kStdout, false, "three");
    add(newer, 6, LogStream::kStdout, true, "four");  // never finished
    write_text(path_ + ".1", older);
    write_text(path_, newer);
  }
  TempDir tmp_;
  std::string path_ = tmp_.path() + "/ctr.log";
};

TEST_F(PrintLogTest, AllJoinsPartialsPerStream) {
  auto p = print(path_, {});
  EXPECT_EQ(p.out, "one\ntwo\nthree\nfour");
  EXPECT_EQ(p.err, "err\n");
}

TEST_F(PrintLogTest, TailCountsLinesNotEntries) {
  LogPrintOptions o;
  o.tail = 3;  // "err", "three", "four"; the two entries of "two" are one line
  auto p = print(path_, o);
  EXPECT_EQ(p.out, "three\nfour");
  EXPECT_EQ(p.err, "err\n");
  o.tail = 4;
  p = print(path_, o);
  EXPECT_EQ(p.out, "two\nthree\nfour");
  o.tail = 0;
  p = print(path_, o);
  EXPECT_EQ(p.out, "");
  EXPECT_EQ(p.err, "");
  o.tail = 100;
  EXPECT_EQ(print(path_, o).out, "one\ntwo\nthree\nfour");
}

TEST_F(PrintLogTest, TimestampIsThatOfTheLinesFirstEntry) {
  LogPrintOptions o;
  o.timestamps = true;
  o.tail = 4;
  auto p = print(path_, o);
  EXPECT_EQ(p.out,
            "2026-12-02T08:00:02.000000000Z two\n"
            "2026-12-02T08:00:05.000000000Z three\n"
            "2026-12-02T08:00:06.000000000Z four");
  EXPECT_EQ(p.err, "2026-12-02T08:00:03.000000000Z err\n");
}

TEST_F(PrintLogTest, SameFdKeepsOrderOfStreams) {
  PipeReader both;
  Status st = print_log(path_, {}, both.write_fd(), both.write_fd(), nullptr);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(both.finish(), "one\ntwerr\no\nthree\nfour");
}

TEST_F(PrintLogTest, MissingLogIsAnError) {
  PipeReader out;
  Status st = print_log(tmp_.path() + "/other.log", {}, out.write_fd(), out.write_fd(), nullptr);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().err, ENOENT);
}

std::string numbered_lines(int from, int to) {
  std::string s;
  for (int i = from; i < to; ++i) s += "line " + std::to_string(i) + "\n";
  return s;
}

TEST(FollowLog, WriterThreadWithRotation) {
  TempDir tmp;
  std::string path = tmp.path() + "/ctr.log";
  auto w = LogWriter::open(path, /*max_bytes=*/2000, /*max_files=*/1000);
  ASSERT_TRUE(w) << w.error().message();
  ASSERT_TRUE(w->append(LogStream::kStdout, numbered_lines(0, 5)));

  constexpr int kLines = 600;
  std::atomic<bool> running{true};
  std::thread writer([&] {
    for (int i = 5; i < kLines; ++i) {
      std::string line = "line " + std::to_string(i) + "\n";
      // Some lines arrive in two reads, as from a pipe.
      if (i % 7 == 0) {
        EXPECT_TRUE(w->append(LogStream::kStdout, line.substr(0, 3)));
        EXPECT_TRUE(w->append(LogStream::kStdout, line.substr(3)));
      } else {
        EXPECT_TRUE(w->append(LogStream::kStdout, line));
      }
      if (i % 10 == 0) {
        EXPECT_TRUE(w->append(LogStream::kStderr, "e" + std::to_string(i) + "\n"));
      }
      if (i % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    EXPECT_TRUE(w->append(LogStream::kStdout, "last"));
    EXPECT_TRUE(w->flush());
    running = false;
  });

  PipeReader out, err;
  LogPrintOptions o;
  o.follow = true;
  auto start = std::chrono::steady_clock::now();
  Status st = print_log(path, o, out.write_fd(), err.write_fd(), [&] { return running.load(); });
  writer.join();
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(fs::exists(path + ".3")) << "the test should have rotated several times";

  EXPECT_EQ(out.finish(), numbered_lines(0, kLines) + "last");
  std::string expected_err;
  for (int i = 10; i < kLines; i += 10) expected_err += "e" + std::to_string(i) + "\n";
  EXPECT_EQ(err.finish(), expected_err);
}

TEST(FollowLog, SeveralRotationsBetweenReads) {
  TempDir tmp;
  std::string path = tmp.path() + "/ctr.log";
  auto w = LogWriter::open(path, /*max_bytes=*/100, /*max_files=*/20);
  ASSERT_TRUE(w) << w.error().message();
  ASSERT_TRUE(w->append(LogStream::kStdout, numbered_lines(0, 2)));

  // The first look at still_running() comes after the existing lines are printed: write enough
  // for several rotations there, before the follower reads again.
  int calls = 0;
  auto still_running = [&] {
    if (++calls == 1) {
      EXPECT_TRUE(w->append(LogStream::kStdout, numbered_lines(2, 40)));
    }
    return calls == 1;
  };
  PipeReader out, err;
  LogPrintOptions o;
  o.follow = true;
  o.tail = 1;
  Status st = print_log(path, o, out.write_fd(), err.write_fd(), still_running);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_TRUE(fs::exists(path + ".5"));
  EXPECT_EQ(out.finish(), numbered_lines(1, 40));
}

TEST(FollowLog, TruncatedInPlaceStartsOver) {
  TempDir tmp;
  std::string path = tmp.path() + "/ctr.log";
  write_text(path, format_log_line(entry("2026-12-02T08:00:01.000000000Z", LogStream::kStdout,
                                         false, "before truncation")));
  int calls = 0;
  auto still_running = [&] {
    if (++calls == 1) {  // copytruncate-style: same file, shorter content
      write_text(path, format_log_line(entry("2026-12-02T08:00:02.000000000Z", LogStream::kStdout,
                                             false, "after")));
    }
    return calls == 1;
  };
  PipeReader out, err;
  LogPrintOptions o;
  o.follow = true;
  Status st = print_log(path, o, out.write_fd(), err.write_fd(), still_running);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(out.finish(), "before truncation\nafter\n");
}

TEST(FollowLog, ReturnsWhenStoppedAndNothingNew) {
  TempDir tmp;
  std::string path = tmp.path() + "/ctr.log";
  auto w = LogWriter::open(path, 0, 1);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->append(LogStream::kStdout, "only\n"));
  std::atomic<bool> running{true};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(w->append(LogStream::kStdout, "late\n"));
    running = false;
  });
  PipeReader out, err;
  LogPrintOptions o;
  o.follow = true;
  auto start = std::chrono::steady_clock::now();
  Status st = print_log(path, o, out.write_fd(), err.write_fd(), [&] { return running.load(); });
  auto took = std::chrono::steady_clock::now() - start;
  stopper.join();
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(out.finish(), "only\nlate\n");
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_LT(took, std::chrono::milliseconds(1500));
}

// pump_output with pipes from a forked child. The child only makes async-signal-safe calls.
class PumpTest : public ::testing::Test {
 protected:
  struct Child {
    pid_t pid = -1;
    int pidfd = -1;
    int out = -1;  // read ends
    int err = -1;
  };

  // Forks a child that runs BODY(stdout write end, stderr write end) and _exits with 0.
  template <typename Body>
  Child spawn(Body body) {
    int out[2], err[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
    Child c;
    c.pid = ::fork();
    if (c.pid == 0) {
      ::close(out[0]);
      ::close(err[0]);
      body(out[1], err[1]);
      ::_exit(0);
    }
    ::close(out[1]);
    ::close(err[1]);
    c.out = out[0];
    c.err = err[0];
    c.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, c.pid, 0));
    EXPECT_GE(c.pidfd, 0) << strerror(errno);
    return c;
  }

  void finish(Child& c) {
    int status = 0;
    EXPECT_EQ(::waitpid(c.pid, &status, 0), c.pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    ::close(c.out);
    ::close(c.err);
    ::close(c.pidfd);
  }

  static void put(int fd, const char* s) {
    if (::write(fd, s, strlen(s)) < 0) ::_exit(1);
  }

  LogWriter open() {
    auto w = LogWriter::open(path_, 0, 1);
    EXPECT_TRUE(w) << w.error().message();
    return std::move(*w);
  }

  TempDir tmp_;
  std::string path_ = tmp_.path() + "/ctr.log";
};

TEST_F(PumpTest, BothStreamsUntilEof) {
  LogWriter log = open();
  Child c = spawn([](int out, int err) {
    put(out, "hello\nwor");
    usleep(50 * 1000);
    put(err, "problem\n");
    usleep(50 * 1000);
    put(out, "ld\nno newline");
  });
  Status st = pump_output(c.out, c.err, c.pidfd, log);
  ASSERT_TRUE(st) << st.error().message();
  finish(c);
  EXPECT_THAT(describe(read_entries(path_)), ElementsAre("stdout F hello", "stderr F problem",
                                                         "stdout F world", "stdout P no newline"));
}

TEST_F(PumpTest, WithoutPidfdEofEnds) {
  LogWriter log = open();
  Child c = spawn([](int out, int err) {
    put(out, "a\n");
    put(err, "b\n");
  });
  Status st = pump_output(c.out, c.err, -1, log);
  ASSERT_TRUE(st) << st.error().message();
  finish(c);
  EXPECT_THAT(describe(read_entries(path_)), ElementsAre("stdout F a", "stderr F b"));
}

TEST_F(PumpTest, GrandchildHoldingPipesDoesNotHang) {
  LogWriter log = open();
  int report[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  Child c = spawn([&](int out, int err) {
    pid_t grandchild = ::fork();
    if (grandchild == 0) {  // keeps both pipes open and writes nothing
      ::sleep(30);
      ::_exit(0);
    }
    if (::write(report[1], &grandchild, sizeof grandchild) != sizeof grandchild) ::_exit(1);
    put(out, "bye\n");
    put(err, "partial");
  });
  ::close(report[1]);
  pid_t grandchild = -1;
  ASSERT_EQ(::read(report[0], &grandchild, sizeof grandchild),
            static_cast<ssize_t>(sizeof grandchild));
  ::close(report[0]);

  auto start = std::chrono::steady_clock::now();
  Status st = pump_output(c.out, c.err, c.pidfd, log);
  auto took = std::chrono::steady_clock::now() - start;
  ::kill(grandchild, SIGKILL);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_LT(took, std::chrono::seconds(5));
  finish(c);
  EXPECT_THAT(describe(read_entries(path_)), ElementsAre("stdout F bye", "stderr P partial"));
  // The fds were left open, non-blocking: the grandchild still holds the write ends.
}

TEST_F(PumpTest, LargeOutputArrivesWhole) {
  LogWriter log = open();
  Child c = spawn([](int out, int) {
    char line[64];
    for (int i = 0; i < 20000; ++i) {
      int n = snprintf(line, sizeof line, "row %d\n", i);
      if (::write(out, line, static_cast<size_t>(n)) != n) ::_exit(1);
    }
  });
  Status st = pump_output(c.out, c.err, c.pidfd, log);
  ASSERT_TRUE(st) << st.error().message();
  finish(c);
  auto entries = read_entries(path_);
  ASSERT_EQ(entries.size(), 20000u);
  for (int i = 0; i < 20000; i += 997) EXPECT_EQ(entries[i].text, "row " + std::to_string(i));
  EXPECT_EQ(entries.back().text, "row 19999");
}

}  // namespace
}  // namespace forker::engine
