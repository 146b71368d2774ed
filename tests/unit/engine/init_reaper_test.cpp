// forker-init (src/cli/init) run as a plain child: it makes itself a child subreaper, so orphans
// come to it as they would to a PID 1. Exit status, signal forwarding, exec failures, reaping.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

#ifdef FORKER_INIT_BIN

using Clock = std::chrono::steady_clock;

struct Init {
  pid_t pid = -1;
  int out = -1;  // read ends of its stdout and stderr
  int err = -1;
};

Init start(std::vector<std::string> args) {
  int out[2], err[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(FORKER_INIT_BIN));
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Init init;
  init.pid = ::fork();
  if (init.pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(99);
  }
  ::close(out[1]);
  ::close(err[1]);
  init.out = out[0];
  init.err = err[0];
  return init;
}

// The exit code as a shell reports it, or -1 after a timeout (then the process is killed).
int wait_exit(const Init& init, std::chrono::seconds timeout = std::chrono::seconds(10)) {
  auto deadline = Clock::now() + timeout;
  int status = 0;
  while (::waitpid(init.pid, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(init.pid, SIGKILL);
      ::waitpid(init.pid, &status, 0);
      ADD_FAILURE() << "forker-init did not exit in time";
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::close(init.out);
  ::close(init.err);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// One line from FD (without the newline), waiting at most 5 s.
std::string read_line(int fd) {
  std::string line;
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char c;
    if (::read(fd, &c, 1) != 1) break;
    if (c == '\n') return line;
    line += c;
  }
  ADD_FAILURE() << "no line from forker-init, got \"" << line << "\"";
  return line;
}

std::string read_all(int fd) {
  std::string text;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  return text;
}

// "PPid:" and "State:" from /proc/PID/status; nullopt once the process is gone (reaped).
struct ProcStatus {
  pid_t ppid = 0;
  char state = '?';
};
std::optional<ProcStatus> proc_status(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return std::nullopt;
  ProcStatus st;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("PPid:", 0) == 0) st.ppid = std::stoi(line.substr(5));
    if (line.rfind("State:", 0) == 0 && line.size() > 7) st.state = line[7];
  }
  return st;
}

int run(std::vector<std::string> args) { return wait_exit(start(std::move(args))); }

TEST(ForkerInit, ExitCodePassesThrough) {
  EXPECT_EQ(run({"sh", "-c", "exit 3"}), 3);
  EXPECT_EQ(run({"true"}), 0);
  EXPECT_EQ(run({"sh", "-c", "exit 255"}), 255);
}

TEST(ForkerInit, DeathBySignalIs128PlusN) {
  EXPECT_EQ(run({"sh", "-c", "kill -KILL $$"}), 128 + SIGKILL);
}

TEST(ForkerInit, UsesPathAndPassesArguments) {
  Init init = start({"sh", "-c", "echo \"$0|$1|$2\"", "zero", "one two", ""});
  std::string out = read_all(init.out);
  EXPECT_EQ(wait_exit(init), 0);
  EXPECT_EQ(out, "zero|one two|\n");
}

TEST(ForkerInit, ForwardsSignalsToTheChild) {
  struct Case {
    int sig;
    const char* name;
    int code;
  };
  for (Case c : {Case{SIGTERM, "TERM", 7}, Case{SIGINT, "INT", 8}, Case{SIGHUP, "HUP", 9},
                 Case{SIGUSR1, "USR1", 10}, Case{SIGUSR2, "USR2", 11}}) {
    std::string script = std::string("trap 'exit ") + std::to_string(c.code) + "' " + c.name +
                         "; echo ready; while :; do sleep 0.05; done";
    Init init = start({"sh", "-c", script});
    ASSERT_EQ(read_line(init.out), "ready") << c.name;
    ASSERT_EQ(::kill(init.pid, c.sig), 0);
    EXPECT_EQ(wait_exit(init), c.code) << c.name;
  }
}

TEST(ForkerInit, UnhandledForwardedSignalKillsChild) {
  Init init = start({"sh", "-c", "echo ready; exec sleep 30"});
  ASSERT_EQ(read_line(init.out), "ready");
  auto start_time = Clock::now();
  ASSERT_EQ(::kill(init.pid, SIGTERM), 0);
  EXPECT_EQ(wait_exit(init), 128 + SIGTERM);
  EXPECT_LT(Clock::now() - start_time, std::chrono::seconds(5));
}

TEST(ForkerInit, MissingCommandIs127) {
  Init init = start({"/nonexistent/forker-test-cmd", "arg"});
  std::string err = read_all(init.err);
  EXPECT_EQ(wait_exit(init), 127);
  EXPECT_EQ(err, "forker-init: exec /nonexistent/forker-test-cmd: No such file or directory\n");
  EXPECT_EQ(run({"forker-no-such-command-in-path"}), 127);
}

TEST(ForkerInit, NotExecutableIs126) {
  char dir[] = "/tmp/forker-init-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string file = std::string(dir) + "/script";
  std::ofstream(file) << "#!/bin/sh\nexit 0\n";
  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  Init init = start({file});
  std::string err = read_all(init.err);
  EXPECT_EQ(wait_exit(init), 126);
  EXPECT_EQ(err, "forker-init: exec " + file + ": " + std::strerror(EACCES) + "\n");
  std::filesystem::remove_all(dir);
}

TEST(ForkerInit, NoCommandIsUsage) {
  Init init = start({});
  std::string err = read_all(init.err);
  EXPECT_EQ(wait_exit(init), 2);
  EXPECT_EQ(err, "usage: forker-init COMMAND [ARG...]\n");
}

TEST(ForkerInit, ExitsWithChildNotWaitingForBackgroundProcesses) {
  Init init = start({"sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!; exit 4"});
  pid_t background = std::stoi(read_line(init.out));
  auto start_time = Clock::now();
  EXPECT_EQ(wait_exit(init), 4);
  EXPECT_LT(Clock::now() - start_time, std::chrono::seconds(5));
  ::kill(background, SIGKILL);
}

// An orphan comes to forker-init (the subreaper) and, once it exits, is reaped there: it must
// not stay a zombie while forker-init runs on.
TEST(ForkerInit, ReapsOrphanedGrandchildren) {
  Init init = start({"sh", "-c", "sh -c 'sleep 1 & echo $!'; exec sleep 30"});
  pid_t orphan = std::stoi(read_line(init.out));
  ASSERT_GT(orphan, 0);

  // Its parent, the inner sh, exits at once; the orphan is then forker-init's.
  bool adopted = false;
  for (auto deadline = Clock::now() + std::chrono::seconds(2); Clock::now() < deadline;) {
    auto st = proc_status(orphan);
    ASSERT_TRUE(st) << "the orphan ended before it could be checked";
    if (st->ppid == init.pid) {
      adopted = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(adopted) << "the orphan was not re-parented to forker-init";

  // After its sleep it exits; reaped, it leaves /proc. A zombie stays there with state Z.
  std::optional<ProcStatus> last;
  for (auto deadline = Clock::now() + std::chrono::seconds(5); Clock::now() < deadline;) {
    last = proc_status(orphan);
    if (!last) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(last) << "orphan " << orphan << " still in /proc, state " << last->state;
  EXPECT_EQ(::waitpid(init.pid, nullptr, WNOHANG), 0) << "forker-init exited with the orphan";

  ASSERT_EQ(::kill(init.pid, SIGTERM), 0);
  EXPECT_EQ(wait_exit(init), 128 + SIGTERM);
}

#else
TEST(ForkerInit, NotBuilt) { GTEST_SKIP() << "FORKER_INIT_BIN not defined"; }
#endif

}  // namespace
